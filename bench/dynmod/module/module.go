// Command module is the spike's Envoy dynamic module (build it with
// -buildmode=c-shared): an HTTP filter that turns a bearer JWT into
// Tollgate's identity headers, a consumer filter-state value and one
// dynamic-metadata key, verifying with Tollgate's own extauthz/jwt
// Verifier. hooks.c holds the hooks Envoy calls; this file holds the Go
// side, reached once per request (tgIdentify) or not at all.
//
// filter_config is JSON: see spec. Modes: "c-empty" (hook returns in C), "go-empty"
// (hook calls an empty Go function), "cache" (Verifier with its
// verification cache: a repeated token is a hash and a map read), "map"
// (a map keyed by the token string in front of the Verifier: the floor of
// a cache hit), "verify" (cache off: every request verifies a signature),
// "ctable" (a C table keyed by the token bytes, ctable.h, consulted by the
// C hook before Go: a hit never enters Go; on a miss Go verifies with the
// Verifier (its cache on) and fills the table; "tableSize" and "tableMaxTTL"
// bound it).
package main

/*
#include "ident.h"
#include "ctable.h"
*/
import "C"

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tollgate/tollgate/extauthz/jwt"
	"github.com/tollgate/tollgate/policy/ir"
)

func main() {}

// spec is the filter_config.
type spec struct {
	Mode      string         `json:"mode"`
	Provider  ir.JWTProvider `json:"provider"`
	NoRecover bool           `json:"noRecover"` // hazard test: let a panic escape
	// What is written besides the identity headers. Defaults: filter
	// state "tollgate.consumer", metadata namespace "tollgate", metadata
	// "consumer" (one key); "none", "min" (consumer, method, tier) and
	// "full" (min + user_id, roles, tenant: what Tollgate's
	// header_to_metadata filter writes today) are the other choices.
	FilterStateKey    *string `json:"filterStateKey"`
	MetadataNamespace string  `json:"metadataNamespace"`
	Metadata          string  `json:"metadata"`
	DenyAmbiguous     bool    `json:"denyAmbiguous"`
	// Mode "ctable": entries at most (default 10,000), and the longest an
	// entry is served before Go verifies the token again (default 5m, a
	// Go duration), whatever its exp.
	TableSize   int    `json:"tableSize"`
	TableMaxTTL string `json:"tableMaxTTL"`
}

// filterConfig is one filter configuration's Go state.
type filterConfig struct {
	spec
	v *jwt.Verifier

	byIdentity sync.Map // *jwt.Identity (shared by the Verifier's cache) → *C.tg_identity

	mu      sync.RWMutex
	byToken map[string]*C.tg_identity // mode "map"

	table  *C.tg_table  // mode "ctable" (owned by the C config, freed by its destroy hook)
	misses atomic.Int64 // mode "ctable": calls that reached Go
}

// configs maps the handles C holds to configurations (cgo needs a
// process-wide registry: C cannot hold Go pointers).
var (
	configs    [64]atomic.Pointer[filterConfig]
	nextHandle atomic.Int64
)

//export tgConfigNew
func tgConfigNew(p *C.char, n C.longlong, out *C.tg_config) C.longlong {
	var s spec
	if err := json.Unmarshal(C.GoBytes(unsafe.Pointer(p), C.int(n)), &s); err != nil {
		fmt.Fprintf(os.Stderr, "tgspike: filter_config: %v\n", err)
		return 0
	}
	if !s.outputs(out) {
		return 0
	}
	c := &filterConfig{spec: s, byToken: map[string]*C.tg_identity{}}
	switch s.Mode {
	case "c-empty":
		out.mode = 1
	case "go-empty":
		out.mode = 2
	case "cache", "map", "verify", "ctable":
		out.mode = 3
		if s.Mode == "ctable" && !c.newTable(out) {
			return 0
		}
		opts := jwt.Options{}
		if s.Mode == "verify" {
			opts.CacheSize = -1
		}
		v, err := jwt.NewVerifier([]ir.JWTProvider{s.Provider}, opts)
		if err != nil {
			fmt.Fprintf(os.Stderr, "tgspike: provider: %v\n", err)
			return 0
		}
		c.v = v
	default:
		fmt.Fprintf(os.Stderr, "tgspike: unknown mode %q\n", s.Mode)
		return 0
	}
	h := nextHandle.Add(1)
	if h >= int64(len(configs)) {
		fmt.Fprintln(os.Stderr, "tgspike: too many filter configs")
		return 0
	}
	configs[h].Store(c)
	fmt.Fprintf(os.Stderr, "tgspike: filter config %d (mode %s) created, pid %d\n", h, s.Mode, os.Getpid())
	return C.longlong(h)
}

// outputs fills the C configuration's outputs from s.
func (s spec) outputs(out *C.tg_config) bool {
	levels := map[string]C.int{"none": 0, "consumer": 1, "": 1, "min": 2, "full": 3}
	md, ok := levels[s.Metadata]
	if !ok {
		fmt.Fprintf(os.Stderr, "tgspike: unknown metadata %q\n", s.Metadata)
		return false
	}
	out.metadata = md
	if s.DenyAmbiguous {
		out.deny_ambiguous = 1
	}
	key := "tollgate.consumer"
	if s.FilterStateKey != nil {
		key = *s.FilterStateKey
	}
	out.state_key = cbuf(key)
	out.md_namespace = cbuf(cmp.Or(s.MetadataNamespace, "tollgate"))
	return true
}

//export tgConfigDestroy
func tgConfigDestroy(h C.longlong) {
	c := configs[h].Swap(nil)
	if c != nil && c.v != nil {
		c.v.Close()
	}
	if c != nil && c.table != nil {
		n := C.tg_table_stats(c.table)
		fmt.Fprintf(os.Stderr, "tgspike: ctable %d: live %d (capacity %d), inserts %d, evictions %d, replaced %d, bytes %d, calls into Go %d\n",
			h, n.live, n.capacity, n.inserts, n.evictions, n.replaced, n.bytes, c.misses.Load())
	}
	fmt.Fprintf(os.Stderr, "tgspike: filter config %d destroyed\n", h)
}

//export tgGoEmpty
func tgGoEmpty() {}

// tgIdentify returns the identity of the request whose Authorization
// header value is p[:n], or nil to refuse it. A panic refuses the request
// (unless the hazard test turned recovery off): a Go panic escaping a cgo
// callback aborts the whole Envoy process.
//
//export tgIdentify
func tgIdentify(h C.longlong, p *C.char, n C.longlong) (out *C.tg_identity) {
	c := configs[h].Load()
	if c == nil {
		return nil
	}
	if !c.NoRecover {
		defer func() {
			if r := recover(); r != nil {
				fmt.Fprintf(os.Stderr, "tgspike: recovered: %v\n", r)
				out = nil
			}
		}()
	}
	// The header bytes belong to Envoy and live for this call only.
	tok, ok := bearer(unsafe.String((*byte)(unsafe.Pointer(p)), int(n)))
	if !ok {
		return nil
	}
	if tok == "panic-now" {
		panic("tgspike: panic requested")
	}
	return c.identify(tok)
}

func (c *filterConfig) identify(tok string) *C.tg_identity {
	switch c.Mode {
	case "map":
		c.mu.RLock()
		id := c.byToken[tok]
		c.mu.RUnlock()
		if id != nil {
			return id
		}
		id = c.verified(tok, false)
		if id != nil {
			c.mu.Lock()
			c.byToken[strings.Clone(tok)] = id
			c.mu.Unlock()
		}
		return id
	case "verify":
		return c.verified(strings.Clone(tok), true)
	case "ctable":
		return c.fill(tok)
	default:
		return c.verified(tok, false)
	}
}

// verified verifies tok and returns its identity in C memory: made for
// this request when owned, else shared per verified Identity.
func (c *filterConfig) verified(tok string, owned bool) *C.tg_identity {
	id, err := c.v.Verify(context.Background(), tok)
	if err != nil {
		return nil
	}
	if owned {
		return cIdentity(id, true)
	}
	if ci, ok := c.byIdentity.Load(id); ok {
		return ci.(*C.tg_identity)
	}
	ci, _ := c.byIdentity.LoadOrStore(id, cIdentity(id, false))
	return ci.(*C.tg_identity)
}

// fill verifies tok (a miss of the C table) and, when it is valid, stores
// its identity in the table until its exp (the table caps that at its max
// TTL). The returned identity is the hook's to free: the table holds its
// own copy, so nothing is shared per Identity (mode "cache"'s sync.Map
// grows with every token ever seen).
func (c *filterConfig) fill(tok string) *C.tg_identity {
	c.misses.Add(1)
	id, err := c.v.Verify(context.Background(), tok)
	if err != nil {
		return nil
	}
	ci := cIdentity(id, true)
	// tok points into Envoy's header buffer (C memory): the table copies it.
	C.tg_table_put(c.table, (*C.char)(unsafe.Pointer(unsafe.StringData(tok))), C.size_t(len(tok)), ci,
		C.int64_t(id.Expiry.UnixNano()))
	return ci
}

// newTable makes the C table of mode "ctable" and hands it to the C config.
func (c *filterConfig) newTable(out *C.tg_config) bool {
	size := cmp.Or(c.TableSize, 10000)
	ttl, err := time.ParseDuration(cmp.Or(c.TableMaxTTL, "5m"))
	if err != nil || size < 0 || ttl <= 0 {
		fmt.Fprintf(os.Stderr, "tgspike: tableSize %d / tableMaxTTL %q: want a size >= 0 and a positive duration (%v)\n",
			c.TableSize, c.TableMaxTTL, err)
		return false
	}
	c.table = C.tg_table_new(C.size_t(size), C.int64_t(ttl.Nanoseconds()))
	if c.table == nil {
		return false
	}
	out.table = c.table
	return true
}

func bearer(v string) (string, bool) {
	const prefix = "bearer "
	if len(v) <= len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", false
	}
	return v[len(prefix):], true
}

func cIdentity(id *jwt.Identity, owned bool) *C.tg_identity {
	ci := (*C.tg_identity)(C.calloc(1, C.size_t(unsafe.Sizeof(C.tg_identity{}))))
	ci.user_id = cbuf(id.Namespace + ":" + id.UserID)
	ci.roles = cbuf(strings.Join(id.Roles, ","))
	ci.tenant = cbuf(id.Tenant)
	ci.tier = cbuf(id.Tier)
	if owned {
		ci.owned = 1
	}
	return ci
}

func cbuf(s string) C.tg_buf {
	if s == "" {
		return C.tg_buf{}
	}
	return C.tg_buf{ptr: C.CString(s), len: C.size_t(len(s))}
}
