package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// authzUnavailableBody is the documented answer when the authorization call
// fails (service unreachable, or no answer within the timeout): 503 and
// this JSON body, never Envoy's empty 403.
const authzUnavailableBody = `{"error":"unavailable","reason":"authz_unavailable"}`

// TestAuthzTimeoutAnswersDocumented503: with the only ext_authz service
// stalled (its control plane SIGSTOPped: connections stay open, nothing
// answers), a protected request gets, once the 200 ms ext_authz timeout
// expires, 503 with the documented JSON body and cache-control no-store;
// a public route still passes. Before, Envoy answered 403 with an empty
// body.
func TestAuthzTimeoutAnswersDocumented503(t *testing.T) {
	a := startAuthStack(t)
	var created struct{ Key string }
	// An opaque key: a signed one is decided in Envoy on /users (it
	// accepts JWTs and API keys), without ext_authz.
	if err := json.Unmarshal([]byte(a.cli(0, "keys", "create", "--consumer", "stall", "--roles", "user", "-o", "json", "--format", "opaque")), &created); err != nil {
		t.Fatal(err)
	}
	key := map[string]string{"x-api-key": created.Key}
	if code, _, body := a.call(t, "/users/1", key); code != 200 {
		t.Fatalf("before the stall: %d %s", code, body)
	}
	// Pause, not Signal(SIGSTOP): kill(2) returns before the process has
	// stopped, and on a loaded machine its other threads answered the next
	// Check with 200 (harness.Process.Pause).
	t.Cleanup(func() { _ = a.cp.Resume() })
	if err := a.cp.Pause(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		start := time.Now()
		resp, err := a.client.Do(testCtx(t, 10*time.Second), "GET", fmt.Sprintf("http://127.0.0.1:%d/users/1", a.port), "", key, nil)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if resp.Status != 503 || string(resp.Body) != authzUnavailableBody ||
			resp.Header.Get("content-type") != "application/json" || resp.Header.Get("cache-control") != "no-store" {
			t.Fatalf("with ext_authz stalled: %d %q (content-type %q, cache-control %q) after %s, want 503 %s",
				resp.Status, resp.Body, resp.Header.Get("content-type"), resp.Header.Get("cache-control"), took, authzUnavailableBody)
		}
		t.Logf("stalled ext_authz → 503 %s after %s", resp.Body, took.Round(time.Millisecond))
	}
	if code, _, _ := a.call(t, "/health", nil); code != 200 {
		t.Errorf("public route with ext_authz stalled: %d", code)
	}
}

// TestSlowAuthzReplicasCostNoRequest: two ext_authz replicas (`serve
// --only authz`) on one Redis, 200 req/s of API-key requests under
// fail-closed rate limits. First both replicas are made slow, as on a
// CPU-saturated machine: SIGSTOPped for 40 ms of every 50 ms, so a Check
// waits up to ~40 ms; then one of them is SIGSTOPped outright for 2 s (a
// hung replica: its connections stay open and nothing answers). No request
// may fail. Before, Envoy's per-try timeout of these calls was the retry
// back-off's 25 ms max interval (Envoy derives the per-try timeout from
// it), so a Check slower than 25 ms on every replica tried failed within
// ~60 ms, long before the 200 ms ext_authz timeout: the empty-body 403s of
// the saturated replica soak. Now a try gets half the call's timeout.
func TestSlowAuthzReplicasCostNoRequest(t *testing.T) {
	rd := harness.StartRedis(t)
	up := harness.StartUpstream(t, "one")
	port := harness.FreePort(t)
	common := []string{"--store", "redis://" + rd + "/0", "--store-prefix", haPrefix, "--redis", "redis://" + rd + "/0", "--key-pepper", haPepper}
	ports := freePorts(t, 6)
	a := allocStack(t, ports[0:4])
	authzAddrs := []string{fmt.Sprintf("127.0.0.1:%d", ports[4]), fmt.Sprintf("127.0.0.1:%d", ports[5])}
	a.opts.args = append(append([]string{}, common...), "--authz-advertise-addr", strings.Join(authzAddrs, ","))
	a.startServe(fmt.Sprintf(haLoadPolicy, port, 0, 0, up.Addr()))
	replicas := []*harness.Process{startAuthzOnly(t, a.bin, authzAddrs[0], common), startAuthzOnly(t, a.bin, authzAddrs[1], common)}
	var created struct{ Key string }
	if err := json.Unmarshal([]byte(a.cli(0, "keys", "create", "--consumer", "load", "--roles", "user", "-o", "json")), &created); err != nil {
		t.Fatal(err)
	}
	e := a.envoy("public", "stall-0", "delta")

	load := startLoad(t, port, created.Key)
	load.phase("steady, 2 authz replicas", 2*time.Second)
	load.set("both replicas stopped 40 ms of every 50 ms")
	stopThrottle := throttle(t, replicas, 40*time.Millisecond, 50*time.Millisecond)
	load.pace(3 * time.Second)
	stopThrottle()
	load.phase("both running", time.Second)
	t.Cleanup(func() { _ = replicas[1].Resume() })
	if err := replicas[1].Pause(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	load.phase("one replica SIGSTOPped", 2*time.Second)
	if err := replicas[1].Resume(); err != nil {
		t.Fatal(err)
	}
	load.phase("resumed", 2*time.Second)
	logSideServiceStats(t, e)
	load.report(t)
}

// throttle SIGSTOPs ps for stopped of every period until the returned
// function is called (which resumes them).
func throttle(t *testing.T, ps []*harness.Process, stopped, period time.Duration) func() {
	done, finished := make(chan struct{}), make(chan struct{})
	signal := func(sig syscall.Signal) {
		for _, p := range ps {
			if err := p.Signal(sig); err != nil {
				t.Errorf("signal %s: %v", p.Name(), err)
			}
		}
	}
	go func() {
		defer close(finished)
		defer signal(syscall.SIGCONT)
		for {
			signal(syscall.SIGSTOP)
			time.Sleep(stopped)
			signal(syscall.SIGCONT)
			select {
			case <-done:
				return
			case <-time.After(period - stopped):
			}
		}
	}()
	return func() { close(done); <-finished }
}
