package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// replicaKillPolicy has two gateways, each with an API-key route under
// rate limits (the public one per consumer tier, the internal one a shared
// extra limit) that fail closed, plus a route per gateway that every push
// renames, so each push changes every Envoy's routes.
const replicaKillPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  tiers:
    free: [{requests: 1000000, per: minute}]
  defaultTier: free
  failureMode: closed
gateways:
  - name: public
    listeners: [{name: public-http, port: %[1]d, address: 127.0.0.1}]
  - name: internal
    listeners: [{name: internal-http, port: %[2]d, address: 127.0.0.1}]
routes:
  - {name: public-api, gateway: public, match: {pathPrefix: /api}, backend: one, auth: {methods: [apiKey], roles: [user]}}
  - name: internal-api
    gateway: internal
    match: {pathPrefix: /api}
    backend: one
    auth: {methods: [apiKey], roles: [service]}
    rateLimit: {consumer: false, extra: [{requests: 1000000, per: minute}]}
  - {name: pub-gen-%[3]d, gateway: public, match: {pathPrefix: /gen-%[3]d}, backend: one, auth: none}
  - {name: int-gen-%[3]d, gateway: internal, match: {pathPrefix: /gen-%[3]d}, backend: one, auth: none}
backends:
  - {name: one, endpoints: [%[4]q]}
`

// replicaKillCycles is how many kill–push–restart cycles the test runs
// (each of the three replicas is killed twice); TOLLGATE_REPLICA_SOAK=N
// (make soak) runs N cycles instead.
const replicaKillCycles = 6

// A cycle of the kill loop: a replica is down for replicaDown, then all
// three run for replicaUp. Odd cycles push right after the kill (while the
// dead replica's Envoys reconnect), even ones replicaDownBeforePush after
// it (they have reconnected to a survivor by then).
const (
	replicaDown           = 1500 * time.Millisecond
	replicaDownBeforePush = 500 * time.Millisecond
	replicaUp             = 1500 * time.Millisecond
)

// replicaFleet is three control-plane replicas on one Redis store and four
// Envoys (two per gateway) whose bootstraps list all three.
type replicaFleet struct {
	t        *testing.T
	replicas []*stack
	envoys   []*harness.Envoy
	names    []string
	ports    [2]int // listener ports: public, internal
	policy   func(i int) string
}

// TestReplicaKillLoop runs three `tollgate serve` replicas (each serving
// xDS, ext_authz and rate limits) on one Redis store, and four Envoys of
// two gateways whose bootstraps list the three xDS addresses. Under 100
// req/s with API keys and fail-closed rate limits on both gateways, each
// cycle SIGKILLs one replica (round robin), pushes through a survivor
// (alternating), waits until all four Envoys serve the push, and restarts
// the killed replica. No request may fail, every Envoy must follow every
// push (an Envoy on the killed replica reconnects to another one), and
// afterwards every replica's history is the same linear list with each
// push applied exactly once.
func TestReplicaKillLoop(t *testing.T) {
	f := startReplicaFleet(t)
	keys := f.createKeys()
	load := startTargetLoad(t, 10*time.Millisecond, []loadTarget{
		{port: f.ports[0], path: "/api/load", key: keys[0]},
		{port: f.ports[1], path: "/api/load", key: keys[1]},
	})
	load.phase("steady, 3 replicas", 2*time.Second)
	cycles := replicaKillCycles
	if n, err := strconv.Atoi(os.Getenv("TOLLGATE_REPLICA_SOAK")); err == nil && n > 0 {
		cycles = n
	}
	pushed := []string{f.replicas[0].status().Version}
	var converge []time.Duration
	start := time.Now()
	for i := 1; i <= cycles; i++ {
		version, took := f.killPushRestart(load.loadRun, i)
		pushed = append(pushed, version)
		converge = append(converge, took)
	}
	loop := time.Since(start)
	load.phase("steady after the loop", 2*time.Second)
	load.report(t)
	slices.Sort(converge)
	t.Logf("%d cycles in %s; push → served by all 4 Envoys: min %s, median %s, max %s", cycles, loop.Round(100*time.Millisecond),
		converge[0].Round(time.Millisecond), converge[len(converge)/2].Round(time.Millisecond), converge[len(converge)-1].Round(time.Millisecond))
	f.logEnvoyStats()
	if t.Failed() {
		f.logFailedAccess()
	}
	f.checkHistories(pushed)
}

// logFailedAccess logs the access-log lines of answers other than 200 from
// every Envoy (at most 20), with their response flags and details, and each
// Envoy's non-zero side-service failure and retry counters.
func (f *replicaFleet) logFailedAccess() {
	var lines []string
	for n, e := range f.envoys {
		for _, l := range strings.Split(e.Logs(), "\n") {
			if strings.Contains(l, `"status":`) && !strings.Contains(l, `"status":200`) && len(lines) < 20 {
				lines = append(lines, f.names[n]+": "+l)
			}
		}
		logSideServiceStats(f.t, e)
	}
	f.t.Logf("answers other than 200 in the Envoys' access logs:\n%s", strings.Join(lines, "\n"))
}

// startReplicaFleet starts Redis, an upstream, the three replicas (the
// first seeds the store) and the four Envoys.
func startReplicaFleet(t *testing.T) *replicaFleet {
	rd := harness.StartRedis(t)
	up := harness.StartUpstream(t, "one")
	ports := freePorts(t, 14)
	f := &replicaFleet{t: t, names: []string{"pub-0", "pub-1", "int-0", "int-1"}, ports: [2]int{ports[12], ports[13]}}
	f.policy = func(i int) string { return fmt.Sprintf(replicaKillPolicy, ports[12], ports[13], i, up.Addr()) }
	var xds, authz, rl []string
	for i := range 3 {
		s := allocStack(t, ports[4*i:4*i+4])
		f.replicas = append(f.replicas, s)
		xds, authz, rl = append(xds, s.xdsAddr), append(authz, s.authzAddr), append(rl, s.rlAddr)
	}
	args := []string{"--store", "redis://" + rd + "/0", "--store-prefix", haPrefix, "--redis", "redis://" + rd + "/0",
		"--key-pepper", haPepper, "--log-level", "info",
		"--authz-advertise-addr", strings.Join(authz, ","), "--ratelimit-advertise-addr", strings.Join(rl, ",")}
	for i, s := range f.replicas {
		s.opts.args = args
		s.startServe([]string{f.policy(0), "", ""}[i])
	}
	for i, name := range f.names {
		gateway := []string{"public", "internal"}[i/2]
		// Each Envoy lists the replicas starting at a different one.
		list := append(slices.Clone(xds[i%3:]), xds[:i%3]...)
		out := f.replicas[0].cli(0, "bootstrap", "--gateway", gateway, "--node-id", name, "--xds", strings.Join(list, ","),
			"--admin-port", fmt.Sprint(harness.FreePort(t)))
		e := harness.StartEnvoy(t, []byte(out), harness.EnvoyOptions{})
		if err := e.WaitReady(testCtx(t, 30*time.Second)); err != nil {
			t.Fatalf("envoy %s: %v", name, err)
		}
		f.envoys = append(f.envoys, e)
	}
	return f
}

// createKeys creates the public gateway's key (role user) and the
// internal one's (role service).
func (f *replicaFleet) createKeys() []string {
	var keys []string
	for _, c := range []struct{ consumer, role string }{{"edge-load", "user"}, {"mesh-load", "service"}} {
		var created struct{ Key string }
		out := f.replicas[1].cli(0, "keys", "create", "--consumer", c.consumer, "--roles", c.role, "-o", "json")
		if err := json.Unmarshal([]byte(out), &created); err != nil {
			f.t.Fatal(err)
		}
		keys = append(keys, created.Key)
	}
	return keys
}

// killPushRestart runs cycle i: SIGKILL replica (i-1)%3; at once (odd i)
// or after replicaDownBeforePush (even i), push policy i through one of
// the two survivors (alternating) and wait until all four Envoys serve it;
// restart the killed replica replicaDown after the kill and let the load
// run on three replicas for replicaUp. It returns the pushed version and
// how long the Envoys took to serve it after the push returned.
func (f *replicaFleet) killPushRestart(load *loadRun, i int) (string, time.Duration) {
	f.t.Helper()
	dead := (i - 1) % 3
	survivors := []int{(dead + 1) % 3, (dead + 2) % 3}
	via := survivors[i%2]
	load.set(fmt.Sprintf("c%d: r%d killed, push via r%d", i, dead, via))
	killed := time.Now()
	if err := f.replicas[dead].cp.Kill(); err != nil && !strings.Contains(err.Error(), "killed") {
		f.t.Logf("replica %d (SIGKILL): %v", dead, err)
	}
	if i%2 == 0 {
		load.pace(replicaDownBeforePush)
	}
	var res struct{ Version string }
	out := f.replicas[via].cli(0, "push", writeFile(f.t, fmt.Sprintf("p%d.yaml", i), f.policy(i)), "-o", "json")
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Version == "" {
		f.t.Fatalf("push %d via replica %d: %v: %s", i, via, err, out)
	}
	took := f.waitServed(i)
	load.pace(replicaDown - time.Since(killed))
	load.set(fmt.Sprintf("c%d: r%d restarting", i, dead))
	f.replicas[dead].startServe("")
	load.phase(fmt.Sprintf("c%d: 3 replicas", i), replicaUp)
	return res.Version, took
}

// waitServed waits until every Envoy's routes include push i's routes and
// returns how long that took.
func (f *replicaFleet) waitServed(i int) time.Duration {
	f.t.Helper()
	start := time.Now()
	ctx := testCtx(f.t, 20*time.Second)
	for n, e := range f.envoys {
		want := fmt.Sprintf(`"%s-gen-%d"`, []string{"pub", "int"}[n/2], i)
		if err := e.WaitConfigDump(ctx, "dynamic_route_configs", func(d []byte) bool { return strings.Contains(string(d), want) }); err != nil {
			f.t.Fatalf("Envoy %s never served push %d: %v", f.names[n], i, err)
		}
	}
	return time.Since(start)
}

// logEnvoyStats logs, per Envoy, the connections it took on its listener,
// how often it (re)connected to a control-plane replica, and its ext_authz
// and rate-limit outcomes.
func (f *replicaFleet) logEnvoyStats() {
	f.t.Helper()
	ctx := testCtx(f.t, 10*time.Second)
	var b strings.Builder
	fmt.Fprintf(&b, "%-6s %10s %14s %12s %12s %12s\n", "envoy", "conns", "xds connects", "authz ok", "authz error", "rl error")
	for n, e := range f.envoys {
		st, err := e.Stats(ctx, `^(listener\.127\.0\.0\.1_\d+\.downstream_cx_total|cluster\.xds_cluster\.upstream_cx_total|http\..*\.ext_authz\.(ok|error)|http\..*\.ratelimit\.error)$`)
		if err != nil {
			f.t.Fatal(err)
		}
		var conns, authzOK, authzErr, rlErr int64
		for name, v := range st {
			switch {
			case strings.HasPrefix(name, "listener."):
				conns += v
			case strings.HasSuffix(name, "ext_authz.ok"):
				authzOK += v
			case strings.HasSuffix(name, "ext_authz.error"):
				authzErr += v
			case strings.HasSuffix(name, "ratelimit.error"):
				rlErr += v
			}
		}
		fmt.Fprintf(&b, "%-6s %10d %14d %12d %12d %12d\n", f.names[n], conns, st["cluster.xds_cluster.upstream_cx_total"], authzOK, authzErr, rlErr)
		if conns == 0 {
			f.t.Errorf("Envoy %s took no connection: the load did not reach every Envoy", f.names[n])
		}
	}
	for r, s := range f.replicas {
		var ids []string
		for _, n := range s.status().Nodes {
			ids = append(ids, n.ID)
		}
		fmt.Fprintf(&b, "replica r%d serves %v\n", r, ids)
	}
	f.t.Logf("per Envoy:\n%s", b.String())
}

// checkHistories checks that every replica returns the same history, that
// it is linear (seq 1..n, the last applied event is the served version),
// and that it is the seed followed by each push, applied exactly once.
func (f *replicaFleet) checkHistories(pushed []string) {
	f.t.Helper()
	ref := f.replicas[0].history()
	cur := f.replicas[0].status().Version
	checkLinear(f.t, ref, cur)
	for i, s := range f.replicas[1:] {
		if h := s.history(); fmt.Sprint(h) != fmt.Sprint(ref) {
			f.t.Errorf("replica %d's history differs from replica 0's:\n%+v\n%+v", i+1, h, ref)
		}
	}
	var got []string
	for _, ev := range ref {
		if ev.Outcome != "applied" {
			f.t.Errorf("history event %+v is not applied", ev)
		}
		got = append(got, ev.Version)
	}
	if fmt.Sprint(got) != fmt.Sprint(pushed) {
		f.t.Errorf("history versions %v, want the seed and each push once, in order: %v", got, pushed)
	}
	f.t.Logf("history: %d events, seq 1..%d, identical on the 3 replicas", len(ref), len(ref))
}
