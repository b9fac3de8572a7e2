package smoke

import (
	"maps"
	"strings"
	"testing"
	"time"
)

// validTwice: a valid token is allowed with the identity upstream, the
// client's forged identity headers overwritten or removed, credentials
// removed; the same token again is decided from the C table (no new Go
// decision) with exactly the same upstream view.
func (s session) validTwice(t *testing.T) {
	forged := map[string]string{"x-user-id": "mallory", "x-tenant-id": "evil", "x-tollgate-client-ip": "6.6.6.6"}
	want := map[string]string{"x-user-id": "corp:alice", "x-user-roles": "user", "x-consumer-tier": "gold",
		"x-md-route": "orders", "x-md-method": "jwt", "x-md-consumer": "corp:alice", "x-md-user_id": "corp:alice",
		"x-md-tenant": "", "x-md-tier": "gold", "x-md-roles": "user"}
	tok := s.token(t, map[string]any{"tenant": nil}) // no tenant: the forged x-tenant-id must go
	h := map[string]string{"authorization": "Bearer " + tok}
	maps.Copy(h, forged)
	before := goDecisions(s.p)
	first := get(t, s.p.listen, "/jwt/a", h)
	afterFirst := waitLog(s.p, before+1)
	second := get(t, s.p.listen, "/jwt/b", h)
	time.Sleep(100 * time.Millisecond)
	afterSecond := goDecisions(s.p)
	for i, a := range []answer{first, second} {
		if a.status != 200 {
			t.Fatalf("request %d: %d %s", i+1, a.status, a.body)
		}
		if got := identityView(a.upstream); !maps.Equal(got, want) {
			t.Errorf("request %d upstream view:\n got %v\nwant %v", i+1, got, want)
		}
	}
	if afterFirst != before+1 || afterSecond != afterFirst {
		t.Errorf("Go decisions: %d before, %d after the first request, %d after the second; want +1 then +0",
			before, afterFirst, afterSecond)
	}
}

// refusals: the service's denials, from Go, with its bodies and headers.
func (s session) refusals(t *testing.T) {
	valid := s.token(t, nil)
	expired := s.token(t, map[string]any{"iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()})
	get(t, s.p.listen, "/jwt/warm", map[string]string{"authorization": "Bearer " + valid}) // in the table now
	tests := []struct {
		name, path string
		headers    map[string]string
		status     int
		body       string
		challenge  string
	}{
		{"no token", "/jwt", nil, 401, `{"error":"unauthorized","reason":"missing_credentials"}`, `Bearer realm="tollgate"`},
		{"expired", "/jwt", map[string]string{"authorization": "Bearer " + expired}, 401,
			`{"error":"unauthorized","reason":"expired"}`, `Bearer realm="tollgate", error="invalid_token"`},
		{"missing role (token in the table)", "/admin", map[string]string{"authorization": "Bearer " + valid}, 403,
			`{"error":"forbidden","reason":"missing_role"}`, ""},
		{"token and api key", "/jwt", map[string]string{"authorization": "Bearer " + valid, "x-api-key": "k"}, 401,
			`{"error":"unauthorized","reason":"ambiguous_credentials"}`, `Bearer realm="tollgate", error="invalid_token"`},
		{"comma after a cached token", "/jwt", map[string]string{"authorization": "Bearer " + valid + ",x"}, 401,
			`{"error":"unauthorized","reason":"ambiguous_credentials"}`, `Bearer realm="tollgate", error="invalid_token"`},
		{"route config without a requirement", "/norq", map[string]string{"authorization": "Bearer " + valid}, 403,
			`{"error":"forbidden","reason":"no_route_requirement"}`, ""},
		{"cached token minus its last byte", "/jwt", map[string]string{"authorization": "Bearer " + valid[:len(valid)-1]}, 401,
			`{"error":"unauthorized","reason":"bad_signature"}`, `Bearer realm="tollgate", error="invalid_token"`},
	}
	for _, tt := range tests {
		a := get(t, s.p.listen, tt.path, tt.headers)
		if a.status != tt.status || strings.TrimSpace(a.body) != tt.body {
			t.Errorf("%s: %d %q, want %d %q", tt.name, a.status, a.body, tt.status, tt.body)
		}
		if got := a.header.Get("www-authenticate"); got != tt.challenge {
			t.Errorf("%s: www-authenticate %q, want %q", tt.name, got, tt.challenge)
		}
		if a.header.Get("content-type") != "application/json" || a.header.Get("cache-control") != "no-store" {
			t.Errorf("%s: content-type %q cache-control %q", tt.name, a.header.Get("content-type"), a.header.Get("cache-control"))
		}
	}
}

// public: a route without a per-route config passes the module untouched.
func (s session) public(t *testing.T) {
	a := get(t, s.p.listen, "/public", map[string]string{"x-user-id": "mallory", "authorization": "Bearer x"})
	if a.status != 200 || a.upstream["x-user-id"] != "mallory" || a.upstream["authorization"] != "Bearer x" ||
		a.upstream["x-md-route"] != "" {
		t.Fatalf("%d %v", a.status, a.upstream)
	}
}

// forwarded: a route that forwards credentials keeps Authorization, from
// Go and from the table alike.
func (s session) forwarded(t *testing.T) {
	tok := s.token(t, map[string]any{"sub": "bob"})
	before := goDecisions(s.p)
	for i := range 2 {
		a := get(t, s.p.listen, "/fwd", map[string]string{"authorization": "Bearer " + tok})
		if a.status != 200 || a.upstream["authorization"] != "Bearer "+tok || a.upstream["x-user-id"] != "corp:bob" ||
			a.upstream["x-md-route"] != "fwd" {
			t.Fatalf("request %d: %d %v", i+1, a.status, identityView(a.upstream))
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := goDecisions(s.p) - before; n != 1 {
		t.Errorf("%d decisions in Go for two requests with one token, want 1", n)
	}
}

// shutdown: Envoy logged no ABI version mismatch (1.40 only warns), and
// SIGTERM runs the filter config's destroy hook without a Go error.
func (s session) shutdown(t *testing.T) {
	s.p.stop()
	log := s.p.log()
	for _, bad := range []string{"ABI version", "panic", "recovered", "fatal error"} {
		if strings.Contains(log, bad) {
			t.Errorf("envoy log mentions %q", bad)
		}
	}
	i := strings.Index(log, `msg="filter config destroyed"`)
	if i < 0 {
		t.Fatalf("no destroy hook in the log")
	}
	line, _, _ := strings.Cut(log[i:], "\n")
	t.Log(line)
}
