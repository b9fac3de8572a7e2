package e2e

import (
	"bufio"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// TestQuotaDenialHeaders: in quota mode an admitted response carries the
// backstop's X-RateLimit-* (draft 03: this Envoy's view of the consumer's
// full limit, counting down), a 429 of the backstop its Retry-After and
// X-RateLimit-*, and a 429 of RLQS (the JSON body) carries
// Retry-After, X-RateLimit-Limit/Remaining/Reset and the IETF
// RateLimit-Policy/RateLimit headers of the binding limit, static per
// bucket (deny_response_settings); RateLimit-Policy is exactly exact mode's.
// A client that waits Retry-After is admitted.
func TestQuotaDenialHeaders(t *testing.T) {
	r := startQuotaStack(t, "open", 5)
	// Opaque, as when this test was written: a signed key is decided in
	// Envoy without the ext_authz hop, so requests come faster and more of
	// them can meet the backstop before RLQS's first assignment lands.
	key := map[string]string{"x-api-key": r.key(t, "q-headers-1", "tiny", "--format", "opaque")}
	c := harness.NewHTTPClient(true)
	defer c.Close()
	get := func() *harness.HTTPResponse {
		t.Helper()
		resp, err := c.Get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/api/x", r.port), "", key)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i := 0; i < 10; i++ {
		resp := get()
		if resp.Status != 200 || resp.Header.Get("X-RateLimit-Limit") != "10" ||
			resp.Header.Get("X-RateLimit-Remaining") != strconv.Itoa(9-i) {
			t.Fatalf("request %d: %d %v, want 200 with X-RateLimit-Limit 10, Remaining %d", i+1, resp.Status, resp.Header, 9-i)
		}
	}
	// RLQS's assignment lands ~1 ms after the first request, so a request
	// or two may pass RLQS and meet the backstop's 429 (backstopRefusal,
	// Envoy's own draft-03 headers) before RLQS refuses (a JSON body naming
	// the limit).
	var resp *harness.HTTPResponse
	for i := 0; i < 4; i++ {
		resp = get()
		t.Logf("denial %d: %d %v %s", i+1, resp.Status, resp.Header, resp.Body)
		if resp.Status != 429 {
			t.Fatalf("request %d after the limit: %d, want 429", 11+i, resp.Status)
		}
		if strings.HasPrefix(string(resp.Body), `{"error":"rate_limited","limit":`) {
			break
		}
		if !backstopRefusal(resp) || resp.Header.Get("X-RateLimit-Remaining") != "0" {
			t.Fatalf("a backstop denial: %v %s", resp.Header, resp.Body)
		}
	}
	if !strings.HasPrefix(string(resp.Body), `{"error":"rate_limited","limit":`) {
		t.Fatalf("no RLQS denial (JSON body) in 4 requests over the limit")
	}
	want := map[string]string{
		"Retry-After":           "6",
		"X-RateLimit-Limit":     "10",
		"X-RateLimit-Remaining": "0",
		"X-RateLimit-Reset":     "6",
		"RateLimit-Policy":      `"tiny";q=10;w=60`,
		"RateLimit":             `"tiny";r=0;t=6`,
	}
	for h, v := range want {
		if got := resp.Header.Values(h); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %q, want exactly %q", h, got, v)
		}
	}
	if t.Failed() {
		return
	}
	time.Sleep(6 * time.Second)
	if resp := get(); resp.Status != 200 {
		t.Fatalf("after Retry-After: %d, want 200", resp.Status)
	}
}

// multiWindowPolicy has one tier with a second, a minute and an hour
// window on one route.
const multiWindowPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  mode: quota
  tiers:
    multi: [{requests: 2, per: second}, {requests: 4, per: minute}, {requests: 5, per: hour}]
  defaultTier: multi
  failureMode: open
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo}
backends:
  - {name: echo, endpoints: [%q]}
`

// TestQuotaMultiWindow: one consumer limited to 2/second, 4/minute and
// 5/hour in quota mode sends one request, then a burst of 3 every second
// for 40 s. No window is ignored: no burst admits more than 2 (second);
// by time t at most 4 + ⌊t/15 s⌋ are admitted (the minute's GCRA: 4, then
// one every 15 s); never more than 5 (the hour), though by 40 s the minute
// alone would admit 6. And none is enforced beyond its limit: 4 are
// admitted within 12 s (two report intervals) and the 5th once the minute
// refilled, within 35 s.
//
// The first request is sent alone and no burst exceeds RLQS's grant, so
// RLQS's assignments do the limiting here; TestQuotaBackstopWindows covers
// the backstop alone (one filter per window, so a refused burst no longer
// drains the longer windows) and what is charged for requests RLQS let
// through under ALLOW_ALL that the backstop refused.
func TestQuotaMultiWindow(t *testing.T) {
	t.Parallel() // 40 s of one burst a second: it waits on timers and asserts admissions, not latency (e2e/doc.go)
	r := startRedisStack(t, "rlq-multi", func(port int, up string) string { return fmt.Sprintf(multiWindowPolicy, port, up) })
	key := map[string]string{"x-api-key": r.key(t, "q-multi-1", "multi")}
	start := time.Now()
	codes, _ := r.burst(t, 1, 1, "/api/x", key)
	total, reached4, reached5 := codes[200], time.Duration(0), time.Duration(0)
	var trace []string
	for at := 300 * time.Millisecond; at < 40*time.Second; at += time.Second {
		time.Sleep(time.Until(start.Add(at)))
		codes, _ := r.burst(t, 3, 3, "/api/x", key)
		elapsed := time.Since(start)
		total += codes[200]
		trace = append(trace, fmt.Sprintf("%.1fs:%d", elapsed.Seconds(), codes[200]))
		if codes[200]+codes[429] != 3 {
			t.Fatalf("burst at %s: %v", at, codes)
		}
		if codes[200] > 2 {
			t.Errorf("burst at %s admitted %d > 2: the second window ignored", at, codes[200])
		}
		if minute := 4 + int(elapsed/(15*time.Second)); total > minute {
			t.Errorf("%d admitted by %s > %d: the minute window ignored", total, elapsed, minute)
		}
		if total > 5 {
			t.Errorf("%d admitted by %s > 5: the hour window ignored", total, elapsed)
		}
		if total >= 4 && reached4 == 0 {
			reached4 = elapsed
		}
		if total >= 5 && reached5 == 0 {
			reached5 = elapsed
		}
	}
	t.Logf("2/s, 4/min, 5/h: admitted per burst of 3 %s; 4 reached at %s, 5 at %s", strings.Join(trace, " "),
		reached4.Round(100*time.Millisecond), reached5.Round(100*time.Millisecond))
	if reached4 == 0 || reached4 > 12*time.Second {
		t.Errorf("4 admitted only at %s, want within 12 s", reached4)
	}
	if reached5 == 0 || reached5 > 35*time.Second {
		t.Errorf("5 admitted only at %s, want within 35 s (the minute refills one at 15 s)", reached5)
	}
	resp, err := harness.HTTPGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/api/x", r.port), "", key)
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Header.Get("RateLimit-Policy"); resp.Status != 429 || p != `"multi";q=2;w=1, "multi";q=4;w=60, "multi";q=5;w=3600` {
		t.Errorf("denial %d with RateLimit-Policy %q, want every window", resp.Status, p)
	}
	if t.Failed() {
		var rlqs []string
		for _, l := range strings.Split(r.cp.Logs(), "\n") {
			if strings.Contains(l, "rlqs: assignment") {
				rlqs = append(rlqs, l)
			}
		}
		t.Logf("RLQS log:\n%s", strings.Join(rlqs, "\n"))
	}
}

// splitPolicy is quotaPolicy's shape with a steady tier (5/second).
const splitPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  mode: quota
  tiers:
    steady: [{requests: 5, per: second}]
  defaultTier: steady
  failureMode: %s
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo}
backends:
  - {name: echo, endpoints: [%q]}
`

// splitQuota is a control plane whose Envoys reach the rate-limit and RLQS
// services on a separate `tollgate serve --only ratelimit` process.
type splitQuota struct {
	*rlStack
	rlAddr, rlAdmin string
	rl              *harness.Process
}

func startSplitQuota(t *testing.T, failureMode string) *splitQuota {
	up := harness.StartUpstream(t, "echo")
	rd := startRedisServer(t, harness.FreePort(t))
	port := harness.FreePort(t)
	rlAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	s := startStackWith(t, fmt.Sprintf(splitPolicy, failureMode, port, up.Addr()), stackOptions{
		args: []string{"--redis", "redis://" + rd.addr + "/0", "--key-pepper", "e2e-pepper-0123456789",
			"--ratelimit-advertise-addr", rlAddr},
	})
	q := &splitQuota{rlStack: &rlStack{stack: s, redis: rd, port: port, up: up.Addr()}, rlAddr: rlAddr,
		rlAdmin: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))}
	q.startRateLimit(t)
	q.proxy = s.envoy("public", "rlq-split", "delta")
	return q
}

// startRateLimit (re)starts `serve --only ratelimit` and waits for /healthz.
func (q *splitQuota) startRateLimit(t *testing.T) {
	t.Helper()
	q.rl = harness.StartProcess(t, "tollgate-ratelimit", q.bin, "serve", "--only", "ratelimit", "--data-dir", q.dataDir,
		"--ratelimit-addr", q.rlAddr, "--admin-addr", q.rlAdmin, "--redis", "redis://"+q.redis.addr+"/0", "--log-level", "debug")
	ctx := testCtx(t, 20*time.Second)
	if err := harness.WaitFor(ctx, func() (bool, error) {
		resp, err := harness.HTTPGet(ctx, "http://"+q.rlAdmin+"/healthz", "", nil)
		return err == nil && resp.Status == 200, nil
	}); err != nil {
		t.Fatalf("serve --only ratelimit not ready: %v\n%s", err, q.rl.LogTail(30))
	}
}

// rlqsMetric is a tollgate_rlqs_* sample of the ratelimit process (0 when
// absent or unreachable).
func (q *splitQuota) rlqsMetric(name string) float64 {
	resp, err := harness.HTTPGet(context.Background(), "http://"+q.rlAdmin+"/metrics", "", nil)
	if err != nil || resp.Status != 200 {
		return 0
	}
	sc := bufio.NewScanner(strings.NewReader(string(resp.Body)))
	sum := 0.0
	for sc.Scan() {
		line := sc.Text()
		if n, v, ok := strings.Cut(line, " "); ok && (n == name || strings.HasPrefix(n, name+"{")) {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
	}
	return sum
}

// TestQuotaSplitRateLimitServesRLQS: `tollgate serve --only ratelimit`
// serves RLQS, so a split deployment can use quota mode: Envoy's stream
// reaches it and a consumer is limited by its assignments (exactly 5 of a
// burst of 20 for 5/second; the process's tollgate_rlqs_* metrics show
// the stream and the assignments).
func TestQuotaSplitRateLimitServesRLQS(t *testing.T) {
	q := startSplitQuota(t, "open")
	key := map[string]string{"x-api-key": q.key(t, "q-split-1", "steady")}
	codes, _ := q.burst(t, 20, 5, "/api/x", key)
	if codes[200] != 5 || codes[429] != 15 {
		t.Fatalf("burst of 20 (5/second): %v, want 5×200 and 15×429", codes)
	}
	ctx := testCtx(t, 10*time.Second)
	if err := harness.WaitFor(ctx, func() (bool, error) {
		return q.rlqsMetric("tollgate_rlqs_streams") == 1 && q.rlqsMetric("tollgate_rlqs_assignments_total") > 0, nil
	}); err != nil {
		t.Fatalf("no RLQS stream or assignment on the ratelimit process (streams %v, assignments %v)\n%s",
			q.rlqsMetric("tollgate_rlqs_streams"), q.rlqsMetric("tollgate_rlqs_assignments_total"), q.rl.LogTail(30))
	}
	t.Logf("serve --only ratelimit: %v streams, %v assignments, %v reports", q.rlqsMetric("tollgate_rlqs_streams"),
		q.rlqsMetric("tollgate_rlqs_assignments_total"), q.rlqsMetric("tollgate_rlqs_reports_total"))
}

// TestQuotaRLQSServerRestart: Envoy in quota mode under a steady 20 req/s
// of one consumer limited to 5/second; the process serving RLQS (`serve
// --only ratelimit`) is killed for 15 s (16.3 s for closed; longer than an
// assignment's 12 s) and restarted. Per failure mode:
//   - every second, and the run as a whole, stays within what the
//     backstop admits (5 + 5·t): nothing is unlimited;
//   - open: the last assignment, then (expired) ALLOW_ALL under the
//     backstop, keep admitting at the limit during the whole outage;
//   - closed: once the last assignment expired, DENY_ALL: nothing admitted
//     until the new process assigns again;
//   - a consumer first seen during the outage gets exactly its limit (the
//     backstop);
//   - the restarted process gets Envoy's stream and assigns again within
//     2 s of its start, and from 2 s after it every second admits at the
//     limit again (≥ 3 of 5; closed: not DENY_ALL any more): the stream
//     Envoy opened at its first report tick of the outage waits, retried
//     (envoy.RLQSStreamRetryPolicy), and connects as soon as the process is
//     back. Without the retries Envoy 1.40 reconnects only on its 5 s report
//     tick (every 5 s from the first request here): the closed run restarts
//     0.3 s after a tick, the worst case (assigned ~4.7 s after the start,
//     seconds 21–24 refused entirely), the open one 1 s before a tick.
func TestQuotaRLQSServerRestart(t *testing.T) {
	for _, tt := range []struct {
		mode   string
		outage time.Duration
	}{{"open", 15 * time.Second}, {"closed", 16300 * time.Millisecond}} {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel() // each mode waits out its outage (timers, 20 req/s): the two overlap
			quotaRestart(t, tt.mode, tt.outage)
		})
	}
}

func quotaRestart(t *testing.T, mode string, outage time.Duration) {
	q := startSplitQuota(t, mode)
	key := map[string]string{"x-api-key": q.key(t, "q-restart-1", "steady")}
	fresh := map[string]string{"x-api-key": q.key(t, "q-restart-2", "steady")}
	const before, after = 4 * time.Second, 8 * time.Second
	start := time.Now()
	var perSecond secondCounts
	var total map[int]int
	var wg sync.WaitGroup
	wg.Go(func() { total = load(t, q.port, key, 50*time.Millisecond, before+outage+after, start, &perSecond) })
	time.Sleep(time.Until(start.Add(before)))
	_ = q.rl.Kill() // SIGKILL: its error is the "signal: killed" exit
	time.Sleep(3 * time.Second)
	freshCodes, _ := q.burst(t, 20, 5, "/api/x", fresh)
	time.Sleep(time.Until(start.Add(before + outage)))
	restarted := time.Now()
	q.startRateLimit(t)
	ready := time.Since(restarted)
	ctx := testCtx(t, 15*time.Second)
	if err := harness.WaitFor(ctx, func() (bool, error) { return q.rlqsMetric("tollgate_rlqs_assignments_total") > 0, nil }); err != nil {
		t.Fatalf("the restarted process sent no assignment: %v", err)
	}
	reassigned := time.Since(restarted)
	wg.Wait()
	elapsed := time.Since(start)
	secs := make([]int, 0, len(perSecond.by))
	for s := range perSecond.by {
		secs = append(secs, s)
	}
	sort.Ints(secs)
	var table []string
	for _, s := range secs {
		table = append(table, fmt.Sprintf("%d:%d/%d", s, perSecond.by[s][200], perSecond.by[s][429]))
	}
	bound := 5 + 5*int(elapsed.Seconds()+1)
	t.Logf("%s: killed at %s for %s; admitted/refused per second: %s", mode, before, outage, strings.Join(table, " "))
	t.Logf("%s: total %v over %s (backstop bound %d); fresh consumer during the outage %v; restarted process ready after %s, assigned after %s",
		mode, total, elapsed.Round(time.Millisecond), bound, freshCodes, ready.Round(10*time.Millisecond), reassigned.Round(10*time.Millisecond))
	retries, _ := q.proxy.Stats(ctx, `cluster\.tollgate_ratelimit\.upstream_rq_(total|retry|retry_success|retry_limit_exceeded|retry_overflow|per_try_timeout)$`)
	t.Logf("%s: Envoy's RLQS cluster: %v", mode, retries)
	// The stream Envoy opened during the outage connected on a retry, and
	// no per-try timeout (Envoy derives one from the back-off) cut it.
	const cl = "cluster.tollgate_ratelimit.upstream_rq_"
	if retries[cl+"retry_success"] < 1 || retries[cl+"per_try_timeout"] > 0 {
		t.Errorf("Envoy's RLQS stream: %v, want it reconnected by a retry (retry_success ≥ 1) and no per_try_timeout", retries)
	}
	if total[0] > 0 || total[503] > 0 || total[500] > 0 {
		t.Errorf("errors: %v", total)
	}
	if total[200] > bound {
		t.Errorf("admitted %d > %d: more than the backstop allows", total[200], bound)
	}
	for _, s := range secs {
		if n := perSecond.by[s][200]; n > 10 {
			t.Errorf("second %d admitted %d > 10 (5 per second, burst 5)", s, n)
		}
	}
	if freshCodes[200] != 5 {
		t.Errorf("a consumer first seen during the outage: %v, want exactly 5×200 (the backstop)", freshCodes)
	}
	if reassigned > 2*time.Second {
		t.Errorf("the restarted process assigned only after %s, want within 2 s of its start", reassigned)
	}
	killed, back := int(before/time.Second), int((before+outage)/time.Second)
	for s := back + 2; s < secs[len(secs)-1]; s++ { // the last second is partial
		if n := perSecond.by[s][200]; n < 3 {
			t.Errorf("second %d (%d s after the restart) admitted %d, want the limit again (≥ 3 of 5)", s, s-back, n)
		}
	}
	for s := killed + 1; s < back; s++ {
		n := perSecond.by[s][200]
		switch {
		case mode == "open" && n == 0:
			t.Errorf("open: second %d of the outage admitted nothing", s)
		case mode == "closed" && s >= killed+14 && n > 0:
			t.Errorf("closed: second %d (assignment expired) admitted %d, want 0", s, n)
		}
	}
}
