package ir

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"fmt"
	"hash"
	"strconv"
)

// The version id is the SHA-256 of json.Marshal's encoding of the Config
// (TestHashIsMarshalSum): ids stored by earlier releases must stay the ids
// of the same policy. Marshalling 10,000 routes by reflection took ~12 ms
// of CPU per push, so Hash produces the same bytes itself for the routes,
// the bulk of a large IR, and lets encoding/json encode everything else:
//
//   - Config, Gateway and VirtualHost are marshalled by encoding/json with
//     their list of children left out (nil, so encoded as null), and that
//     null is replaced by the children's encoding (spliceMember). Their
//     other fields, present and future, are encoding/json's.
//   - A Route's common fields are appended by appendRoute, which knows
//     json.Marshal's rules for them (omitempty, durations as nanoseconds,
//     strings escaped for HTML); its pointer and rare fields, and any
//     string that needs escaping, are marshalled by encoding/json.
//
// TestRouteFieldsAreAppended fails when a field is added to one of the
// types appendRoute writes; TestAppendRouteIsMarshal and
// TestHashIsMarshalSum compare the bytes with json.Marshal's on random
// routes and on every policy of the repository's testdata and docs.

// Hash returns a short content hash of the config: equal configs have equal
// hashes, so it serves as the policy version.
func (c *Config) Hash() string {
	h := sha256.New()
	e := &hashEncoder{w: h, buf: make([]byte, 0, hashFlush+4096)}
	e.config(c)
	e.flush()
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// hashFlush is the size from which the encoder writes its buffer into the
// hash.
const hashFlush = 32 << 10

// hashEncoder streams a Config's JSON encoding into a hash.
type hashEncoder struct {
	w   hash.Hash
	buf []byte
}

func (e *hashEncoder) flush() {
	e.w.Write(e.buf) // a hash.Hash never returns an error
	e.buf = e.buf[:0]
}

func (e *hashEncoder) config(c *Config) {
	outer := *c
	outer.Gateways = nil
	e.spliced(&outer, "gateways", func() { appendList(e, c.Gateways, e.gateway) })
}

func (e *hashEncoder) gateway(g *Gateway) {
	outer := *g
	outer.VirtualHosts = nil
	e.spliced(&outer, "virtualHosts", func() { appendList(e, g.VirtualHosts, e.virtualHost) })
}

func (e *hashEncoder) virtualHost(vh *VirtualHost) {
	outer := *vh
	outer.Routes = nil
	e.spliced(&outer, "routes", func() { appendList(e, vh.Routes, e.route) })
}

// route appends r, and writes the buffer into the hash once it is large.
func (e *hashEncoder) route(r *Route) {
	e.buf = appendRoute(e.buf, r)
	if len(e.buf) >= hashFlush {
		e.flush()
	}
}

// appendList appends json.Marshal's encoding of the slice items, each item
// by each: null for a nil slice, else an array.
func appendList[T any](e *hashEncoder, items []T, each func(*T)) {
	if items == nil {
		e.buf = append(e.buf, "null"...)
		return
	}
	e.buf = append(e.buf, '[')
	for i := range items {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		each(&items[i])
	}
	e.buf = append(e.buf, ']')
}

// spliced appends json.Marshal's encoding of the struct v, whose member
// name is null, with that null replaced by what value appends.
func (e *hashEncoder) spliced(v any, name string, value func()) {
	b := marshalV1(v)
	start, end := memberValue(b, name)
	e.buf = append(e.buf, b[:start]...)
	value()
	e.buf = append(e.buf, b[end:]...)
}

// memberValue returns where the value of the top-level member name of the
// JSON object b starts and ends. The member is one of the IR's, always
// encoded (no omitempty), so it is there.
func memberValue(b []byte, name string) (start, end int) {
	d := jsontext.NewDecoder(bytes.NewReader(b))
	if _, err := d.ReadToken(); err != nil { // '{'
		panic("ir: hash: " + err.Error())
	}
	for d.PeekKind() == '"' {
		tok, err := d.ReadToken()
		if err != nil {
			panic("ir: hash: " + err.Error())
		}
		key := tok.String()
		start = int(d.InputOffset()) + 1 // past the ':'
		if err := d.SkipValue(); err != nil {
			panic("ir: hash: " + err.Error())
		}
		if key == name {
			return start, int(d.InputOffset())
		}
	}
	panic(fmt.Sprintf("ir: hash: no member %q in %s", name, b))
}

// marshalV1 is json.Marshal(v); the IR holds only strings, numbers,
// booleans, slices and structs of them, so it cannot fail.
func marshalV1(v any) []byte {
	b, err := jsonv2.Marshal(v, json.DefaultOptionsV1())
	if err != nil {
		panic("ir: marshal config: " + err.Error())
	}
	return b
}

// appendRoute appends json.Marshal's encoding of r to b.
func appendRoute(b []byte, r *Route) []byte {
	b = append(b, `{"name":`...)
	b = appendString(b, r.Name)
	b = append(b, `,"match":`...)
	b = appendMatch(b, &r.Match)
	b = append(b, `,"backend":`...)
	b = appendString(b, r.Backend)
	if r.RewritePrefix {
		b = append(b, `,"rewritePrefix":true`...)
	}
	if r.PrefixRewrite != "" {
		b = append(b, `,"prefixRewrite":`...)
		b = appendString(b, r.PrefixRewrite)
	}
	b = append(b, `,"timeout":`...)
	b = strconv.AppendInt(b, int64(r.Timeout), 10)
	b = append(b, `,"auth":`...)
	b = appendRouteAuth(b, &r.Auth)
	b = append(b, `,"rateLimit":`...)
	b = appendRouteRateLimit(b, &r.RateLimit)
	return appendRouteRare(b, r)
}

// appendRouteRare appends the fields of r that most routes leave unset,
// from accessLog on, and closes the object.
func appendRouteRare(b []byte, r *Route) []byte {
	if r.AccessLog != nil {
		b = appendMarshalled(b, `,"accessLog":`, r.AccessLog)
	}
	if r.Transform != nil {
		b = appendMarshalled(b, `,"transform":`, r.Transform)
	}
	if len(r.Split) > 0 {
		b = appendMarshalled(b, `,"split":`, r.Split)
	}
	if r.Retry != nil {
		b = appendMarshalled(b, `,"retry":`, r.Retry)
	}
	if r.IdleTimeout != 0 {
		b = append(b, `,"idleTimeout":`...)
		b = strconv.AppendInt(b, int64(r.IdleTimeout), 10)
	}
	if r.Mirror != nil {
		b = appendMarshalled(b, `,"mirror":`, r.Mirror)
	}
	if r.HTTP != nil {
		b = appendMarshalled(b, `,"http":`, r.HTTP)
	}
	return append(b, '}')
}

func appendMatch(b []byte, m *Match) []byte {
	b = append(b, '{')
	n := len(b)
	if m.Path != "" {
		b = appendString(append(b, `"path":`...), m.Path)
	}
	if m.PathPrefix != "" {
		b = appendString(append(comma(b, n), `"pathPrefix":`...), m.PathPrefix)
	}
	if m.PathRegex != "" {
		b = appendString(append(comma(b, n), `"pathRegex":`...), m.PathRegex)
	}
	if len(m.Methods) > 0 {
		b = appendStrings(append(comma(b, n), `"methods":`...), m.Methods)
	}
	if len(m.Headers) > 0 {
		b = append(comma(b, n), `"headers":[`...)
		for i := range m.Headers {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendHeaderMatch(b, &m.Headers[i])
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendHeaderMatch(b []byte, h *HeaderMatch) []byte {
	b = appendString(append(b, `{"name":`...), h.Name)
	if h.Exact != "" {
		b = appendString(append(b, `,"exact":`...), h.Exact)
	}
	if h.Prefix != "" {
		b = appendString(append(b, `,"prefix":`...), h.Prefix)
	}
	if h.Regex != "" {
		b = appendString(append(b, `,"regex":`...), h.Regex)
	}
	if h.Present {
		b = append(b, `,"present":true`...)
	}
	return append(b, '}')
}

func appendRouteAuth(b []byte, a *RouteAuth) []byte {
	b = append(b, '{')
	n := len(b)
	if a.Public {
		b = append(b, `"public":true`...)
	}
	if len(a.Methods) > 0 {
		b = appendStrings(append(comma(b, n), `"methods":`...), a.Methods)
	}
	if len(a.Roles) > 0 {
		b = appendStrings(append(comma(b, n), `"roles":`...), a.Roles)
	}
	if len(a.Scopes) > 0 {
		b = appendStrings(append(comma(b, n), `"scopes":`...), a.Scopes)
	}
	if a.ForwardCredentials {
		b = append(comma(b, n), `"forwardCredentials":true`...)
	}
	return append(b, '}')
}

func appendRouteRateLimit(b []byte, l *RouteRateLimit) []byte {
	b = append(b, '{')
	n := len(b)
	if l.Enabled {
		b = append(b, `"enabled":true`...)
	}
	if l.Consumer {
		b = append(comma(b, n), `"consumer":true`...)
	}
	if l.Anonymous {
		b = append(comma(b, n), `"anonymous":true`...)
	}
	if len(l.Extra) > 0 {
		b = appendMarshalled(comma(b, n), `"extra":`, l.Extra)
	}
	if len(l.By) > 0 {
		b = appendStrings(append(comma(b, n), `"by":`...), l.By)
	}
	if l.Shadow {
		b = append(comma(b, n), `"shadow":true`...)
	}
	return append(b, '}')
}

// comma appends the comma before a member of an object whose first
// member would start at n.
func comma(b []byte, n int) []byte {
	if len(b) > n {
		return append(b, ',')
	}
	return b
}

// appendMarshalled appends key and json.Marshal's encoding of v.
func appendMarshalled(b []byte, key string, v any) []byte {
	return append(append(b, key...), marshalV1(v)...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString appends s as json.Marshal quotes it: as is when it is
// printable ASCII that needs no escape (json.Marshal escapes <, > and &
// for HTML), else through json.Marshal.
func appendString(b []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return append(b, marshalV1(s)...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
