// Package glue is the pure-Go part of Tollgate's Envoy dynamic module
// (package main one directory up, which is cgo): what a route's
// configuration means for the C fast path, how a Decision is split into
// the part a verified token carries to other requests and the part its
// route adds, and the byte blobs in which Go hands lists of strings to C.
// It has no cgo, so it is unit-tested like any package.
package glue

import (
	"encoding/binary"
	"slices"

	"github.com/tollgate/tollgate/extauthz"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

// Route is what the C fast path needs of one route's requirement
// (envoymod.RouteConfig's extensions).
type Route struct {
	Name string
	// Cacheable: a token's cached identity may decide this route in C: it
	// accepts JWTs and does not take its rate limits in the check.
	Cacheable bool
	// KeyCacheable: a signed API key's cached identity may decide this
	// route in C: it accepts API keys and does not take its rate limits in
	// the check (the C hook serves keys only with FilterConfig.Keys).
	KeyCacheable bool
	// Forward: the route keeps the credentials on the upstream request.
	Forward       bool
	Roles, Scopes []string
}

// RouteOf reads a route's context extensions with the service's own
// parser (extauthz.ParseRequirement). A route the service refuses
// (no_route_requirement) is not cacheable: Go decides it.
func RouteOf(ext map[string]string) Route {
	rq, ok := extauthz.ParseRequirement(ext)
	return Route{Name: rq.Route, Forward: rq.ForwardCredentials, Roles: rq.Roles, Scopes: rq.Scopes,
		Cacheable:    ok && slices.Contains(rq.Methods, ir.MethodJWT) && !rq.RateLimit,
		KeyCacheable: ok && slices.Contains(rq.Methods, ir.MethodAPIKey) && !rq.RateLimit}
}

// metadataMethod is the ext_authz metadata key of the method (extauthz
// response.go).
const metadataMethod = "method"

// WithMarker returns md (an allowed Decision's metadata) with the native
// marker (envoymod.NativeMarkerKey) whose value is the decision's method:
// the ext_authz filter after the module skips a request carrying it. md
// without a method is returned as it is (never the case for an allow).
func WithMarker(md []extauthz.Header) []extauthz.Header {
	for _, h := range md {
		if h.Name == metadataMethod {
			return append(slices.Clip(md), extauthz.Header{Name: envoymod.NativeMarkerKey, Value: h.Value})
		}
	}
	return md
}

// Op is one request-header mutation: set Name to Value, or remove it.
type Op struct {
	Name, Value string
	Remove      bool
}

// Identity is the part of an allowed Decision that depends on the token
// only: the identity headers' mutations and the metadata except "route".
// The route's part (credentials removed unless forwarded, the client
// address header removed, metadata "route") the C fast path adds itself.
type Identity struct {
	Ops      []Op
	Metadata []extauthz.Header
}

// IdentityOf splits d (allowed) for a filter whose identity headers are ih.
func IdentityOf(d extauthz.Decision, ih ir.IdentityHeaders) Identity {
	var id Identity
	for _, h := range d.Set {
		id.Ops = append(id.Ops, Op{Name: h.Name, Value: h.Value})
	}
	names := ih.Names()
	for _, name := range d.Remove {
		if slices.Contains(names, name) {
			id.Ops = append(id.Ops, Op{Name: name, Remove: true})
		}
	}
	for _, m := range d.Metadata {
		if m.Name != contract.KeyRoute {
			id.Metadata = append(id.Metadata, m)
		}
	}
	return id
}

// nullItem is the length of a NULL blob item (a header removal).
const nullItem = 0xffffffff

// Blob accumulates items in the module's blob format: each a 4-byte
// little-endian length then its bytes; a NULL item has length 0xffffffff.
type Blob []byte

// Add appends one item.
func (b Blob) Add(s string) Blob {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// AddNull appends a NULL item.
func (b Blob) AddNull() Blob { return binary.LittleEndian.AppendUint32(b, nullItem) }

// AddOps appends ops as name/value pairs (a removal's value NULL).
func (b Blob) AddOps(ops []Op) Blob {
	for _, op := range ops {
		b = b.Add(op.Name)
		if op.Remove {
			b = b.AddNull()
		} else {
			b = b.Add(op.Value)
		}
	}
	return b
}

// AddHeaders appends hs as name/value pairs.
func (b Blob) AddHeaders(hs []extauthz.Header) Blob {
	for _, h := range hs {
		b = b.Add(h.Name).Add(h.Value)
	}
	return b
}

// AddList appends each string.
func (b Blob) AddList(list []string) Blob {
	for _, s := range list {
		b = b.Add(s)
	}
	return b
}

// HeaderValue is one value of a request header as the C hook read it.
type HeaderValue struct{ Name, Value string }

// Headers joins repeated headers' values with "," as Envoy's ext_authz
// filter does, keyed by name.
func Headers(values []HeaderValue) map[string]string {
	m := make(map[string]string, len(values))
	for _, v := range values {
		if old, ok := m[v.Name]; ok {
			m[v.Name] = old + "," + v.Value
			continue
		}
		m[v.Name] = v.Value
	}
	return m
}
