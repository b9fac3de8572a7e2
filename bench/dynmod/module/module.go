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
// a cache hit), "verify" (cache off: every request verifies a signature).
package main

/*
#include "ident.h"
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
}

// filterConfig is one filter configuration's Go state.
type filterConfig struct {
	spec
	v *jwt.Verifier

	byIdentity sync.Map // *jwt.Identity (shared by the Verifier's cache) → *C.tg_identity

	mu      sync.RWMutex
	byToken map[string]*C.tg_identity // mode "map"
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
	case "cache", "map", "verify":
		out.mode = 3
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
