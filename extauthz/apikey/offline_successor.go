package apikey

import (
	"bytes"
	"slices"
)

// Continues reports whether o and prev verify signed keys with the same
// public key and epoch, both from a fresh table: a key prev allowed is then
// allowed by o with the same record unless its exception differs
// (SameException). A table that is not fresh in either continues nothing.
func (o *Offline) Continues(prev *Offline) bool {
	return o.fresh && prev.fresh && o.epoch != "" && o.epoch == prev.epoch && bytes.Equal(o.pub, prev.pub)
}

// SameException reports whether o and prev hold the same exception for key
// id id (revoked, tier, roles and expiry all equal), or none both.
func (o *Offline) SameException(prev *Offline, id string) bool {
	a, inA := o.exception(id)
	b, inB := prev.exception(id)
	if inA != inB {
		return false
	}
	return !inA || a.Revoked == b.Revoked && a.Tier == b.Tier && a.ExpiresAt.Equal(b.ExpiresAt) &&
		slices.Equal(a.Roles, b.Roles)
}
