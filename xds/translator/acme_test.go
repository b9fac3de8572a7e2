package translator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/internal/certs"
	"github.com/tollgate/tollgate/policy/ir"
)

// certs returns the case's certificate source: the policy's files, and for
// every ACME listener of the case's gateway the test-only api.example.com
// pair as if the CA had issued it (deterministic golden output).
func (tc testCase) certs() CertSource {
	st := certs.NewStore(nil)
	gw, ok := tc.Config.Gateway(tc.Gateway)
	if !ok {
		return st
	}
	dir := filepath.Join("testdata", "in", "tls-test-only")
	cert, err1 := os.ReadFile(filepath.Join(dir, "api.example.com.crt"))
	key, err2 := os.ReadFile(filepath.Join(dir, "api.example.com.key"))
	for _, a := range gw.ACMEListeners() {
		if err1 != nil || err2 != nil || st.Set(a.Secret, cert, key) != nil {
			panic("test-only ACME certificate unusable")
		}
	}
	return st
}

func TestACMEChallengeRoutes(t *testing.T) {
	r := translateCase(t, "acme")
	plain, tlsRC := routeConfig(t, r, "http"), routeConfig(t, r, "https")
	if len(plain.GetVirtualHosts()) != 2 {
		t.Fatalf("plaintext listener has %d virtual hosts, want the policy's and the catch-all", len(plain.GetVirtualHosts()))
	}
	for _, vh := range plain.GetVirtualHosts() {
		first := vh.GetRoutes()[0]
		if first.GetName() != "acme-challenge" || first.GetMatch().GetPrefix() != "/.well-known/acme-challenge/" ||
			first.GetRoute().GetCluster() != ir.ACMEChallengeClusterName {
			t.Errorf("virtual host %s: first route %s, want the challenge route", vh.GetName(), first.GetName())
		}
		if _, ok := first.GetTypedPerFilterConfig()[jwtAuthnNameOf(r)]; !ok {
			t.Errorf("virtual host %s: jwt_authn is not disabled on the challenge route", vh.GetName())
		}
	}
	if vh := plain.GetVirtualHosts()[1]; vh.GetDomains()[0] != "*" || len(vh.GetRoutes()) != 1 {
		t.Errorf("catch-all virtual host %v", vh)
	}
	for _, vh := range tlsRC.GetVirtualHosts() {
		if vh.GetRoutes()[0].GetName() == "acme-challenge" {
			t.Error("the TLS listener routes challenges")
		}
	}
	if !hasCluster(r, ir.ACMEChallengeClusterName) {
		t.Error("no challenge responder cluster")
	}
}

func TestACMEChallengeBeforeRedirect(t *testing.T) {
	tc := loadCase(t, "acme")
	tc.Config.Gateways[0].RedirectHTTPS = true
	r, err := Translate(&tc.Config, tc.Gateway, tc.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(r); err != nil {
		t.Fatal(err)
	}
	vhs := routeConfig(t, r, "http").GetVirtualHosts()
	if len(vhs) != 1 || vhs[0].GetName() != "redirect-https" {
		t.Fatalf("virtual hosts %v, want the redirect's only", vhs)
	}
	routes := vhs[0].GetRoutes()
	if len(routes) != 2 || routes[0].GetName() != "acme-challenge" || routes[1].GetRedirect() == nil {
		t.Fatalf("routes %v, want the challenge, then the redirect", routes)
	}
	if len(routes[0].GetTypedPerFilterConfig()) != 0 {
		t.Error("per-filter config on a router-only listener's route")
	}
}

func TestACMETranslateErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*testCase)
		want string
	}{
		{"no responder address", func(tc *testCase) { tc.ACMEAddress = "" }, "--acme-addr"},
		{"bad responder address", func(tc *testCase) { tc.ACMEAddress = "nope" }, "acme challenge responder"},
		{"reserved backend name", func(tc *testCase) {
			tc.Config.Backends[0].Name = ir.ACMEChallengeClusterName
			for i := range tc.Config.Gateways[0].VirtualHosts[0].Routes {
				tc.Config.Gateways[0].VirtualHosts[0].Routes[i].Backend = ir.ACMEChallengeClusterName
			}
		}, "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := loadCase(t, "acme")
			tt.edit(&tc)
			_, err := Translate(&tc.Config, tc.Gateway, tc.options())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// routeConfig returns the route configuration of the listener named
// listener ("<listener>_<filter hash>", bindRouteConfig).
func routeConfig(t *testing.T, r *Resources, listener string) *routev3.RouteConfiguration {
	t.Helper()
	for _, rc := range r.Routes {
		if l, _, _ := strings.Cut(rc.GetName(), routeConfigSeparator); l == listener {
			return rc
		}
	}
	t.Fatalf("no route configuration of listener %s", listener)
	return nil
}

func hasCluster(r *Resources, name string) bool {
	for _, c := range r.Clusters {
		if c.GetName() == name {
			return true
		}
	}
	return false
}

func TestACMEChallengeRouteTurnsOffOptionalFilters(t *testing.T) {
	tc := loadCase(t, "acme")
	tc.ExtProcAddress = "127.0.0.1:18004"
	routes := tc.Config.Gateways[0].VirtualHosts[0].Routes
	routes[0].Transform = &ir.RouteTransform{Request: "json-to-xml", MaxBodyBytes: 1 << 20}
	routes[1].EditHTTP().Compression = &ir.Compression{Algorithms: []string{ir.Gzip}, MinLength: 100}
	routes[1].HTTP.Lua = "function envoy_on_request(h) end"
	r, err := Translate(&tc.Config, tc.Gateway, tc.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(r); err != nil {
		t.Fatal(err)
	}
	for _, vh := range routeConfig(t, r, "http").GetVirtualHosts() {
		cfg := vh.GetRoutes()[0].GetTypedPerFilterConfig()
		for _, name := range []string{envoy.ExtProcName, jwtAuthnNameOf(r), envoy.RBACName, jwtIdentityFilter, envoy.LuaName} {
			if _, ok := cfg[name]; !ok {
				t.Errorf("virtual host %s: %s is not disabled on the challenge route", vh.GetName(), name)
			}
		}
		compressors := 0
		for name := range cfg {
			if strings.HasPrefix(name, envoy.CompressorName) {
				compressors++
			}
		}
		if compressors != 1 {
			t.Errorf("virtual host %s: %d compressors disabled on the challenge route, want the one", vh.GetName(), compressors)
		}
	}
}
