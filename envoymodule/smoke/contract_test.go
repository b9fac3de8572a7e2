package smoke

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

// wrongContract is the contract of a module or control plane of another
// Tollgate version.
const wrongContract = "r0-0000000000000000"

// withoutContract is v's JSON (a FilterConfig or RouteConfig) as a map,
// without its contract: what a control plane older than the contract
// writes.
func withoutContract(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "contract")
	return m
}

// TestModuleContractECDS: a filter configuration of another contract (a
// wrong one, none, a wrong one that does not even decode) served over ECDS is refused by the module, one log
// line naming both contracts and the fix, and rejected by Envoy (its ECDS
// config_fail counter: a NACK to a control plane); the previous
// configuration keeps serving (the key both would have revoked is still
// admitted) until the same change comes with the module's contract.
func TestModuleContractECDS(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" {
		t.Skip("ENVOY_BIN not set")
	}
	fx := newFixture(t)
	ks := mintKeys(t, 1)
	fc := filterConfig(fx.iss)
	fc.Keys = ks.keys
	cfg := envoyConfig(fc, fx.listen, fx.admin, fx.upstream)
	withKeyRoute(cfg, "/keys", envoymod.RouteConfig{Extensions: map[string]string{"route": "keys", "methods": "apiKey"}})
	ecds := withECDS(t, cfg, fc)
	p := startEnvoy(t, envoyBin, fx.soDir, cfg, fx.listen, fx.admin)
	victim := map[string]string{"x-api-key": ks.fresh[0]}
	waitStatus(t, fx.listen, "/keys", victim, 200)
	revoked := *ks.keys
	revoked.Exceptions = append(append([]envoymod.KeyException(nil), ks.keys.Exceptions...),
		envoymod.KeyException{ID: keyID(t, ks.fresh[0]), Revoked: true})
	next := fc
	next.Keys = &revoked
	wrong := next
	wrong.Contract = wrongContract
	undecodable := withoutContract(t, next) // what this module cannot decode: the contract is still named
	undecodable["contract"], undecodable["cacheSize"] = wrongContract, "many"
	failed := "extension_config_discovery.http_filter." + envoymod.FilterName + ".config_fail"
	for i, push := range []struct {
		name   string
		config any
		got    string
	}{{"wrong contract", wrong, wrongContract}, {"no contract", withoutContract(t, next), "contract none,"},
		{"wrong contract, a field of another type", undecodable, wrongContract}} {
		ecds.push(t, push.config)
		waitStat(t, fx.admin, failed, i+1)
		refusedLine(t, p, "filter config refused", i+1, push.got)
		for range 3 {
			expectStatus(t, fx.listen, "/keys", victim, 200)
		}
	}
	ecds.push(t, next)
	if a := waitStatus(t, fx.listen, "/keys", victim, 401); !strings.Contains(a.body, "revoked_key") {
		t.Fatalf("revoked key: %d %s, want 401 revoked_key", a.status, a.body)
	}
	if n := envoyStat(t, fx.admin, failed); n != 3 {
		t.Errorf("%s: %d, want 3", failed, n)
	}
	if strings.Contains(p.log(), "bad JSON") {
		t.Errorf("a configuration of another contract logged as bad JSON:\n%s", p.log())
	}
	if t.Failed() {
		t.Logf("envoy log:\n%s", p.log())
	}
}

// TestModuleContractLDS: the listener served over LDS (from a watched
// file, as the control plane serves it over ADS) with the module, a
// stand-in for ext_authz and the charger. At Envoy's start a listener
// whose module filter is of another contract is rejected: nothing listens
// on its port. Once a correct one serves, a change (/jwt for role admin)
// with another contract in the module's filter config, the charger's
// filter config or /jwt's per-route config is rejected each time
// (listener_manager.lds.update_rejected, the module's log line): /jwt
// keeps admitting a caller without the role; the same change with the
// module's contract everywhere refuses it.
func TestModuleContractLDS(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" {
		t.Skip("ENVOY_BIN not set")
	}
	fx := newFixture(t)
	l := ldsListener{fx: fx, fc: filterConfig(fx.iss),
		quota: &envoymod.Quota{Address: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Domain: ir.RateLimitQuotaDomain}}
	lds := newLDSFile(t)
	lds.push(t, l.build(t, false, "first"))
	p := startEnvoy(t, envoyBin, fx.soDir, l.bootstrap(lds), fx.listen, fx.admin)
	rejected := "listener_manager.lds.update_rejected"
	waitStat(t, fx.admin, rejected, 1)
	refusedLine(t, p, "filter config refused", 1, wrongContract)
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", fx.listen), time.Second); err == nil {
		c.Close()
		t.Fatalf("a listener of another contract at Envoy's start: port %d accepts connections", fx.listen)
	}
	if st := adminStatus(t, fx.admin, "/ready"); st != 200 {
		t.Errorf("GET /ready with the only listener refused: %d, want 200 (Envoy reports LIVE: a readiness "+
			"probe on /ready alone admits such an Envoy, see deploy/kubernetes_module_test.go)", st)
	}
	s := session{t: t, p: p, iss: fx.iss}
	user := map[string]string{"authorization": "Bearer " + s.token(t, nil)} // roles: user
	lds.push(t, l.build(t, false, ""))
	waitFresh(t, fx.listen, "/jwt", user, 200)
	for i, in := range []string{"first", "charger", "route"} {
		lds.push(t, l.build(t, true, in))
		waitStat(t, fx.admin, rejected, i+2)
		what := map[string]string{"first": "filter config refused", "charger": "filter config refused",
			"route": "route config refused"}[in]
		refusedLine(t, p, what, map[string]int{"first": 2, "charger": 3, "route": 1}[in], wrongContract)
		for range 3 {
			if st, body := fresh(t, fx.listen, "/jwt", user); st != 200 {
				t.Fatalf("after a rejected listener (%s of another contract): /jwt %d %s, want 200", in, st, body)
			}
		}
	}
	lds.push(t, l.build(t, true, ""))
	waitFresh(t, fx.listen, "/jwt", user, 403)
	if n := envoyStat(t, fx.admin, rejected); n != 4 {
		t.Errorf("%s: %d, want 4", rejected, n)
	}
	if t.Failed() {
		t.Logf("envoy log:\n%s", p.log())
	}
}

// ldsListener builds the smoke listener (envoyConfig with withCharger)
// for LDS.
type ldsListener struct {
	fx    fixture
	fc    envoymod.FilterConfig
	quota *envoymod.Quota
}

// build returns the listener, /jwt for role admin when admin, with
// wrongContract in the module's filter config (wrongIn "first"), the
// charger's ("charger") or /jwt's per-route config ("route"); "": none.
func (l ldsListener) build(t *testing.T, admin bool, wrongIn string) map[string]any {
	t.Helper()
	fc := l.fc
	fc.Quota = l.quota
	cfg := envoyConfig(fc, l.fx.listen, l.fx.admin, l.fx.upstream)
	withCharger(cfg, l.quota)
	listener := cfg["static_resources"].(map[string]any)["listeners"].([]any)[0].(map[string]any)
	hcm := listener["filter_chains"].([]any)[0].(map[string]any)["filters"].([]any)[0].(map[string]any)["typed_config"].(map[string]any)
	filters := hcm["http_filters"].([]any)
	wrong := func(i int, c envoymod.FilterConfig) {
		c.Contract = wrongContract
		filters[i].(map[string]any)["typed_config"].(map[string]any)["filter_config"] = stringValue(c)
	}
	switch wrongIn {
	case "first":
		wrong(0, fc)
	case "charger":
		wrong(2, envoymod.FilterConfig{Charge: true, Quota: l.quota})
	}
	rc := envoymod.RouteConfig{Extensions: map[string]string{"route": "orders", "methods": "jwt"}}
	if admin {
		rc.Extensions["roles"] = "admin"
	}
	if wrongIn == "route" {
		rc.Contract = wrongContract
	}
	for _, r := range hcm["route_config"].(map[string]any)["virtual_hosts"].([]any)[0].(map[string]any)["routes"].([]any) {
		r := r.(map[string]any)
		if r["match"].(map[string]any)["prefix"] == "/jwt" {
			r["typed_per_filter_config"].(map[string]any)[envoymod.FilterName].(map[string]any)["filter_config"] = stringValue(rc)
		}
	}
	listener["@type"] = "type.googleapis.com/envoy.config.listener.v3.Listener"
	return listener
}

// bootstrap is Envoy's bootstrap taking its listener from lds.
func (l ldsListener) bootstrap(lds *ldsFile) map[string]any {
	cfg := envoyConfig(l.fc, l.fx.listen, l.fx.admin, l.fx.upstream)
	delete(cfg["static_resources"].(map[string]any), "listeners")
	cfg["node"] = map[string]any{"id": "smoke", "cluster": "smoke"}
	cfg["dynamic_resources"] = map[string]any{"lds_config": map[string]any{"resource_api_version": "V3",
		"path_config_source": map[string]any{"path": filepath.Join(lds.dir, "lds.json"),
			"watched_directory": map[string]any{"path": lds.dir}}}}
	return cfg
}

// ldsFile is the watched file serving the listener.
type ldsFile struct{ dir string }

func newLDSFile(t *testing.T) *ldsFile { return &ldsFile{dir: t.TempDir()} }

// push serves listener as the next version (written aside, then renamed
// over the watched file).
func (f *ldsFile) push(t *testing.T, listener map[string]any) {
	t.Helper()
	writeDiscovery(t, f.dir, "lds.json", map[string]any{"version_info": time.Now().Format(time.RFC3339Nano),
		"resources": []any{listener}})
}

// fresh sends GET path on a new connection (a replaced listener's
// connections drain slowly, still on its route table) and returns the
// status and body.
func fresh(t *testing.T, listen int, path string, h map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", listen, path), nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFresh asks (fresh) until the status is want, 10 s at most.
func waitFresh(t *testing.T, listen int, path string, h map[string]string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, body := fresh(t, listen, path, h)
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %d %s after 10 s, want %d", path, st, body, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// envoyStat is Envoy's stat name (0 when it is not defined).
func envoyStat(t *testing.T, admin int, name string) int {
	t.Helper()
	body := adminGet(t, admin, "/stats?filter="+url.QueryEscape("^"+regexp.QuoteMeta(name)+"$"))
	_, v, ok := strings.Cut(strings.TrimSpace(body), ": ")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("stat %s: %q", name, body)
	}
	return n
}

// waitStat waits (10 s at most) until Envoy's stat name is n.
func waitStat(t *testing.T, admin int, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for envoyStat(t, admin, name) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d after 10 s, want %d", name, envoyStat(t, admin, name), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// refusedLine checks that Envoy's log holds what n times, the last such
// line naming got, the module's contract and the fix.
func refusedLine(t *testing.T, p *envoyProc, what string, n int, got string) {
	t.Helper()
	waitLogCount(t, p, what, n)
	var last string
	for _, line := range strings.Split(p.log(), "\n") {
		if strings.Contains(line, what) {
			last = line
		}
	}
	for _, want := range []string{got, envoymod.ContractID(), "deploy the module and the control plane"} {
		if !strings.Contains(last, want) {
			t.Errorf("log line %q does not name %q", last, want)
		}
	}
	t.Log(last)
}

// adminStatus is the status of GET path on Envoy's admin interface.
func adminStatus(t *testing.T, admin int, path string) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", admin, path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
