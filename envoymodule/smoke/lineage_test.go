package smoke

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/internal/jwttest"
)

// TestModuleExceptionsPush: the module's filter config served over ECDS
// (here from a watched file, as the control plane serves it over ADS);
// a push that changes only the exceptions table builds a successor that
// keeps its predecessor's cached JWT and unaffected signed key (served
// from the C table: rq_table_allowed counts them, rq_go_allowed does not)
// and leaves the newly revoked key behind (refused 401 revoked_key, in Go);
// the predecessor is destroyed afterwards. A push whose table is not fresh
// refuses the cached key with 503 key_store_unavailable while the cached
// JWT is still served from the table.
func TestModuleExceptionsPush(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" {
		t.Skip("ENVOY_BIN not set")
	}
	fx := newFixture(t)
	ks := mintKeys(t, 1)
	victim := ks.fresh[0]
	fc := filterConfig(fx.iss)
	fc.Keys = ks.keys
	cfg := envoyConfig(fc, fx.listen, fx.admin, fx.upstream)
	withKeyRoute(cfg, "/keys", envoymod.RouteConfig{Extensions: map[string]string{"route": "keys", "methods": "apiKey"}})
	ecds := withECDS(t, cfg, fc)
	p := startEnvoy(t, envoyBin, fx.soDir, cfg, fx.listen, fx.admin)
	s := session{t: t, p: p, iss: fx.iss}
	tok := s.token(t, map[string]any{"sub": "push"})
	creds := map[string]map[string]string{"/jwt": {"authorization": "Bearer " + tok}, "/keys": {"x-api-key": ks.valid}}
	victimH := map[string]string{"x-api-key": victim}
	waitStatus(t, fx.listen, "/keys", creds["/keys"], 200) // the ECDS config (fresh) serves
	for range 2 {
		for path, h := range creds {
			expectStatus(t, fx.listen, path, h, 200)
		}
		expectStatus(t, fx.listen, "/keys", victimH, 200)
	}
	revoked := *ks.keys
	revoked.Exceptions = append(append([]envoymod.KeyException(nil), ks.keys.Exceptions...),
		envoymod.KeyException{ID: keyID(t, victim), Revoked: true})
	fc.Keys = &revoked
	ecds.push(t, fc)
	if a := waitStatus(t, fx.listen, "/keys", victimH, 401); !strings.Contains(a.body, "revoked_key") {
		t.Fatalf("revoked key: %d %s, want 401 revoked_key", a.status, a.body)
	}
	before := moduleStats(t, fx.admin)
	for path, h := range creds {
		expectStatus(t, fx.listen, path, h, 200)
	}
	after := moduleStats(t, fx.admin)
	if d := after["rq_table_allowed"] - before["rq_table_allowed"]; d != 2 || after["rq_go_allowed"] != before["rq_go_allowed"] {
		t.Errorf("after the push: table allowed +%d, Go allowed %d → %d; want +2 from the table, none in Go",
			d, before["rq_go_allowed"], after["rq_go_allowed"])
	}
	if a := get(t, fx.listen, "/keys", victimH); a.status != 401 {
		t.Errorf("revoked key again: %d %s, want 401", a.status, a.body)
	}
	waitLogCount(t, p, "filter config destroyed", 1) // the predecessor (and the default config) freed
	if !strings.Contains(p.log(), "successor=true") {
		t.Errorf("no successor built:\n%s", p.log())
	}
	stale := revoked
	stale.Fresh = false
	fc.Keys = &stale
	ecds.push(t, fc)
	if a := waitStatus(t, fx.listen, "/keys", creds["/keys"], 503); !strings.Contains(a.body, "key_store_unavailable") {
		t.Fatalf("cached key with a stale table: %d %s, want 503 key_store_unavailable", a.status, a.body)
	}
	before = moduleStats(t, fx.admin)
	expectStatus(t, fx.listen, "/jwt", creds["/jwt"], 200)
	if after := moduleStats(t, fx.admin); after["rq_table_allowed"] != before["rq_table_allowed"]+1 {
		t.Errorf("cached JWT with a stale table: table allowed %d → %d, want +1", before["rq_table_allowed"],
			after["rq_table_allowed"])
	}
	for _, l := range strings.Split(p.log(), "\n") {
		if strings.Contains(l, "filter config created") || strings.Contains(l, "filter config destroyed") {
			t.Log(l)
		}
	}
	if t.Failed() {
		t.Logf("envoy log:\n%s", p.log())
	}
}

// ecdsFile is the watched file serving the module's filter config.
type ecdsFile struct {
	dir     string
	version int
}

// withECDS makes cfg's module filter take its config from a watched file
// in a new directory (Envoy's path config source), first fc, until then
// fc without a fresh table (as the control plane's default config).
func withECDS(t *testing.T, cfg map[string]any, fc envoymod.FilterConfig) *ecdsFile {
	t.Helper()
	e := &ecdsFile{dir: t.TempDir()}
	e.push(t, fc)
	def := fc
	k := *fc.Keys
	k.Fresh, k.Epoch, k.Exceptions = false, "", nil
	def.Keys = &k
	cfg["node"] = map[string]any{"id": "smoke", "cluster": "smoke"} // a path config source needs them
	sr := cfg["static_resources"].(map[string]any)
	chains := sr["listeners"].([]any)[0].(map[string]any)["filter_chains"].([]any)
	hcm := chains[0].(map[string]any)["filters"].([]any)[0].(map[string]any)["typed_config"].(map[string]any)
	filters := hcm["http_filters"].([]any)
	filters[0] = map[string]any{"name": envoymod.FilterName, "config_discovery": map[string]any{
		"config_source": map[string]any{"resource_api_version": "V3", "path_config_source": map[string]any{
			"path": filepath.Join(e.dir, "ecds.json"), "watched_directory": map[string]any{"path": e.dir}}},
		"default_config":                       moduleFilter(def),
		"apply_default_config_without_warming": true,
		"type_urls":                            []string{moduleFilterType},
	}}
	return e
}

const moduleFilterType = "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"

// moduleFilter is the module's DynamicModuleFilter with fc (a FilterConfig,
// or its JSON as a map: see stringValue).
func moduleFilter(fc any) map[string]any {
	return map[string]any{"@type": moduleFilterType,
		"dynamic_module_config": map[string]any{"name": "tollgate_envoy", "do_not_close": true},
		"filter_name":           envoymod.FilterName, "filter_config": stringValue(fc)}
}

// push serves fc (a FilterConfig, or its JSON as a map: see stringValue)
// as the next version (written aside, then renamed over the watched file).
func (e *ecdsFile) push(t *testing.T, fc any) {
	t.Helper()
	e.version++
	doc := map[string]any{"version_info": time.Now().Format(time.RFC3339Nano), "resources": []any{map[string]any{
		"@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig", "name": envoymod.FilterName,
		"typed_config": moduleFilter(fc)}}}
	writeDiscovery(t, e.dir, "ecds.json", doc)
}

// writeDiscovery writes doc as JSON to dir/name, aside first and then
// renamed over it, so a watching Envoy reads the whole file.
func writeDiscovery(t *testing.T, dir, name string, doc any) {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "next.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// keyID is a signed key's id (its jti claim).
func keyID(t *testing.T, key string) string {
	t.Helper()
	parts := strings.Split(key, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Jti string `json:"jti"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Jti == "" {
		t.Fatalf("key claims: %v", err)
	}
	return c.Jti
}

func expectStatus(t *testing.T, listen int, path string, h map[string]string, want int) {
	t.Helper()
	if a := get(t, listen, path, h); a.status != want {
		t.Fatalf("%s: %d %s, want %d", path, a.status, a.body, want)
	}
}

// waitStatus asks until the answer is want (10 s at most) and returns it.
func waitStatus(t *testing.T, listen int, path string, h map[string]string, want int) answer {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := get(t, listen, path, h)
		if a.status == want || time.Now().After(deadline) {
			if a.status != want {
				t.Fatalf("%s: still %d %s after 10 s, want %d", path, a.status, a.body, want)
			}
			return a
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLogCount waits (10 s at most) until Envoy's log holds s n times.
func waitLogCount(t *testing.T, p *envoyProc, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(p.log(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q logged %d times after 10 s, want %d", s, strings.Count(p.log(), s), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestModuleWithdrawnKeyAfterPush: a token the predecessor verified with
// JWKS key k2 is served from the successor's table (copied at the push);
// once the shared verifier's refreshed JWKS lacks k2, the successor's
// table is cleared with it (the lineage's hook, not the table of the
// destroyed configuration that built the verifier) and the token is
// refused 401 unknown_kid.
func TestModuleWithdrawnKeyAfterPush(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" {
		t.Skip("ENVOY_BIN not set")
	}
	fx := newFixture(t)
	k2, err := jwttest.New(fx.iss.Issuer, fx.iss.Audience)
	if err != nil {
		t.Fatal(err)
	}
	k2.KID = "k2"
	idp := newRotatingJWKS(t, fx.iss, k2)
	ks := mintKeys(t, 1)
	fc := filterConfig(fx.iss)
	fc.JWT[0].JWKS, fc.JWT[0].JWKSURI = "", idp.url
	fc.Keys = ks.keys
	cfg := envoyConfig(fc, fx.listen, fx.admin, fx.upstream)
	withKeyRoute(cfg, "/keys", envoymod.RouteConfig{Extensions: map[string]string{"route": "keys", "methods": "apiKey"}})
	ecds := withECDS(t, cfg, fc)
	p := startEnvoy(t, envoyBin, fx.soDir, cfg, fx.listen, fx.admin)
	s := session{t: t, p: p, iss: k2}
	claims := map[string]any{"sub": "rotated"}
	h := map[string]string{"authorization": "Bearer " + s.token(t, claims)}
	waitStatus(t, fx.listen, "/keys", map[string]string{"x-api-key": ks.valid}, 200) // the ECDS config serves
	expectStatus(t, fx.listen, "/jwt", h, 200)
	revoked := *ks.keys
	revoked.Exceptions = append(append([]envoymod.KeyException(nil), ks.keys.Exceptions...),
		envoymod.KeyException{ID: keyID(t, ks.fresh[0]), Revoked: true})
	fc.Keys = &revoked
	ecds.push(t, fc)
	waitStatus(t, fx.listen, "/keys", map[string]string{"x-api-key": ks.fresh[0]}, 401) // the successor serves
	waitLogCount(t, p, "filter config destroyed", 2)                                    // default, then the predecessor
	before := moduleStats(t, fx.admin)
	expectStatus(t, fx.listen, "/jwt", h, 200)
	if after := moduleStats(t, fx.admin); after["rq_table_allowed"] != before["rq_table_allowed"]+1 {
		t.Fatalf("k2's token after the push: table allowed %d → %d, want +1 (copied)", before["rq_table_allowed"],
			after["rq_table_allowed"])
	}
	idp.withdraw()
	rotated, err := jwttest.New(fx.iss.Issuer, fx.iss.Audience)
	if err != nil {
		t.Fatal(err)
	}
	rotated.KID = "rotated" // unknown: the verifier fetches the JWKS (at most once per 5 s)
	fetches := idp.fetches.Load()
	u := map[string]string{"authorization": "Bearer " + session{t: t, p: p, iss: rotated}.token(t, claims)}
	deadline := time.Now().Add(15 * time.Second)
	for a := get(t, fx.listen, "/jwt", u); idp.fetches.Load() == fetches || a.status != 401; a = get(t, fx.listen, "/jwt", u) {
		if time.Now().After(deadline) {
			t.Fatalf("no JWKS fetch after an unknown kid: %d %s", a.status, a.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a := get(t, fx.listen, "/jwt", h); a.status != 401 || !strings.Contains(a.body, "unknown_kid") {
		t.Fatalf("k2's token after k2 was withdrawn: %d %s, want 401 unknown_kid", a.status, a.body)
	}
	if t.Failed() {
		t.Logf("envoy log:\n%s", p.log())
	}
}

// rotatingJWKS serves the JWKS of its issuers until withdraw, then the
// first one's alone.
type rotatingJWKS struct {
	url     string
	fetches atomic.Int64
	gone    atomic.Bool
}

func newRotatingJWKS(t *testing.T, keep, drop *jwttest.Issuer) *rotatingJWKS {
	t.Helper()
	r := &rotatingJWKS{}
	keys := func(i *jwttest.Issuer) []any {
		var set struct {
			Keys []any `json:"keys"`
		}
		if err := json.Unmarshal([]byte(i.JWKS()), &set); err != nil {
			t.Fatal(err)
		}
		return set.Keys
	}
	both, _ := json.Marshal(map[string]any{"keys": append(keys(keep), keys(drop)...)})
	one := keep.JWKS()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.fetches.Add(1)
		if r.gone.Load() {
			_, _ = w.Write([]byte(one))
			return
		}
		_, _ = w.Write(both)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *rotatingJWKS) withdraw() { r.gone.Store(true) }
