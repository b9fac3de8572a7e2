package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
)

// remaining sends requests with key until one is a counted 200 and returns
// its X-RateLimit-Remaining and when it was sent.
func (ts *topoStack) remaining(ctx context.Context, key string) (int, time.Time) {
	ts.t.Helper()
	c := harness.NewHTTPClient(false)
	defer c.Close()
	var n int
	var at time.Time
	err := harness.WaitFor(ctx, func() (bool, error) {
		at = time.Now()
		resp, err := c.Get(ctx, fmt.Sprintf("http://127.0.0.1:%d/api/meter", ts.port), "", map[string]string{"x-api-key": key})
		if err != nil || resp.Status != 200 {
			return false, fmt.Errorf("status %v: %v", resp, err)
		}
		n, err = strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining"))
		return err == nil, err
	})
	if err != nil {
		ts.t.Fatalf("no counted request: %v", err)
	}
	return n, at
}

// pushOutcome is how a push started right after a kill went.
type pushOutcome struct {
	attempts  int
	firstErr  string
	succeeded time.Duration // after the kill; 0 if it never did
}

// pushThrough pushes the policy with generated route gen through s until it
// succeeds (at most 30 s), timing it from kill.
func (ts *topoStack) pushThrough(s *stack, gen int, kill time.Time) pushOutcome {
	var p pushOutcome
	path := writeFile(ts.t, fmt.Sprintf("failover-%d.yaml", gen), ts.policy("closed", gen))
	for time.Since(kill) < 30*time.Second {
		p.attempts++
		_, errOut, code := s.run("push", path)
		if code == 0 {
			p.succeeded = time.Since(kill)
			return p
		}
		if p.firstErr == "" {
			p.firstErr = strings.TrimSpace(errOut)
		}
		time.Sleep(200 * time.Millisecond) // retry pace, as an operator's script would
	}
	return p
}

// recoverWithin bounds the time from a master's SIGKILL to the last failed
// request, with the topologies' 1 s failure detection: detection, the
// election, and the client's switch (a Cluster client re-reads the slot map
// every second). Measured: 2.5–4 s.
const recoverWithin = 10 * time.Second

// maxCounterDrift bounds how far a rate-limit counter may be from the 200s
// it counted across a failover: writes the dead master had not replicated
// are lost, and a Take retried on the new master after its reply was lost
// counts twice. Measured: 0 (±1 for the reading).
const maxCounterDrift = 20

// failover is one master failure under load.
type failover struct {
	name string
	key  string       // the load's API key
	kill func() error // fails the master
	push bool         // push a policy right after the kill
}

// runFailover drives the load for a second, kills, optionally pushes,
// waits until a full 1.5 s of requests succeeded, and logs what failed,
// when, and how the rate-limit counter compares with the 200s it counted.
func runFailover(t *testing.T, ts *topoStack, f failover) failoverReport {
	ctx := testCtx(t, 90*time.Second)
	r0, t0 := ts.remaining(ctx, f.key)
	start := time.Now()
	load := startFailoverLoad(t, ts.port, f.key)
	time.Sleep(time.Second) // a stretch of steady traffic before the kill
	kill := time.Now()
	if err := f.kill(); err != nil {
		t.Logf("kill: %v", err)
	}
	pushed := make(chan pushOutcome, 1)
	if f.push {
		go func() { pushed <- ts.pushThrough(ts.a, 100, kill) }()
	}
	if err := harness.WaitFor(testCtx(t, recoverWithin+2*time.Second), func() (bool, error) { return load.recovered(kill), nil }); err != nil {
		t.Fatalf("%s: requests did not recover: %v\n%s", f.name, err, load.report(start, kill))
	}
	load.finish()
	r1, t1 := ts.remaining(ctx, f.key)
	rep := load.report(start, kill)
	charged := r0 - r1 + int(t1.Sub(t0)/meterInterval)
	allowed := rep.counted + 1
	t.Logf("%s: %s\n  rate-limit counter: %d counted 200s, the counter charged %d (±1): %d lost (negative: charged twice)",
		f.name, rep, allowed, charged, allowed-charged)
	if rep.failed > 0 && rep.last > recoverWithin {
		t.Errorf("%s: requests still failed %s after the kill, want none after %s", f.name, rep.last.Round(time.Millisecond), recoverWithin)
	}
	if n := rep.byKind["503 (empty body)"]; n > 0 {
		t.Errorf("%s: %d answers were Envoy's empty 503, want the JSON body of every refusal", f.name, n)
	}
	if d := allowed - charged; d > maxCounterDrift || d < -maxCounterDrift {
		t.Errorf("%s: the counter is %d off the counted 200s, want at most %d", f.name, d, maxCounterDrift)
	}
	if f.push {
		p := <-pushed
		t.Logf("%s: push started at the kill: %d attempts, served after %s; first error: %q",
			f.name, p.attempts, p.succeeded.Round(time.Millisecond), p.firstErr)
		if p.succeeded == 0 {
			t.Errorf("%s: no push succeeded within 30 s of the kill", f.name)
		}
	}
	return rep
}

// keyOn creates, through replica A, an API key of the meter tier whose
// consumer's counters and whose record both live on master m.
func keyOn(t *testing.T, ts *topoStack, rc *harness.RedisCluster, m *harness.RedisNode) string {
	ctx := testCtx(t, 30*time.Second)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(strings.TrimPrefix(rc.URL(), "redis+cluster://"), ",")})
	defer cc.Close()
	consumer := ""
	for i := 0; consumer == ""; i++ {
		name := fmt.Sprintf("load-%d", i)
		if n, _, err := rc.MasterOf(ctx, "{c:"+name+"}"); err == nil && n == m {
			consumer = name
		}
	}
	for range 30 {
		k := ts.key(ts.a, consumer, "meter")
		h, err := cc.Get(ctx, "tollgate:apikey:id:"+k.Record.ID).Result()
		if err != nil {
			t.Fatalf("read key %s: %v", k.Record.ID, err)
		}
		if n, _, err := rc.MasterOf(ctx, "tollgate:apikey:"+h); err == nil && n == m {
			return k.Key
		}
	}
	t.Fatalf("no key of %s has its record on %s", consumer, m.Addr)
	return ""
}

// TestRedisClusterFailoverUnderLoad kills (SIGKILL) a master of a real
// Redis Cluster under 200 req/s twice: first the master holding the policy
// store's slot, the load consumer's counters and its key's record, with the
// rate limits failing closed and a push started at the kill; then, with
// failureMode open, another master holding a second consumer's counters
// and key. It logs the failed requests per second and kind, the time to
// recover, and the counter's drift, and checks the history stays linear.
func TestRedisClusterFailoverUnderLoad(t *testing.T) {
	rc := harness.StartRedisCluster(t)
	ts := startTopoStack(t, rc.URL(), "closed", false)
	ctx := testCtx(t, 120*time.Second)
	m1, _, err := rc.MasterOf(ctx, "{policy}")
	if err != nil {
		t.Fatal(err)
	}
	runFailover(t, ts, failover{name: "cluster, failureMode closed", key: keyOn(t, ts, rc, m1), kill: m1.Kill, push: true})
	checkLinear(t, ts.a.history(), ts.a.status().Version)

	if err := rc.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	ts.a.cli(0, "push", writeFile(t, "open.yaml", ts.policy("open", 200)))
	m2 := masterWithReplica(t, rc)
	runFailover(t, ts, failover{name: "cluster, failureMode open", key: keyOn(t, ts, rc, m2), kill: m2.Kill})
}

// masterWithReplica returns a live master that has a connected replica.
func masterWithReplica(t *testing.T, rc *harness.RedisCluster) *harness.RedisNode {
	ctx := testCtx(t, 10*time.Second)
	for _, n := range rc.Live() {
		repl, err := n.Info(ctx, "replication")
		if err == nil && repl["role"] == "master" && repl["connected_slaves"] != "0" {
			return n
		}
	}
	t.Fatal("no master with a replica left")
	return nil
}

// TestRedisSentinelFailoverUnderLoad kills (SIGKILL) the master of a
// Sentinel topology under 200 req/s with a push started at the kill, and
// logs the same measurements as the cluster test.
func TestRedisSentinelFailoverUnderLoad(t *testing.T) {
	rs := harness.StartRedisSentinel(t)
	ts := startTopoStack(t, rs.URL(), "closed", false)
	k := ts.key(ts.a, "load", "meter")
	runFailover(t, ts, failover{name: "sentinel, failureMode closed", key: k.Key, kill: rs.Master.Kill, push: true})
	checkLinear(t, ts.a.history(), ts.a.status().Version)
	if m, err := rs.CurrentMaster(testCtx(t, 5*time.Second)); err != nil || m != rs.Replica.Addr {
		t.Errorf("the sentinels name %q (%v) as master, want the promoted replica %s", m, err, rs.Replica.Addr)
	}
}
