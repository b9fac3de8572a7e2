package main

/*
#include <stdlib.h>
#include "module.h"
#include "table.h"
*/
import "C"

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/tollgate/tollgate/extauthz"
	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// Lineages: the filter configurations of one policy version.
//
// The control plane serves a new filter configuration for every change of
// the signed keys' exceptions table or of its freshness (envoymod.Keys);
// the rest of it is the same (the xDS side names the filter after a hash
// of the configuration without the table). Such configurations (and equal
// ones: a listener update that leaves the module's configuration as it
// was) form a lineage, identified here by a hash of extauthz.LineageOf. A
// new
// configuration whose lineage has a live member (its predecessor, see
// lineages.get) in tgConfigNew, on Envoy's main thread, before it
// serves any request:
//   - shares the predecessor's JWT verifiers (extauthz.Local.Derive): no
//     JWKS work, no warm-up wait;
//   - copies the predecessor's table of verified credentials
//     (tg_table_copy): every token, and the signed keys that Local.KeptKeys
//     says the new exceptions decide exactly as the old ones (both fresh,
//     same epoch and public key, the same exception for the key's id or
//     none in both); any other key's entry, and an entry the predecessor
//     gains during the copy that is not in that list, is left behind and
//     verified again in Go. A key-store epoch change copies nothing.
//
// A configuration with no live predecessor (the first, or one Envoy built
// after destroying every other member) starts as before: its own
// verifiers, warmed up, and an empty table; it never depends on having
// seen a predecessor. Several members may live at once (each listener
// update builds the default configuration and the last served one again);
// the predecessor is the latest of the new one's key-store epoch.
//
// Memory: a lineage holds its live members only (tgConfigDestroy removes
// one, and the lineage when it is the last); the shared verifiers close
// with the last member's Local. Each member owns its own C table (freed by
// its destroy hook), so Envoy may destroy the predecessor before or after
// creating the successor, and run both on different workers meanwhile.
//
// A JWKS key withdrawn from a shared verifier clears every member's table
// (withdrawn), under the lineage's lock, which a copy holds too: a copy
// never carries a token verified with the withdrawn key past the clear.
//
// Revocations: the successor's table never holds an entry of a key whose
// exception changed (the copy leaves it behind, and only the successor's
// own Go decisions, with its own exceptions, fill its table), so from its
// first request no worker serves such a key from the successor's table;
// the predecessor keeps deciding with its own table and exceptions until
// Envoy stops giving it requests, as before. A configuration whose table
// is not fresh serves no key from its C table at all (tg_config
// keys_cached), whatever it holds.

// lineages is the process's live lineages, by key. Process-wide like the
// cgo handle registry it serves: a configuration is only reached through
// a handle, and the verifiers must outlive the configuration that built
// them. Only Envoy's main thread (the config hooks) changes it.
type lineages struct {
	mu sync.Mutex
	m  map[string]*lineage
}

var processLineages = &lineages{m: map[string]*lineage{}}

// lineage is one lineage's live members.
type lineage struct {
	key string
	// mu guards members; withdrawn and join hold it while they clear or
	// copy the members' tables.
	mu      sync.Mutex
	members []*filter // in creation order
}

// lineageKey is the key of cfg's lineage.
func lineageKey(cfg envoymod.FilterConfig) (string, error) {
	b, err := json.Marshal(extauthz.LineageOf(cfg))
	if err != nil {
		return "", fmt.Errorf("lineage key: %w", err)
	}
	sum := sha256.Sum256(b)
	return string(sum[:]), nil
}

// get returns the lineage of key (nil: none) and the predecessor of a new
// configuration cfg in it: its latest member of cfg's key-store epoch (a
// listener update also builds the default configuration, which has no
// epoch), else its latest member (nil: none). Any member is a safe source:
// what a copy keeps is decided between that member and cfg alone.
func (ls *lineages) get(key string, cfg envoymod.FilterConfig) (*lineage, *filter) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	lin := ls.m[key]
	if lin == nil {
		return nil, nil
	}
	lin.mu.Lock()
	defer lin.mu.Unlock()
	for i := len(lin.members) - 1; i >= 0; i-- {
		if sameEpoch(lin.members[i].cfg, cfg) {
			return lin, lin.members[i]
		}
	}
	if len(lin.members) == 0 {
		return lin, nil
	}
	return lin, lin.members[len(lin.members)-1]
}

// ensure returns the lineage of key: the registered one, or a new one
// that join registers (a configuration refused before joining leaves
// nothing behind).
func (ls *lineages) ensure(key string) *lineage {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if lin := ls.m[key]; lin != nil {
		return lin
	}
	return &lineage{key: key}
}

// join adds f (a new configuration, not serving yet) to lin, registered,
// first filling f's table from pred's (nil: none) under lin's lock.
func (ls *lineages) join(lin *lineage, f, pred *filter) inherited {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.m[lin.key] == nil {
		ls.m[lin.key] = lin
	}
	return lin.join(f, pred)
}

// leave removes f from its lineage, and the lineage when f was its last
// member: afterwards no withdrawal touches f's table.
func (ls *lineages) leave(f *filter) {
	lin := f.lineage
	if lin == nil {
		return
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	lin.mu.Lock()
	defer lin.mu.Unlock()
	lin.members = slices.DeleteFunc(lin.members, func(m *filter) bool { return m == f })
	if len(lin.members) == 0 && ls.m[lin.key] == lin {
		delete(ls.m, lin.key)
	}
}

// withdrawn is the KeysWithdrawn hook of the lineage's verifiers: the
// verifier purged its own cache, and no member's table may serve a token
// verified with the withdrawn key either.
func (lin *lineage) withdrawn(provider string) {
	lin.mu.Lock()
	defer lin.mu.Unlock()
	for _, f := range lin.members {
		C.tg_table_clear(f.table)
		f.log.Info("a JWKS key was withdrawn: verified-token table cleared", "provider", provider)
	}
}

// inherited is what a successor took of its predecessor's table.
type inherited struct {
	copied, dropped, failed int64
	keptKeys                int
	took                    time.Duration
}

// join adds f to lin, first filling its table from pred's (nil: none)
// under the lineage's lock; pred must still be a member.
func (lin *lineage) join(f, pred *filter) inherited {
	lin.mu.Lock()
	defer lin.mu.Unlock()
	var in inherited
	if pred != nil && slices.Contains(lin.members, pred) && sameEpoch(f.cfg, pred.cfg) {
		in = inherit(f, pred)
	}
	lin.members = append(lin.members, f)
	return in
}

// sameEpoch reports whether a and b carry the same key-store epoch (or no
// signed keys both): another epoch flushes everything.
func sameEpoch(a, b envoymod.FilterConfig) bool {
	return (a.Keys == nil) == (b.Keys == nil) && (a.Keys == nil || a.Keys.Epoch == b.Keys.Epoch)
}

// inherit copies pred's table into f's: every token, and the signed keys
// f's verifier decides as pred's did (Local.KeptKeys).
func inherit(f, pred *filter) inherited {
	start := time.Now()
	var n, size C.size_t
	p := C.tg_table_key_ids(pred.table, &size, &n)
	ids := blobItems(unsafe.Slice((*byte)(unsafe.Pointer(p)), int(size)), int(n))
	C.free(unsafe.Pointer(p))
	keep := f.local.KeptKeys(pred.local, ids)
	blob := keepBlob(keep)
	c := C.tg_table_copy(f.table, pred.table, cbytes(blob), C.size_t(len(blob)), C.size_t(len(keep)))
	return inherited{copied: int64(c.copied), dropped: int64(c.dropped), failed: int64(c.failed), keptKeys: len(keep),
		took: time.Since(start)}
}

// blobItems decodes n items of a blob made by C (module.h), copied; it
// stops at a malformed item.
func blobItems(b []byte, n int) []string {
	out := make([]string, 0, n)
	for range n {
		if len(b) < 4 {
			break
		}
		l := int(binary.LittleEndian.Uint32(b))
		if l > len(b)-4 {
			break
		}
		out = append(out, string(b[4:4+l]))
		b = b[4+l:]
	}
	return out
}

// keepBlob encodes ids for tg_table_copy (any order; duplicates are
// harmless).
func keepBlob(ids []string) []byte {
	var b []byte
	for _, id := range ids {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(id)))
		b = append(b, id...)
	}
	return b
}
