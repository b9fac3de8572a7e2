package envoymod

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Decoding the exceptions table. The module decodes the whole table on
// Envoy's main thread for every push (up to the key store's bound of
// 200,000 entries, 13.5 MB of JSON), which encoding/json spends most of
// its time on (reflection, a slice grown by doubling, an allocation per
// string). DecodeFilterConfig therefore reads the table with
// decodeExceptions, a scanner of exactly
// what json.Marshal writes for it (no whitespace, the fields' lower-case
// names at most once each, strings of printable ASCII without escapes,
// integers without fraction or exponent), and hands anything else to
// encoding/json: either way the result is encoding/json's
// (FuzzDecodeExceptions compares them).

// DecodeFilterConfig decodes b as json.Unmarshal decodes a FilterConfig,
// with its exceptions table read by decodeExceptions when it is in
// json.Marshal's form: one pass of encoding/json over b, then one of the
// scanner over the table.
func DecodeFilterConfig(b []byte) (FilterConfig, error) {
	type keysPlain Keys
	type keysWire struct {
		keysPlain
		Exceptions exceptionsText `json:"exceptions"` // dominates keysPlain's
	}
	var w struct {
		FilterConfig
		Keys *keysWire `json:"keys,omitempty"` // dominates FilterConfig's
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return FilterConfig{}, fmt.Errorf("envoymod: filter config: %w", err)
	}
	cfg := w.FilterConfig
	if w.Keys == nil {
		return cfg, nil
	}
	if w.Keys.Exceptions.n > 1 { // a repeated field: encoding/json's own merge (exceptionsText)
		var cfg FilterConfig
		if err := json.Unmarshal(b, &cfg); err != nil {
			return FilterConfig{}, fmt.Errorf("envoymod: filter config: %w", err)
		}
		return cfg, nil
	}
	k := Keys(w.Keys.keysPlain)
	cfg.Keys = &k
	if raw := w.Keys.Exceptions.raw; raw != nil {
		if exc, ok := decodeExceptions(raw); ok {
			k.Exceptions = exc
		} else if err := json.Unmarshal(raw, &k.Exceptions); err != nil {
			return FilterConfig{}, fmt.Errorf("envoymod: filter config: keys: exceptions: %w", err)
		}
	}
	return cfg, nil
}

// exceptionsText is the text of the keys' exceptions field and how many
// times the field came (the keys object repeated counts too: encoding/json
// decodes a repeated object into the same Keys). A repeated array is not
// "the last one wins" for encoding/json: it decodes into the elements the
// first left (golang/go#21092), so {"id":"k1","revoked":true} then
// {"id":"k1"} stays revoked; DecodeFilterConfig leaves a repeated field to
// encoding/json whole (json.Marshal never writes one).
type exceptionsText struct {
	raw json.RawMessage
	n   int
}

// UnmarshalJSON keeps a copy of b (null included, as json.RawMessage).
func (x *exceptionsText) UnmarshalJSON(b []byte) error {
	x.n++
	x.raw = append(x.raw[:0:0], b...)
	return nil
}

// scanner reads json.Marshal's output for []KeyException; any other text
// fails (ok false), never with a different result. To allocate little at
// 200,000 entries, the key ids are cut from one string of them all (ids)
// and the roles from one slice (roles), each entry's span recorded while
// scanning (spans); tiers and roles are interned (a few distinct values).
type scanner struct {
	b      []byte
	i      int
	bad    bool
	ids    []byte
	roles  []string
	spans  []span
	intern map[string]string
}

// span is where one entry's id and roles lie in the scanner's ids and
// roles (hasRoles: the roles field was present, "[]" included).
type span struct {
	id0, id1, r0, r1 int
	hasRoles         bool
}

// decodeExceptions decodes b (a JSON array of KeyException as json.Marshal
// writes it); ok false when b is anything else.
func decodeExceptions(b []byte) (out []KeyException, ok bool) {
	s := &scanner{b: b, intern: map[string]string{}}
	if !s.lit("[") {
		return nil, false
	}
	n := countObjects(b)
	out = make([]KeyException, 0, n)
	s.spans = make([]span, 0, n)
	s.ids = make([]byte, 0, 24*n) // room for ids of 24 bytes before it grows
	if !s.lit("]") {
		for {
			out = append(out, s.exception())
			if s.bad {
				return nil, false
			}
			if s.lit("]") {
				break
			}
			if !s.lit(",") {
				return nil, false
			}
		}
	}
	if s.i != len(b) {
		return nil, false
	}
	s.finish(out)
	return out, true
}

// finish gives every entry its id and roles from the shared storage.
func (s *scanner) finish(out []KeyException) {
	ids := string(s.ids)
	if s.roles == nil {
		s.roles = []string{} // "roles":[] decodes to an empty slice, not nil
	}
	for i, sp := range s.spans {
		out[i].ID = ids[sp.id0:sp.id1]
		if sp.hasRoles {
			out[i].Roles = s.roles[sp.r0:sp.r1:sp.r1]
		}
	}
}

// countObjects is an upper bound of the objects in b: its '{' bytes, at
// most one per minObjectLen bytes (the shortest element json.Marshal
// writes, `{"id":""}`, and its comma): a '{' inside a string counts too,
// and a table of ids made of '{' must not make the scanner reserve ~140
// bytes per byte of text before reading it (a shorter element, `{}`, only
// grows the slices as append does).
func countObjects(b []byte) int { return min(bytes.Count(b, []byte("{")), len(b)/minObjectLen+1) }

// minObjectLen is the length of `{"id":""},`.
const minObjectLen = 10

// lit consumes lit when b continues with it.
func (s *scanner) lit(lit string) bool {
	if s.bad || len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// exception reads one object; s.bad on anything unexpected.
func (s *scanner) exception() KeyException {
	var e KeyException
	s.spans = append(s.spans, span{id0: len(s.ids), id1: len(s.ids), r0: len(s.roles), r1: len(s.roles)})
	if !s.lit("{") {
		s.bad = true
		return e
	}
	var seen [5]bool
	for first := true; !s.lit("}"); first = false {
		if s.bad || (!first && !s.lit(",")) {
			s.bad = true
			return e
		}
		s.field(&e, &seen)
	}
	return e
}

// field reads one name and its value into e (the id and the roles into
// the entry's span).
func (s *scanner) field(e *KeyException, seen *[5]bool) {
	name := s.raw()
	if s.bad || !s.lit(":") {
		s.bad = true
		return
	}
	i := -1
	switch string(name) {
	case "id":
		i = 0
	case "revoked":
		i = 1
	case "tier":
		i = 2
	case "roles":
		i = 3
	case "exp":
		i = 4
	}
	if i < 0 || seen[i] {
		s.bad = true
		return
	}
	seen[i] = true
	sp := &s.spans[len(s.spans)-1]
	switch i {
	case 0:
		sp.id0 = len(s.ids)
		s.ids = append(s.ids, s.raw()...)
		sp.id1 = len(s.ids)
	case 1:
		e.Revoked = s.boolean()
	case 2:
		e.Tier = s.str()
	case 3:
		sp.r0, sp.hasRoles = len(s.roles), true
		s.strs()
		sp.r1 = len(s.roles)
	case 4:
		e.ExpiresAt = s.integer()
	}
}

// str reads a string of printable ASCII without escapes, interned.
func (s *scanner) str() string {
	raw := s.raw()
	if v, ok := s.intern[string(raw)]; ok {
		return v
	}
	v := string(raw)
	s.intern[v] = v
	return v
}

// raw reads a string of printable ASCII without escapes and returns its
// bytes (into b).
func (s *scanner) raw() []byte {
	if !s.lit(`"`) {
		s.bad = true
		return nil
	}
	n := bytes.IndexByte(s.b[s.i:], '"')
	if n < 0 {
		s.bad = true
		return nil
	}
	v := s.b[s.i : s.i+n]
	for _, c := range v {
		if c < 0x20 || c > 0x7e || c == '\\' {
			s.bad = true
			return nil
		}
	}
	s.i += n + 1
	return v
}

// strs reads an array of strings onto s.roles.
func (s *scanner) strs() {
	if !s.lit("[") {
		s.bad = true
		return
	}
	for first := true; !s.lit("]"); first = false {
		if s.bad || (!first && !s.lit(",")) {
			s.bad = true
			return
		}
		s.roles = append(s.roles, s.str())
	}
}

func (s *scanner) boolean() bool {
	if s.lit("true") {
		return true
	}
	if !s.lit("false") {
		s.bad = true
	}
	return false
}

// integer reads -?(0|[1-9][0-9]*) that fits an int64.
func (s *scanner) integer() int64 {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || (s.b[digits] == '0' && s.i-digits > 1) {
		s.bad = true
		return 0
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	if err != nil {
		s.bad = true
	}
	return v
}
