package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/policy"
	"github.com/tollgate/tollgate/xds/translator"
)

// failClosedPolicy has one native key route.
const failClosedPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: keys, match: {pathPrefix: /keys}, backend: echo, auth: {methods: [apiKey]}}
backends:
  - {name: echo, endpoints: [%q]}
`

// TestAPIKeyNativeFailsClosedWithoutKeyIdentity: when the key identity
// filter did not accept a verified signed key — its script does nothing,
// fails, has no script for the route, or its ECDS resource never arrived —
// the request is refused (503 key_store_unavailable), never admitted with
// ext_authz skipped. Each case runs a real Envoy on the translator's
// configuration for the gateway (its listener, routes, jwt_authn and
// rbac), served statically with the key identity filter's config replaced.
func TestAPIKeyNativeFailsClosedWithoutKeyIdentity(t *testing.T) {
	up := harness.StartUpstream(t, "echo")
	signer, err := apikey.NewSigner([]byte(keyPepper))
	if err != nil {
		t.Fatal(err)
	}
	key := signedKey(t, keyClaims("acme", "failcls1", "pro"))
	unavailable := `503 {"error":"unavailable","reason":"key_store_unavailable"}`
	for _, tt := range []struct {
		name   string
		script string // "" keeps the filter's ECDS discovery (never served here)
		want   string
	}{
		{"the real script with a fresh table (control)", "real", "200"},
		{"a script that does nothing", "function envoy_on_request(h) end", unavailable},
		{"a script that fails", `function envoy_on_request(h) error("boom") end`, unavailable},
		{"no script of the route's name", "other", unavailable},
		{"ECDS resource never delivered (the default config)", "", unavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := harness.FreePort(t)
			e := harness.StartEnvoy(t, staticKeyBootstrap(t, fmt.Sprintf(failClosedPolicy, port, up.Addr()), signer, tt.script), harness.EnvoyOptions{})
			if err := e.WaitReady(testCtx(t, 30*time.Second)); err != nil {
				t.Fatal(err)
			}
			resp, err := harness.NewHTTPClient(false).Get(testCtx(t, 10*time.Second), fmt.Sprintf("http://127.0.0.1:%d/keys/1", port), "",
				map[string]string{"x-api-key": key})
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprint(resp.Status)
			if resp.Status != 200 {
				got += " " + string(resp.Body)
			}
			if got != tt.want || (tt.want != "200" && resp.Header.Get("X-Upstream") != "") {
				t.Fatalf("got %s (upstream %q), want %s", got, resp.Header.Get("X-Upstream"), tt.want)
			}
		})
	}
}

// staticKeyBootstrap translates policy's gateway "public" and returns a
// static bootstrap running it: EDS clusters given their assignments, no
// LDS or CDS, and the key identity filter's ECDS discovery replaced by
// script (see TestAPIKeyNativeFailsClosedWithoutKeyIdentity), with the
// admin on a free port.
func staticKeyBootstrap(t *testing.T, src string, signer *apikey.Signer, script string) []byte {
	t.Helper()
	cfg, ds := policy.Build([]policy.File{{Name: "p.yaml", Content: []byte(src)}})
	if ds.HasErrors() {
		t.Fatalf("policy: %v", ds)
	}
	nowhere := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r, err := translator.Translate(cfg, "public", translator.Options{AuthzAddress: nowhere, RateLimitAddress: nowhere, KeyJWKS: signer.JWKS()})
	if err != nil || r.KeyIdentity == nil {
		t.Fatalf("translate: %v (key identity %v)", err, r.KeyIdentity)
	}
	b, err := translator.StaticBootstrap(r)
	if err != nil {
		t.Fatal(err)
	}
	b.DynamicResources.LdsConfig, b.DynamicResources.CdsConfig = nil, nil
	b.Admin.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: uint32(harness.FreePort(t))}
	b.StaticResources.Clusters = staticClusters(b.StaticResources.Clusters, r.Endpoints)
	if script != "" {
		for _, l := range b.StaticResources.Listeners {
			replaceKeyIdentity(t, l.GetFilterChains(), keyIdentityConfig(t, r, script))
		}
	}
	y, err := envoy.YAML(b)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// staticClusters returns clusters without the "cla/" copies of the
// assignments and with every EDS cluster STATIC on its assignment.
func staticClusters(clusters []*clusterv3.Cluster, clas []*endpointv3.ClusterLoadAssignment) []*clusterv3.Cluster {
	byName := map[string]*endpointv3.ClusterLoadAssignment{}
	for _, cla := range clas {
		byName[cla.GetClusterName()] = cla
	}
	var out []*clusterv3.Cluster
	for _, c := range clusters {
		if strings.HasPrefix(c.GetName(), "cla/") {
			continue
		}
		if eds := c.GetEdsClusterConfig(); eds != nil {
			c.LoadAssignment = proto.CloneOf(byName[eds.GetServiceName()])
			c.LoadAssignment.ClusterName = c.GetName()
			c.EdsClusterConfig = nil
			c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
		}
		out = append(out, c)
	}
	return out
}

// keyIdentityConfig is the key identity filter's config for script: the
// translator's own with a loaded, fresh, empty table ("real"), one source
// named "other" ("other"), or script as the route's named source.
func keyIdentityConfig(t *testing.T, r *translator.Resources, script string) *anypb.Any {
	t.Helper()
	if script == "real" {
		ext, err := r.KeyIdentity.Extension(translator.KeyExceptions{Loaded: true, Fresh: true, Epoch: keyEpoch})
		if err != nil {
			t.Fatal(err)
		}
		return ext.GetTypedConfig()
	}
	sources := map[string]string{"key_identity": script}
	if script == "other" {
		sources = map[string]string{"other": "function envoy_on_request(h) end"}
	}
	a, err := anypb.New(envoy.LuaNamedSources(sources))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// replaceKeyIdentity gives the key identity filter of every HTTP
// connection manager in chains the inline config cfg.
func replaceKeyIdentity(t *testing.T, chains []*listenerv3.FilterChain, cfg *anypb.Any) {
	t.Helper()
	found := false
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			var hcm hcmv3.HttpConnectionManager
			if f.GetTypedConfig().UnmarshalTo(&hcm) != nil {
				continue
			}
			for _, hf := range hcm.GetHttpFilters() {
				if hf.GetName() == translator.KeyIdentityFilter {
					hf.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: cfg}
					found = true
				}
			}
			a, err := anypb.New(&hcm)
			if err != nil {
				t.Fatal(err)
			}
			f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
		}
	}
	if !found {
		t.Fatal("no key identity filter in the listener")
	}
}
