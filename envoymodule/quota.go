package main

/*
#include "limit.h"
*/
import "C"

import (
	"log/slog"

	"github.com/tollgate/tollgate/envoymodule/glue"
	"github.com/tollgate/tollgate/envoymodule/quotaclient"
	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// quotas is the process's RLQS clients: process-wide because the bucket
// table they report (limit.c's process table) and the stream must outlive
// every filter configuration (Envoy rebuilds them on each push), and a
// configuration is only reached through a cgo handle.
var quotas = &processQuota{reg: quotaclient.NewRegistry(0)}

// processQuota shares one RLQS client per quota server among the filter
// configurations (quotaclient.Registry) and names the one client that
// owns the bucket table: the client of the configuration created last
// that still holds one (glue.Owners). Only the owner's Store drains the
// table and applies assignments: a client that lingers after the policy
// moved to another quota server (the registry keeps it a minute) would
// otherwise take part of the counts and apply a stale server's answers.
type processQuota struct {
	reg    *quotaclient.Registry
	owners glue.Owners[*quotaclient.Client, *limitStore]
}

// get returns the client of cfg for the table t, now the table's owner;
// each get needs a release.
func (q *processQuota) get(cfg envoymod.Quota, t *C.tg_limits, log *slog.Logger) *quotaclient.Client {
	st := &limitStore{t: t, q: q}
	c := q.reg.Get(cfg, st, log) // a running client keeps its first store: Take returns it
	q.owners.Take(c, st)
	return c
}

// release gives back a get of c.
func (q *processQuota) release(c *quotaclient.Client) {
	q.reg.Release(c)
	q.owners.Give(c)
}

// owns reports whether st (its client) owns the table.
func (q *processQuota) owns(st *limitStore) bool { return q.owners.Owns(st) }
