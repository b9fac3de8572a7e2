package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

const twoRoutePolicy = `version: 1
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: old, match: {pathPrefix: /old}, backend: one, auth: none}
%s
backends:
  - {name: one, endpoints: [%q]}
  - {name: two, endpoints: [%q]}
`

// pushPolicy renders the two-backend policy with extra routes.
func pushPolicy(port int, one, two, extraRoutes string) string {
	return fmt.Sprintf(twoRoutePolicy, port, extraRoutes, one, two)
}

// get returns the status and upstream of GET path on port.
func get(ctx context.Context, client *harness.HTTPClient, port int, path string) (int, string) {
	resp, err := client.Get(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), "", nil)
	if err != nil {
		return 0, err.Error()
	}
	return resp.Status, resp.Header.Get("X-Upstream")
}

func TestPushIsServedWithoutRestartingEnvoy(t *testing.T) {
	us := upstreams(t, "one", "two")
	port := harness.FreePort(t)
	s := startStack(t, pushPolicy(port, us["one"].Addr(), us["two"].Addr(), ""))
	e := s.envoy("public", "push-0", "delta")
	client := harness.NewHTTPClient(true)
	defer client.Close()
	ctx := testCtx(t, 30*time.Second)
	if code, _ := get(ctx, client, port, "/new"); code != 404 {
		t.Fatalf("GET /new before push = %d, want 404", code)
	}
	// Traffic on the old route runs throughout: the push must not drop it.
	stop, failures := loadLoop(t, port, "/old")
	next := pushPolicy(port, us["one"].Addr(), us["two"].Addr(), "  - {name: new, match: {pathPrefix: /new}, backend: two, auth: none}")
	start := time.Now()
	out := s.cli(0, "push", writeFile(t, "next.yaml", next))
	var first time.Duration
	err := harness.WaitFor(ctx, func() (bool, error) {
		code, up := get(ctx, client, port, "/new")
		first = time.Since(start)
		return code == 200 && up == "two", nil
	})
	if err != nil {
		t.Fatalf("new route never served: %v\npush output:\n%s", err, out)
	}
	t.Logf("push to first request served by the new route: %s (push output: %q)", first.Round(time.Millisecond), strings.TrimSpace(out))
	ok, failed := stop()
	if failed > 0 {
		t.Fatalf("%d of %d requests on the old route failed during the push: %v", failed, ok+failed, failures())
	}
	if n, _, _ := e.Stat(ctx, "server.hot_restart_epoch"); n != 0 {
		t.Errorf("envoy restarted (hot_restart_epoch %d)", n)
	}
	if !strings.Contains(out, "1/1 proxies acknowledged") {
		t.Errorf("push output does not report the proxy's ACK:\n%s", out)
	}
	// Pushing the same policy again changes nothing.
	if out := s.cli(0, "push", writeFile(t, "same.yaml", next)); !strings.Contains(out, "unchanged") {
		t.Errorf("second identical push: %q, want unchanged", out)
	}
}

// loadLoop sends requests to path until stop is called, then returns the
// counts of successes and failures and a sample of the failures.
func loadLoop(t *testing.T, port int, path string) (stop func() (ok, failed int64), sample func() []string) {
	var okN, failN atomic.Int64
	var mu sync.Mutex
	var failures []string
	done := make(chan struct{})
	finished := make(chan struct{})
	client := harness.NewHTTPClient(true)
	go func() {
		defer close(finished)
		for i := 0; i < 100000; i++ {
			select {
			case <-done:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			code, up := get(ctx, client, port, path)
			cancel()
			if code == 200 {
				okN.Add(1)
				continue
			}
			failN.Add(1)
			mu.Lock()
			if len(failures) < 5 {
				failures = append(failures, fmt.Sprintf("%d %s", code, up))
			}
			mu.Unlock()
		}
	}()
	var once sync.Once
	stop = func() (int64, int64) {
		once.Do(func() { close(done); <-finished; client.Close() })
		return okN.Load(), failN.Load()
	}
	t.Cleanup(func() { stop() })
	return stop, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), failures...) }
}

const invalidPolicy = `version: 1
gateways:
  - name: public
    listeners: [{name: http, port: 70000}]
routes:
  - {name: bad, match: {pathRegex: "(unclosed"}, backend: missing, auth: none}
backends:
  - {name: one, endpoints: ["127.0.0.1:1"]}
`

func TestInvalidPushIsRejectedAndChangesNothing(t *testing.T) {
	us := upstreams(t, "one", "two")
	port := harness.FreePort(t)
	s := startStack(t, pushPolicy(port, us["one"].Addr(), us["two"].Addr(), ""))
	e := s.envoy("public", "invalid-0", "delta")
	ctx := testCtx(t, 30*time.Second)
	before := s.waitSynced("invalid-0")
	dumpBefore, err := e.ConfigDump(ctx, "dynamic_active_clusters")
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := s.run("push", writeFile(t, "bad.yaml", invalidPolicy))
	if code != 1 {
		t.Fatalf("invalid push exit code %d, want 1\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"gateways[0].listeners[0].port", "routes[0].match.pathRegex", "routes[0].backend", "bad.yaml:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("rejection does not mention %q:\n%s", want, stderr)
		}
	}
	after := s.status()
	if after.Version != before.Version {
		t.Errorf("served version changed from %s to %s", before.Version, after.Version)
	}
	dumpAfter, _ := e.ConfigDump(ctx, "dynamic_active_clusters")
	if string(dumpAfter) != string(dumpBefore) {
		t.Error("envoy's clusters changed after a rejected push")
	}
	if code, up := get(ctx, harness.NewHTTPClient(false), port, "/old/x"); code != 200 || up != "one" {
		t.Errorf("old route after rejected push: %d from %q", code, up)
	}
	if h := s.cli(0, "history"); strings.Count(h, "push") != 0 || !strings.Contains(h, "seed") {
		t.Errorf("a validation failure must not enter the history:\n%s", h)
	}
}
