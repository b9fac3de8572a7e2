package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// haLoadPolicy is an API-key route with tier rate limits plus one
// generated route that every push changes. Both checks run with the
// production defaults: ext_authz fails closed with its 200 ms timeout and the
// rate limits fail closed too, so every failed Check or ShouldRateLimit is a
// failed request and is counted.
const haLoadPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  tiers:
    free: [{requests: 1000000, per: minute}]
  defaultTier: free
  failureMode: closed
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: one, auth: {methods: [apiKey], roles: [user]}}
  - {name: gen-%d, match: {pathPrefix: /gen-%d}, backend: one, auth: none}
backends:
  - {name: one, endpoints: [%q]}
`

const haPepper = "e2e-pepper-0123456789"

// allocStack picks a stack's ports (from ports, distinct free ports held
// open together while chosen) and store without starting it.
func allocStack(t *testing.T, ports []int) *stack {
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	return &stack{t: t, bin: harness.BuildTollgate(t), dataDir: filepath.Join(t.TempDir(), "store"),
		xdsAddr: addr(0), authzAddr: addr(1), rlAddr: addr(2), adminAddr: addr(3)}
}

// freePorts returns n distinct free loopback ports from the harness
// (below the kernel's ephemeral range: a port the kernel picked for a
// listener on :0 could be taken by an outgoing connection before the
// process listens on it, as a fresh-clone CI run saw: "bind: address
// already in use" on 43945).
func freePorts(t *testing.T, n int) []int {
	ports := make([]int, n)
	for i := range ports {
		ports[i] = harness.FreePort(t)
	}
	return ports
}

// restart stops the control plane with SIGTERM (graceful) and starts it
// again on the same ports and store.
func (s *stack) restart() {
	s.t.Helper()
	if err := s.cp.StopWithin(15 * time.Second); err != nil {
		s.t.Logf("%s exited with %v", s.cp.Name(), err)
	}
	s.startServe("")
}

// TestHAZeroFailedRequests drives a steady load (200 req/s, API key + rate
// limit) through Envoy while, one after the other: 20 policy pushes
// alternate between two control-plane replicas on one Redis store; each
// replica is restarted (each also runs an ext_authz and a rate-limit
// replica, so this restarts one of those behind the other); a standalone
// `serve --only authz` replica on the Redis store is restarted; and the
// Envoy is hot-restarted into a new process. Every request must succeed;
// the totals are printed per phase.
func TestHAZeroFailedRequests(t *testing.T) {
	rd := harness.StartRedis(t)
	up := harness.StartUpstream(t, "one")
	port := harness.FreePort(t)
	policy := func(i int) string { return fmt.Sprintf(haLoadPolicy, port, i, i, up.Addr()) }
	common := []string{"--store", "redis://" + rd + "/0", "--store-prefix", haPrefix, "--redis", "redis://" + rd + "/0", "--key-pepper", haPepper}
	ports := freePorts(t, 9)
	a, b := allocStack(t, ports[0:4]), allocStack(t, ports[4:8])
	onlyAuthz := fmt.Sprintf("127.0.0.1:%d", ports[8])
	advertise := []string{"--authz-advertise-addr", strings.Join([]string{a.authzAddr, b.authzAddr, onlyAuthz}, ","),
		"--ratelimit-advertise-addr", a.rlAddr + "," + b.rlAddr}
	for _, s := range []*stack{a, b} {
		s.opts.args = append(append([]string{}, common...), advertise...)
	}
	a.startServe(policy(0))
	b.startServe("")
	authzOnly := startAuthzOnly(t, a.bin, onlyAuthz, common)
	var created struct{ Key string }
	// Opaque: this test is about ext_authz replicas (a signed key is decided
	// in Envoy and takes its limits from the rate-limit service).
	if err := json.Unmarshal([]byte(a.cli(0, "keys", "create", "--consumer", "load", "--roles", "user", "-o", "json",
		"--format", "opaque")), &created); err != nil {
		t.Fatal(err)
	}
	baseID := harness.FreePort(t)
	e1 := startHotEnvoy(t, b, "ha-e1", baseID, 0)

	load := startLoad(t, port, created.Key)
	ctx := testCtx(t, 90*time.Second)
	load.phase("steady", 2*time.Second)
	load.set("20 pushes, alternating replicas")
	for i := 1; i <= 20; i++ {
		s := []*stack{a, b}[i%2]
		s.cli(0, "push", writeFile(t, fmt.Sprintf("p%d.yaml", i), policy(i)))
		load.pace(400 * time.Millisecond)
	}
	if err := harness.WaitFor(ctx, func() (bool, error) {
		code, _ := get(ctx, harness.NewHTTPClient(false), port, "/gen-20")
		return code == 200, nil
	}); err != nil {
		t.Fatalf("the last push was never served: %v", err)
	}
	load.set("restart replica A")
	a.restart()
	load.phase("after restarting A", 2*time.Second)
	load.set("restart replica B (Envoy's xDS server)")
	b.restart()
	load.phase("after restarting B", 2*time.Second)
	load.set("restart the authz-only replica")
	authzOnly = restartAuthzOnly(t, authzOnly, a.bin, onlyAuthz, common)
	load.phase("after restarting authz-only", 2*time.Second)
	load.set("Envoy hot restart (until the old one exits)")
	e2 := startHotEnvoy(t, a, "ha-e2", baseID, 1)
	if err := e1.Wait(ctx); err != nil {
		t.Logf("first Envoy exited: %v", err)
	}
	load.phase("after the hot restart", 2*time.Second)
	if n, _, _ := e2.Stat(ctx, "server.hot_restart_epoch"); n != 1 {
		t.Errorf("the new Envoy's hot_restart_epoch is %d, want 1", n)
	}
	logSideServiceStats(t, e2)
	load.report(t)
	if t.Failed() {
		logAccessNon200(t, map[string]*harness.Envoy{"e1": e1, "e2": e2})
	}
}

// logAccessNon200 logs the access-log lines of answers other than 200 of
// each Envoy (at most 20 in all): their response flags and details say
// which filter answered and why.
func logAccessNon200(t *testing.T, envoys map[string]*harness.Envoy) {
	t.Helper()
	var lines []string
	for name, e := range envoys {
		for _, l := range strings.Split(e.Logs(), "\n") {
			if strings.Contains(l, `"status":`) && !strings.Contains(l, `"status":200`) && len(lines) < 20 {
				lines = append(lines, name+": "+l)
			}
		}
	}
	t.Logf("answers other than 200 in the Envoys' access logs:\n%s", strings.Join(lines, "\n"))
}

// logSideServiceStats logs the new Envoy's ext_authz and rate-limit
// outcomes and its side-service clusters' failures and retries.
func logSideServiceStats(t *testing.T, e *harness.Envoy) {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	st, _ := e.Stats(ctx, `\.(ext_authz|ratelimit)\.(ok|error|failure_mode_allowed|denied|over_limit)$`)
	t.Logf("Envoy's ext_authz and ratelimit outcomes: %v", st)
	cl, _ := e.Stats(ctx, `cluster\.tollgate_.*(fail|timeout|reset|retry|error|eject|refused|destroy_with_active_rq)`)
	for name, n := range cl {
		if n == 0 {
			delete(cl, name)
		}
	}
	t.Logf("side-service cluster stats (non-zero): %v", cl)
}

// startAuthzOnly runs `serve --only authz` on the Redis store and waits
// until its port answers.
func startAuthzOnly(t *testing.T, bin, addr string, common []string) *harness.Process {
	t.Helper()
	args := append([]string{"serve", "--only", "authz", "--authz-addr", addr,
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))}, common...)
	p := harness.StartProcessSpec(t, harness.ProcessSpec{Name: "tollgate-authz-only", Bin: bin, Args: args})
	if err := harness.WaitPort(testCtx(t, 20*time.Second), addr); err != nil {
		t.Fatalf("authz-only replica: %v\n%s", err, p.LogTail(20))
	}
	return p
}

func restartAuthzOnly(t *testing.T, p *harness.Process, bin, addr string, common []string) *harness.Process {
	t.Helper()
	if err := p.StopWithin(15 * time.Second); err != nil {
		t.Logf("authz-only replica exited with %v", err)
	}
	return startAuthzOnly(t, bin, addr, common)
}

// startHotEnvoy starts epoch epoch of a hot-restartable Envoy connected to
// s and waits until it is ready.
func startHotEnvoy(t *testing.T, s *stack, nodeID string, baseID, epoch int) *harness.Envoy {
	t.Helper()
	out := s.cli(0, "bootstrap", "--gateway", "public", "--node-id", nodeID, "--xds", s.xdsAddr,
		"--admin-port", fmt.Sprint(harness.FreePort(t)))
	e := harness.StartEnvoy(t, []byte(out), harness.EnvoyOptions{HotRestart: &harness.HotRestart{BaseID: baseID, Epoch: epoch}})
	if err := e.WaitReady(testCtx(t, 30*time.Second)); err != nil {
		t.Fatalf("envoy %s: %v", nodeID, err)
	}
	return e
}

// loadRun sends 200 requests per second and counts outcomes per phase.
type loadRun struct {
	t       *testing.T
	cur     atomic.Pointer[string]
	mu      sync.Mutex
	order   []string
	ok      map[string]int
	failed  map[string]int
	samples []string
	stop    chan struct{}
	done    sync.WaitGroup
	start   time.Time
}

const loadInterval = 5 * time.Millisecond // 200 req/s

func startLoad(t *testing.T, port int, key string) *loadRun {
	l := &loadRun{t: t, ok: map[string]int{}, failed: map[string]int{}, stop: make(chan struct{}), start: time.Now()}
	l.set("warm-up")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := fmt.Sprintf("http://127.0.0.1:%d/api/load", port)
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		tick := time.NewTicker(loadInterval)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			phase := *l.cur.Load()
			l.done.Add(1)
			go func() {
				defer l.done.Done()
				l.record(phase, l.once(client, url, key))
			}()
		}
	}()
	t.Cleanup(l.finish)
	return l
}

// once sends one request and returns "" or what went wrong.
func (l *loadRun) once(client *http.Client, url, key string) string {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("x-api-key", key)
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode != 200 {
		return fmt.Sprintf("%d %s %q", resp.StatusCode, resp.Header.Get("x-envoy-response-flags"), body)
	}
	return ""
}

func (l *loadRun) record(phase, failure string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if failure == "" {
		l.ok[phase]++
		return
	}
	l.failed[phase]++
	if len(l.samples) < 10 {
		l.samples = append(l.samples, fmt.Sprintf("[%s] %s", phase, failure))
	}
}

// set starts phase name.
func (l *loadRun) set(name string) {
	l.mu.Lock()
	l.order = append(l.order, name)
	l.mu.Unlock()
	l.cur.Store(&name)
}

// phase runs phase name for d.
func (l *loadRun) phase(name string, d time.Duration) {
	l.set(name)
	l.pace(d)
}

// pace lets the load run for d: a fixed stretch of traffic, not a wait for
// a condition.
func (l *loadRun) pace(d time.Duration) { time.Sleep(d) }

func (l *loadRun) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.done.Wait()
}

// report prints the totals per phase and fails on any failed request.
func (l *loadRun) report(t *testing.T) {
	l.finish()
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	total, failed := 0, 0
	fmt.Fprintf(&b, "%-42s %8s %8s\n", "phase", "ok", "failed")
	for _, p := range l.order {
		fmt.Fprintf(&b, "%-42s %8d %8d\n", p, l.ok[p], l.failed[p])
		total += l.ok[p] + l.failed[p]
		failed += l.failed[p]
	}
	elapsed := time.Since(l.start)
	fmt.Fprintf(&b, "%-42s %8d %8d  (%.0f req/s over %s)", "total", total-failed, failed, float64(total)/elapsed.Seconds(), elapsed.Round(100*time.Millisecond))
	t.Logf("HA load totals:\n%s", b.String())
	if failed > 0 {
		sort.Strings(l.samples)
		t.Errorf("%d of %d requests failed; samples:\n%s", failed, total, strings.Join(l.samples, "\n"))
	}
}
