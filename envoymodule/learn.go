package main

/*
#include "limit.h"
*/
import "C"

import (
	"sync"
	"time"

	"github.com/tollgate/tollgate/extauthz/apikey"
)

// Learning opaque API keys across a change of the key store's epoch.
//
// A record the module learns is tagged with its configuration's key-store
// epoch (extauthz.Local.Learn), so a record learned before the store lost
// its data (a new epoch) is never used after. The ext_authz service's
// answers, though, may come from a replica's cache filled before the loss
// (apikey.DefaultCacheTTL, 5 s): an answer the module receives under the
// new epoch could then hold a record the store no longer has. So after
// the process sees the epoch change, it learns from no request it passed
// on before learnGrace has gone by (the first epoch a process sees has no
// such wait: nothing says its store lost anything).

// learnGrace is how long after an epoch change passed requests are not
// learned from: the ext_authz service's record cache, and a second for
// the control plane's push racing it.
const learnGrace = apikey.DefaultCacheTTL + time.Second

// keyEpochs is the process's current key-store epoch and since when
// (CLOCK_MONOTONIC ns, tg_monotonic_ns; 0: the first the process saw).
type keyEpochs struct {
	mu    sync.Mutex
	epoch string
	since int64
}

// processEpochs is the module process's: every filter configuration of
// the process serves one control plane's key store.
var processEpochs = &keyEpochs{}

// saw records the epoch of a new configuration ("" : none, ignored).
func (k *keyEpochs) saw(epoch string) {
	if epoch == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch k.epoch {
	case "":
		k.epoch = epoch
	case epoch:
	default:
		k.epoch, k.since = epoch, int64(C.tg_monotonic_ns())
	}
}

// learnable reports whether the ext_authz answer to a request passed on
// at passed (CLOCK_MONOTONIC ns) by a configuration of epoch may be
// learned: epoch is the current one, and the request came learnGrace
// after it replaced another.
func (k *keyEpochs) learnable(epoch string, passed int64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return epoch != "" && epoch == k.epoch && (k.since == 0 || passed >= k.since+learnGrace.Nanoseconds())
}
