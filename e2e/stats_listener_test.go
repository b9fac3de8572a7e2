package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

const statsPolicy = `version: 1
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: users, backend: users, auth: none}
backends:
  - {name: users, endpoints: ["127.0.0.1:1"]}
`

// TestStatsListenerExposesOnlyReadyAndPrometheus starts an Envoy whose
// bootstrap has --stats-port and checks that the port forwards GET /ready
// and GET /stats/prometheus to the loopback admin interface and nothing
// else (the admin interface has no authentication).
func TestStatsListenerExposesOnlyReadyAndPrometheus(t *testing.T) {
	port := harness.FreePort(t)
	s := startStack(t, fmt.Sprintf(statsPolicy, port))
	stats := harness.FreePort(t)
	out := s.cli(0, "bootstrap", "--gateway", "public", "--node-id", "stats-0", "--xds", s.xdsAddr,
		"--admin-port", fmt.Sprint(harness.FreePort(t)), "--stats-port", fmt.Sprint(stats))
	e := harness.StartEnvoy(t, []byte(out), harness.EnvoyOptions{})
	ctx := testCtx(t, 30*time.Second)
	if err := e.WaitReady(ctx); err != nil {
		t.Fatalf("envoy not ready: %v", err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", stats)
	client := harness.NewHTTPClient(false)
	defer client.Close()
	tests := []struct {
		method, path string
		wantStatus   int
		wantBody     string
	}{
		{"GET", "/ready", 200, "LIVE"},
		{"GET", "/stats/prometheus", 200, "envoy_server_live"},
		{"GET", "/stats/prometheus?usedonly", 200, "envoy_"},
		{"POST", "/ready", 404, ""},
		{"POST", "/quitquitquit", 404, ""},
		{"POST", "/drain_listeners", 404, ""},
		{"GET", "/config_dump", 404, ""},
		{"GET", "/stats", 404, ""},
	}
	for _, tt := range tests {
		resp, err := client.Do(ctx, tt.method, base+tt.path, "", nil, nil)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		if resp.Status != tt.wantStatus || !strings.Contains(string(resp.Body), tt.wantBody) {
			t.Errorf("%s %s: %d %.80q, want %d containing %q", tt.method, tt.path, resp.Status, resp.Body, tt.wantStatus, tt.wantBody)
		}
	}
	if code, _, err := e.Admin(ctx, "/ready"); err != nil || code != 200 {
		t.Errorf("admin /ready after the checks: %d %v (the stats listener must not have touched the server)", code, err)
	}
}
