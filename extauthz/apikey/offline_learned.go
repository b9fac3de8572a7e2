package apikey

import "fmt"

// Learned decides the record of an opaque key that the key store gave in
// its epoch rec.Epoch (the Envoy module learned it from the ext_authz service's answer:
// extauthz.Local.Learn) as the store would decide it now, given the
// exceptions table: an error wrapping ErrUnavailable when the table is
// not fresh, ErrNotFound when rec.Epoch is not the table's (the store lost its
// records since), ErrRevoked when the key's exception revokes it,
// ErrMalformed when the exception's tier holds a control character, and
// ErrExpired when its expiry has passed. An opaque key's exception is its
// whole current state, so its tier, roles and expiry replace the
// record's (a lengthened expiry too, unlike a signed key's, whose token
// exp stays). It returns a copy; rec is not changed.
func (o *Offline) Learned(rec Record) (*Record, error) {
	switch {
	case !o.fresh:
		return nil, fmt.Errorf("%w: the keys' exceptions table is not fresh", ErrUnavailable)
	case rec.Epoch == "" || rec.Epoch != o.epoch:
		return nil, fmt.Errorf("%w (id %s): learned in another key-store epoch", ErrNotFound, rec.ID)
	}
	out := cloneRecord(rec)
	if x, ok := o.exception(rec.ID); ok {
		switch {
		case x.Revoked:
			return nil, fmt.Errorf("%w (id %s)", ErrRevoked, rec.ID)
		case hasControl(x.Tier):
			return nil, fmt.Errorf("%w (id %s): its exception's tier", ErrMalformed, rec.ID)
		}
		out.Tier, out.Roles, out.ExpiresAt = x.Tier, validRoles(x.Roles), x.ExpiresAt
	}
	return verdict(&out, rec.ID, o.now())
}

// Fresh reports whether the exceptions table is known to be current.
func (o *Offline) Fresh() bool { return o.fresh }

// Epoch is the key store's epoch the table is of ("" for none).
func (o *Offline) Epoch() string { return o.epoch }
