package smoke

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

// keyPepper derives the smoke tests' key signer.
var keyPepper = []byte("smoke-test-pepper-0123456789abcdef")

// keySet is the signed keys of TestModuleKeys, minted by a key store whose
// epoch and exceptions the module's filter config carries.
type keySet struct {
	keys                                            *envoymod.Keys
	valid, updated, revoked, shortened, expired     string
	foreign, tampered, limited, limitedOther, other string
	fresh                                           []string // more valid keys, of consumers of their own
}

// mintKeys creates the keys and the filter config's Keys: valid (gold,
// role user), updated (its exception: tier basic, role admin), revoked,
// shortened (its exception's expiry passed), expired (its exp passed),
// foreign (another store's epoch), tampered (valid's signature altered),
// limited and limitedOther (gold, consumers of their own), other, and
// fresh more.
func mintKeys(t *testing.T, fresh int) keySet {
	t.Helper()
	sig, err := apikey.NewSigner(keyPepper)
	if err != nil {
		t.Fatal(err)
	}
	store, elsewhere := apikey.NewMemoryStoreWithSigner(keyPepper, sig), apikey.NewMemoryStoreWithSigner(keyPepper, sig)
	create := func(st *apikey.MemoryStore, rec apikey.Record) (string, string) {
		key, stored, err := st.Create(context.Background(), rec)
		if err != nil {
			t.Fatal(err)
		}
		return key, stored.ID
	}
	gold := apikey.Record{Consumer: "acme", Tenant: "t1", Tier: "gold", Roles: []string{"user"}}
	var ks keySet
	var updatedID, revokedID, shortenedID string
	ks.valid, _ = create(store, gold)
	ks.updated, updatedID = create(store, gold)
	ks.revoked, revokedID = create(store, gold)
	ks.shortened, shortenedID = create(store, gold)
	now := time.Now()
	ks.expired, _ = create(store, apikey.Record{Consumer: "acme", CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)})
	ks.foreign, _ = create(elsewhere, gold)
	ks.limited, _ = create(store, apikey.Record{Consumer: "limited", Tier: "gold"})
	ks.limitedOther, _ = create(store, apikey.Record{Consumer: "limited-other", Tier: "gold"})
	ks.other, _ = create(store, apikey.Record{Consumer: "other"})
	for i := range fresh {
		k, _ := create(store, apikey.Record{Consumer: fmt.Sprintf("bulk-%d", i), Tier: "gold", Roles: []string{"user"}})
		ks.fresh = append(ks.fresh, k)
	}
	parts := strings.Split(ks.valid, ".")
	ks.tampered = strings.Join([]string{parts[0], parts[1], parts[2], strings.Repeat("A", len(parts[3]))}, ".")
	x, err := store.Exceptions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ks.keys = &envoymod.Keys{PublicKey: base64.RawURLEncoding.EncodeToString(sig.PublicKey()), Namespace: "partners",
		Fresh: true, Epoch: x.Epoch, Exceptions: []envoymod.KeyException{{ID: updatedID, Tier: "basic", Roles: []string{"admin"}},
			{ID: revokedID, Revoked: true}, {ID: shortenedID, ExpiresAt: now.Add(-time.Minute).Unix()}}}
	return ks
}

// keyedFixture starts a key test: the Envoy binary (the test is skipped
// without ENVOY_BIN), a fixture, keys minted by mintKeys and the filter
// config deciding them.
func keyedFixture(t *testing.T) (string, fixture, keySet, envoymod.FilterConfig) {
	t.Helper()
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" {
		t.Skip("ENVOY_BIN not set")
	}
	fx := newFixture(t)
	ks := mintKeys(t, 0)
	fc := filterConfig(fx.iss)
	fc.Keys = ks.keys
	return envoyBin, fx, ks, fc
}

// withNativeHeader makes the first route of cfg's first listener copy the
// native marker into x-md-native.
func withNativeHeader(cfg map[string]any) {
	sr := cfg["static_resources"].(map[string]any)
	chains := sr["listeners"].([]any)[0].(map[string]any)["filter_chains"].([]any)
	hcm := chains[0].(map[string]any)["filters"].([]any)[0].(map[string]any)["typed_config"].(map[string]any)
	r := hcm["route_config"].(map[string]any)["virtual_hosts"].([]any)[0].(map[string]any)["routes"].([]any)[0].(map[string]any)
	r["request_headers_to_add"] = append(r["request_headers_to_add"].([]any), map[string]any{"header": map[string]any{
		"key": "x-md-native", "value": "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:" + envoymod.NativeMarkerKey + ")%"}})
}

// withKeyRoute puts a module route with rc at prefix first in cfg's
// routes, copying the native marker upstream.
func withKeyRoute(cfg map[string]any, prefix string, rc envoymod.RouteConfig) {
	withRoute(cfg, prefix, rc)
	withNativeHeader(cfg)
}

// withListenerFilterConfig replaces the module's filter config of cfg's
// listener i.
func withListenerFilterConfig(cfg map[string]any, i int, fc envoymod.FilterConfig) {
	sr := cfg["static_resources"].(map[string]any)
	chains := sr["listeners"].([]any)[i].(map[string]any)["filter_chains"].([]any)
	hcm := chains[0].(map[string]any)["filters"].([]any)[0].(map[string]any)["typed_config"].(map[string]any)
	hcm["http_filters"].([]any)[0].(map[string]any)["typed_config"].(map[string]any)["filter_config"] = stringValue(fc)
}

// TestModuleKeys: with FilterConfig.Keys the module decides signed API
// keys as the ext_authz service does (identity upstream, the native
// marker, the service's refusals), serves a repeated key from the C
// table, passes an opaque key untouched, charges signed keys to a
// route's limits; a second listener whose exceptions table is not fresh
// refuses every signed key with 503.
func TestModuleKeys(t *testing.T) {
	envoyBin, fx, ks, fc := keyedFixture(t)
	fc.Quota = &envoymod.Quota{Address: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Domain: ir.RateLimitQuotaDomain}
	cfg := envoyConfig(fc, fx.listen, fx.admin, fx.upstream)
	ext := func(route, methods string, extra ...string) map[string]string {
		e := map[string]string{"route": route, "methods": methods}
		for i := 0; i+1 < len(extra); i += 2 {
			e[extra[i]] = extra[i+1]
		}
		return e
	}
	withKeyRoute(cfg, "/keys", envoymod.RouteConfig{Extensions: ext("keys", "apiKey")})
	withKeyRoute(cfg, "/mixed", envoymod.RouteConfig{Extensions: ext("mixed", "jwt,apiKey")})
	withKeyRoute(cfg, "/kadmin", envoymod.RouteConfig{Extensions: ext("kadmin", "apiKey", "roles", "admin")})
	withKeyRoute(cfg, "/kfwd", envoymod.RouteConfig{Extensions: ext("kfwd", "apiKey", "forward_credentials", "true")})
	withKeyRoute(cfg, "/klimited", envoymod.RouteConfig{Extensions: ext("klimited", "apiKey"), Limits: routeLimits()})
	second := freePort(t)
	withSecondListener(t, cfg, second)
	stale := fc
	staleKeys := *ks.keys
	staleKeys.Fresh = false
	stale.Keys = &staleKeys
	withListenerFilterConfig(cfg, 1, stale)
	p := startEnvoy(t, envoyBin, fx.soDir, cfg, fx.listen, fx.admin)
	s := keySession{session: session{t: t, p: p, iss: fx.iss}, ks: ks, admin: fx.admin, second: second}
	t.Run("signed key allowed, then from the table", s.allowedTwice)
	t.Run("refusals", s.refusals)
	t.Run("opaque keys pass", s.opaquePasses)
	t.Run("jwt on a mixed route carries the marker", s.jwtMarker)
	t.Run("forwarded", s.forwarded)
	t.Run("limits", s.limits)
	t.Run("not fresh", s.notFresh)
	if t.Failed() {
		t.Logf("envoy log:\n%s", p.log())
	}
}

type keySession struct {
	session
	ks            keySet
	admin, second int
}

// allowedTwice: a valid signed key, in the key header then as
// "ApiKey <key>", is allowed with the key's identity upstream (namespaced
// consumer, forged identity headers overwritten or removed, credentials
// removed) and the native marker; the first request is decided in Go, the
// next ones from the C table.
func (s keySession) allowedTwice(t *testing.T) {
	want := map[string]string{"x-user-id": "partners:acme", "x-user-roles": "user", "x-tenant-id": "t1", "x-consumer-tier": "gold",
		"x-md-route": "keys", "x-md-method": "apiKey", "x-md-consumer": "partners:acme", "x-md-user_id": "partners:acme",
		"x-md-tenant": "t1", "x-md-tier": "gold", "x-md-roles": "user"}
	before, tableBefore := goDecisions(s.p), moduleStats(t, s.admin)["rq_table_allowed"]
	hs := []map[string]string{
		{"x-api-key": s.ks.valid, "x-user-id": "mallory", "x-tollgate-client-ip": "6.6.6.6"},
		{"x-api-key": s.ks.valid},
		{"authorization": "ApiKey " + s.ks.valid},
		{"authorization": "apikey " + s.ks.valid},
	}
	for i, h := range hs {
		a := get(t, s.p.listen, "/keys/x", h)
		if i == 0 {
			waitLog(s.p, before+1)
		}
		if a.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+1, a.status, a.body)
		}
		if got := identityView(a.upstream); !maps.Equal(got, want) {
			t.Errorf("request %d upstream view:\n got %v\nwant %v", i+1, got, want)
		}
		if a.upstream["x-md-native"] != "apiKey" || a.upstream["x-api-key"] != "" {
			t.Errorf("request %d: marker %q, key header %q upstream; want apiKey, none", i+1, a.upstream["x-md-native"],
				a.upstream["x-api-key"])
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := goDecisions(s.p) - before; n != 1 {
		t.Errorf("%d decisions in Go for %d requests with one key, want 1", n, len(hs))
	}
	if n := moduleStats(t, s.admin)["rq_table_allowed"] - tableBefore; n != len(hs)-1 {
		t.Errorf("rq_table_allowed grew by %d, want %d", n, len(hs)-1)
	}
	a := get(t, s.p.listen, "/kadmin", map[string]string{"x-api-key": s.ks.updated})
	if a.status != http.StatusOK || a.upstream["x-consumer-tier"] != "basic" || a.upstream["x-user-roles"] != "admin" {
		t.Errorf("updated key on /kadmin: %d %v, want 200 with the exception's tier and roles", a.status, identityView(a.upstream))
	}
}

// refusals: the ext_authz service's answers, with its bodies and
// challenge; the valid key is in the table for the role refusal.
func (s keySession) refusals(t *testing.T) {
	const challenge = `ApiKey realm="tollgate"`
	body := func(reason string) string { return `{"error":"unauthorized","reason":"` + reason + `"}` }
	key := func(k string) map[string]string { return map[string]string{"x-api-key": k} }
	tests := []struct {
		name, path string
		headers    map[string]string
		status     int
		body       string
		challenge  string
	}{
		{"revoked", "/keys", key(s.ks.revoked), 401, body("revoked_key"), challenge},
		{"exception's expiry passed", "/keys", key(s.ks.shortened), 401, body("expired_key"), challenge},
		{"exp passed", "/keys", key(s.ks.expired), 401, body("expired_key"), challenge},
		{"another epoch", "/keys", key(s.ks.foreign), 401, body("unknown_key"), challenge},
		{"tampered", "/keys", key(s.ks.tampered), 401, body("unknown_key"), challenge},
		{"tampered as ApiKey", "/keys", map[string]string{"authorization": "ApiKey " + s.ks.tampered}, 401, body("unknown_key"), challenge},
		{"malformed", "/keys", key("tg.a.b"), 401, body("malformed_key"), challenge},
		{"missing role (key in the table)", "/kadmin", key(s.ks.valid), 403, `{"error":"forbidden","reason":"missing_role"}`, ""},
		{"key and authorization", "/keys", map[string]string{"x-api-key": s.ks.valid, "authorization": "ApiKey " + s.ks.valid}, 401,
			body("ambiguous_credentials"), challenge},
		{"key on a jwt route", "/jwt", key(s.ks.valid), 401, body("method_not_allowed"), `Bearer realm="tollgate", error="invalid_token"`},
	}
	for _, tt := range tests {
		a := get(t, s.p.listen, tt.path, tt.headers)
		if a.status != tt.status || strings.TrimSpace(a.body) != tt.body {
			t.Errorf("%s: %d %q, want %d %q", tt.name, a.status, a.body, tt.status, tt.body)
		}
		if got := a.header.Get("www-authenticate"); got != tt.challenge {
			t.Errorf("%s: www-authenticate %q, want %q", tt.name, got, tt.challenge)
		}
	}
}

// opaquePasses: an API key not in signed form on a route that accepts
// keys passes the module untouched (no identity, no marker, the key
// kept), counted in rq_go_passed; on a JWT-only route it is refused.
func (s keySession) opaquePasses(t *testing.T) {
	before := moduleStats(t, s.admin)["rq_go_passed"]
	opaque := "tg_27rPErmv_" + strings.Repeat("a", 32) + "_000000"
	for _, h := range []map[string]string{{"x-api-key": opaque, "x-user-id": "forged"}, {"authorization": "ApiKey " + opaque}} {
		a := get(t, s.p.listen, "/mixed", h)
		if a.status != http.StatusOK || a.upstream["x-md-route"] != "" || a.upstream["x-md-native"] != "" ||
			a.upstream["x-user-id"] != h["x-user-id"] || (a.upstream["x-api-key"] != opaque && a.upstream["authorization"] != "ApiKey "+opaque) {
			t.Errorf("%v: %d %v, want the request untouched upstream", h, a.status, a.upstream)
		}
	}
	if n := moduleStats(t, s.admin)["rq_go_passed"] - before; n != 2 {
		t.Errorf("rq_go_passed grew by %d, want 2", n)
	}
	if a := get(t, s.p.listen, "/jwt", map[string]string{"x-api-key": opaque}); a.status != 401 {
		t.Errorf("opaque key on a jwt route: %d %s, want 401", a.status, a.body)
	}
}

// jwtMarker: with Keys, a JWT allowed on a mixed route carries the
// marker "jwt", from Go and from the table.
func (s keySession) jwtMarker(t *testing.T) {
	tok := s.token(t, map[string]any{"sub": "marker"})
	for i := range 2 {
		a := get(t, s.p.listen, "/mixed", map[string]string{"authorization": "Bearer " + tok})
		if a.status != http.StatusOK || a.upstream["x-md-native"] != "jwt" || a.upstream["x-md-route"] != "mixed" {
			t.Errorf("request %d: %d %v native %q", i+1, a.status, identityView(a.upstream), a.upstream["x-md-native"])
		}
	}
}

// forwarded: a route that forwards credentials keeps the key, from Go and
// from the table.
func (s keySession) forwarded(t *testing.T) {
	for i := range 2 {
		a := get(t, s.p.listen, "/kfwd", map[string]string{"x-api-key": s.ks.other})
		if a.status != http.StatusOK || a.upstream["x-api-key"] != s.ks.other || a.upstream["x-user-id"] != "partners:other" {
			t.Errorf("request %d: %d %v", i+1, a.status, identityView(a.upstream))
		}
	}
}

// limits: a gold key's bucket admits its burst of 3 (the first from Go,
// the others from the table) then the static 429; another consumer has
// its own bucket.
func (s keySession) limits(t *testing.T) {
	statuses := func(key string) []int {
		var out []int
		for range 5 {
			out = append(out, get(t, s.p.listen, "/klimited", map[string]string{"x-api-key": key}).status)
		}
		return out
	}
	want := fmt.Sprint([]int{200, 200, 200, 429, 429})
	if got := fmt.Sprint(statuses(s.ks.limited)); got != want {
		t.Errorf("gold key: %s, want %s", got, want)
	}
	if got := fmt.Sprint(statuses(s.ks.limitedOther)); got != want {
		t.Errorf("another gold consumer: %s, want %s", got, want)
	}
	a := get(t, s.p.listen, "/klimited", map[string]string{"x-api-key": s.ks.limited})
	if strings.TrimSpace(a.body) != limitsDenyBody {
		t.Errorf("429 body %q, want %q", a.body, limitsDenyBody)
	}
}

// notFresh: the second listener's table is not fresh: every signed key
// is refused with 503 key_store_unavailable; an opaque key still passes.
func (s keySession) notFresh(t *testing.T) {
	for _, k := range []string{s.ks.valid, s.ks.revoked} {
		a := get(t, s.second, "/keys", map[string]string{"x-api-key": k})
		if a.status != 503 || strings.TrimSpace(a.body) != `{"error":"unavailable","reason":"key_store_unavailable"}` ||
			a.header.Get("www-authenticate") != "" {
			t.Errorf("not fresh: %d %q %v", a.status, a.body, a.header)
		}
	}
}
