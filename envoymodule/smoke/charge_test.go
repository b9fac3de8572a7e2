package smoke

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

// chargerName is the charger's filter name in the smoke Envoy (the
// translator's is tollgate.module_charge).
const chargerName = "charger"

// withCharger adds, after cfg's module filter, a header_to_metadata filter
// standing in for ext_authz (it writes x-test-consumer and x-test-tier as
// "consumer" and "tier" into ext_authz's metadata namespace, as the
// ext_authz filter writes a Check response's identity) and the charger
// (FilterConfig.Charge with quota q); /charged is a key route limited by
// ietfLimits in both instances.
func withCharger(cfg map[string]any, q *envoymod.Quota) {
	sr := cfg["static_resources"].(map[string]any)
	chains := sr["listeners"].([]any)[0].(map[string]any)["filter_chains"].([]any)
	hcm := chains[0].(map[string]any)["filters"].([]any)[0].(map[string]any)["typed_config"].(map[string]any)
	rule := func(header, key string) map[string]any {
		return map[string]any{"header": header, "remove": true, "on_header_present": map[string]any{
			"metadata_namespace": envoymod.ChargeMetadataNamespace, "key": key, "type": "STRING"}}
	}
	stand := map[string]any{"name": "ext_authz_stand_in", "typed_config": map[string]any{
		"@type":         "type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config",
		"request_rules": []any{rule("x-test-consumer", "consumer"), rule("x-test-tier", "tier")}}}
	charger := map[string]any{"name": chargerName, "typed_config": map[string]any{
		"@type":                 "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
		"dynamic_module_config": map[string]any{"name": "tollgate_envoy", "do_not_close": true},
		"filter_name":           envoymod.FilterName,
		"filter_config":         stringValue(envoymod.FilterConfig{Charge: true, Quota: q}),
	}}
	fs := hcm["http_filters"].([]any)
	hcm["http_filters"] = append([]any{fs[0], stand, charger}, fs[1:]...)
	withKeyRoute(cfg, "/charged", envoymod.RouteConfig{Extensions: map[string]string{"route": "charged", "methods": "apiKey"},
		Limits: ietfLimits()})
	r := hcm["route_config"].(map[string]any)["virtual_hosts"].([]any)[0].(map[string]any)["routes"].([]any)[0].(map[string]any)
	r["typed_per_filter_config"].(map[string]any)[chargerName] = map[string]any{
		"@type":                 "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute",
		"dynamic_module_config": map[string]any{"name": "tollgate_envoy", "do_not_close": true},
		"filter_name":           envoymod.FilterName,
		"filter_config": stringValue(envoymod.RouteConfig{Extensions: map[string]string{"route": "charged"},
			Limits: ietfLimits()}),
	}
}

// TestModuleCharge: the charger, after a stand-in for ext_authz's
// metadata, charges the opaque keys the module passed to the route's
// bucket of the identity in ext_authz's metadata (gold: 3 admitted with
// X-RateLimit-*, then gold's 429), refuses one without a consumer there
// (the unidentified bucket's 429: never unlimited), admits an unlimited
// tier, and passes untouched what the module decided (a signed key: the
// module's own 3 then its 429, the charger counting none of them).
func TestModuleCharge(t *testing.T) {
	envoyBin, fx, ks, fc := keyedFixture(t)
	fc.Quota = &envoymod.Quota{Address: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Domain: ir.RateLimitQuotaDomain}
	cfg := envoyConfig(fc, fx.listen, fx.admin, fx.upstream)
	withCharger(cfg, fc.Quota)
	p := startEnvoy(t, envoyBin, fx.soDir, cfg, fx.listen, fx.admin)
	opaque := "tg_27rPErmv_" + strings.Repeat("b", 32) + "_000000"
	s := chargeSession{session: session{t: t, p: p, iss: fx.iss}, admin: fx.admin, opaque: opaque, ks: ks}
	t.Run("opaque key charged to its identity's bucket", s.charged)
	t.Run("IETF headers", s.chargedIETF)
	t.Run("no identity: refused", s.unidentified)
	t.Run("unlimited tier", s.unlimited)
	t.Run("decided by the module: untouched", s.decided)
	if t.Failed() {
		t.Logf("envoy log:\n%s", p.log())
	}
}

type chargeSession struct {
	session
	admin  int
	opaque string
	ks     keySet
}

func (s chargeSession) send(t *testing.T, h map[string]string) answer {
	t.Helper()
	return get(t, s.p.listen, "/charged", h)
}

func (s chargeSession) charged(t *testing.T) {
	before := moduleStats(t, s.admin)
	h := map[string]string{"x-api-key": s.opaque, "x-test-consumer": "bob", "x-test-tier": "gold"}
	for i := range 3 {
		a := s.send(t, h)
		if a.status != http.StatusOK || a.header.Get("x-ratelimit-limit") != "3" ||
			a.header.Get("x-ratelimit-remaining") != fmt.Sprint(2-i) {
			t.Errorf("request %d: %d %v", i+1, a.status, a.header)
		}
	}
	a := s.send(t, h)
	if a.status != 429 || strings.TrimSpace(a.body) != limitsDenyBody || a.header.Get("retry-after") != "20" {
		t.Errorf("request 4: %d %q %v, want gold's 429", a.status, a.body, a.header)
	}
	after := moduleStats(t, s.admin)
	if after["rq_charged_allowed"]-before["rq_charged_allowed"] != 3 ||
		after["rq_charged_rate_limited"]-before["rq_charged_rate_limited"] != 1 {
		t.Errorf("charger counters %v → %v, want +3 allowed, +1 rate limited", before, after)
	}
}

// chargedIETF: the charger writes a bucket's IETF headers as the first
// instance does (bronze: 5 a minute reported), on admitted responses only.
func (s chargeSession) chargedIETF(t *testing.T) {
	h := map[string]string{"x-api-key": s.opaque, "x-test-consumer": "dave", "x-test-tier": "bronze"}
	policy := ietfLimits().Tiers["bronze"].IETF.Policy
	for i := range 5 {
		a := s.send(t, h)
		want := fmt.Sprintf(`"bronze";r=%d;t=%s`, 4-i, map[bool]string{true: "12", false: "0"}[i == 4])
		if a.status != http.StatusOK || !slices.Equal(a.header.Values("ratelimit"), []string{want}) ||
			!slices.Equal(a.header.Values("ratelimit-policy"), []string{policy}) {
			t.Errorf("request %d: %d %v, want RateLimit %q", i+1, a.status, a.header, want)
		}
	}
	if a := s.send(t, h); a.status != 429 || a.body != "bronze" || a.header.Get("ratelimit") != "" {
		t.Errorf("request 6: %d %q %v, want bronze's static 429", a.status, a.body, a.header)
	}
}

// unidentified: an admitted request without a consumer in ext_authz's
// metadata (or an empty one) takes the unidentified bucket: refused.
func (s chargeSession) unidentified(t *testing.T) {
	for _, h := range []map[string]string{{"x-api-key": s.opaque}, {"x-api-key": s.opaque, "x-test-tier": "free"},
		{"x-api-key": s.opaque, "x-test-consumer": "", "x-test-tier": "free"}} {
		if a := s.send(t, h); a.status != 429 || strings.TrimSpace(a.body) != "unidentified" {
			t.Errorf("%v: %d %q, want the unidentified 429", h, a.status, a.body)
		}
	}
}

func (s chargeSession) unlimited(t *testing.T) {
	for i := range 5 {
		a := s.send(t, map[string]string{"x-api-key": s.opaque, "x-test-consumer": "carol", "x-test-tier": "free"})
		if a.status != http.StatusOK || a.header.Get("x-ratelimit-limit") != "" {
			t.Errorf("request %d: %d %v, want 200 without X-RateLimit-*", i+1, a.status, a.header)
		}
	}
}

// decided: a signed key the module admitted carries its marker: the
// charger passes it untouched though the stand-in writes a consumer (no
// second charge: the module's burst of 3 is intact).
func (s chargeSession) decided(t *testing.T) {
	before := moduleStats(t, s.admin)
	var got []int
	for range 4 {
		got = append(got, s.send(t, map[string]string{"x-api-key": s.ks.limited, "x-test-consumer": "bob"}).status)
	}
	if fmt.Sprint(got) != fmt.Sprint([]int{200, 200, 200, 429}) {
		t.Errorf("signed gold key: %v, want 3×200 then 429", got)
	}
	after := moduleStats(t, s.admin)
	for _, n := range []string{"rq_charged_allowed", "rq_charged_rate_limited"} {
		if after[n] != before[n] {
			t.Errorf("%s: %d → %d: the charger charged the module's decisions", n, before[n], after[n])
		}
	}
}
