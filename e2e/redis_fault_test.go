package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// keyFaultPolicy guards /api with API keys only: every answer during a
// Redis outage comes from the key store path.
const keyFaultPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo}
backends:
  - {name: echo, endpoints: [%q]}
`

// Fault-injection timeline of one run: warm-up, outage, recovery.
const (
	faultRate     = 100 // requests per second
	faultWarm     = time.Second
	faultOutage   = 5 * time.Second
	faultRecovery = 3 * time.Second
	faultBucket   = 100 * time.Millisecond
	// faultRecoverWithin bounds how long after Redis answers again a
	// request may still fail.
	faultRecoverWithin = 2 * time.Second
	// faultMaxLogLines bounds the WARN/ERROR lines tollgate may write
	// during one outage: a few state changes, not one per request.
	faultMaxLogLines = 6
)

// faultyRedis is a redis-server the test kills, restarts (with its data:
// SAVE before the kill) and SIGSTOPs, on a fixed port.
type faultyRedis struct {
	addr, dir string
	port      int
	proc      *harness.Process
}

func startFaultyRedis(t *testing.T) *faultyRedis {
	t.Helper()
	port := harness.FreePort(t)
	r := &faultyRedis{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), port: port, dir: t.TempDir()}
	r.start(t)
	return r
}

func (r *faultyRedis) start(t *testing.T) {
	t.Helper()
	r.proc = harness.StartProcess(t, "redis", "redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	ctx := testCtx(t, 10*time.Second)
	if err := harness.WaitFor(ctx, func() (bool, error) { return harness.RedisPing(ctx, r.addr) == nil, nil }); err != nil {
		t.Fatalf("redis did not start: %v", err)
	}
}

// fault stops Redis the way kind says ("kill" or "stop") and returns the
// function that brings it back.
func (r *faultyRedis) fault(t *testing.T, kind string) (restore func()) {
	t.Helper()
	switch kind {
	case "kill":
		if out, err := redisCommand(r.addr, "SAVE"); err != nil {
			t.Fatalf("redis SAVE: %v %q", err, out)
		}
		_ = r.proc.Kill()
		return func() { r.start(t) }
	case "stop":
		if err := r.proc.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		return func() {
			if err := r.proc.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatalf("unknown fault %q", kind)
	return nil
}

// redisCommand sends one inline command and returns the first reply line.
func redisCommand(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	line := string(buf[:n])
	if err == nil && !strings.HasPrefix(line, "+") {
		err = fmt.Errorf("reply %q", line)
	}
	return line, err
}

// answer is one request's outcome in a fault run.
type answer struct {
	at    time.Duration // since the run's start
	class string        // "200", "401 unknown_key", "503 key_store_unavailable", ...
}

// classify names an answer by its status and, for denials, the JSON
// reason; an empty body is "<status> empty".
func classify(status int, body []byte) string {
	if status == 200 || status == 429 {
		return strconv.Itoa(status)
	}
	if len(body) == 0 {
		return strconv.Itoa(status) + " empty"
	}
	var b struct{ Reason string }
	if json.Unmarshal(body, &b) != nil || b.Reason == "" {
		return strconv.Itoa(status) + " other"
	}
	return strconv.Itoa(status) + " " + b.Reason
}

// sender sends the i-th request of a run and returns its status and body.
type sender func(ctx context.Context, i int) (int, []byte, error)

// getWith returns a sender of GET url with headers(i), on keep-alive
// connections.
func getWith(t *testing.T, url string, headers func(i int) map[string]string) sender {
	client := harness.NewHTTPClient(true)
	t.Cleanup(client.Close)
	return func(ctx context.Context, i int) (int, []byte, error) {
		resp, err := client.Get(ctx, url, "", headers(i))
		if err != nil {
			return 0, nil, err
		}
		return resp.Status, resp.Body, nil
	}
}

// faultRun sends faultRate requests per second with send for the whole
// timeline (each request from its own goroutine, so a slow answer does
// not slow the rate), injects the fault after faultWarm and restores
// Redis after faultOutage.
type faultRun struct {
	answers         []answer
	restoredAt      time.Duration // when Redis answered PING again
	logsAtFault     int           // length of the control plane's log then
	logsAtRestore   int
	faultAt, endsAt time.Duration
}

func runFault(t *testing.T, s *stack, r *faultyRedis, kind string, send sender) faultRun {
	t.Helper()
	var (
		mu  sync.Mutex
		run faultRun
		wg  sync.WaitGroup
	)
	start := time.Now()
	total := int((faultWarm + faultOutage + faultRecovery) / (time.Second / faultRate))
	tick := time.NewTicker(time.Second / faultRate)
	defer tick.Stop()
	var restore func()
	for i := 0; i < total; i++ {
		<-tick.C
		now := time.Since(start)
		switch {
		case restore == nil && now >= faultWarm:
			run.faultAt, run.logsAtFault = now, len(s.cp.Logs())
			restore = r.fault(t, kind)
		case run.endsAt == 0 && now >= faultWarm+faultOutage:
			run.endsAt, run.logsAtRestore = now, len(s.cp.Logs())
			go func() {
				restore()
				ctx := testCtx(t, 10*time.Second)
				_ = harness.WaitFor(ctx, func() (bool, error) { return harness.RedisPing(ctx, r.addr) == nil, nil })
				mu.Lock()
				run.restoredAt = time.Since(start)
				mu.Unlock()
			}()
		}
		wg.Add(1)
		go func(i int, sent time.Duration) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a := answer{at: sent, class: "error"}
			if status, body, err := send(ctx, i); err == nil {
				a.class = classify(status, body)
			}
			mu.Lock()
			run.answers = append(run.answers, a)
			mu.Unlock()
		}(i, now)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(run.answers, func(a, b answer) int { return int(a.at - b.at) })
	if run.restoredAt == 0 {
		t.Fatal("Redis did not come back")
	}
	return run
}

// table renders answers per faultBucket, one column per class.
func (run faultRun) table() string {
	classes := map[string]bool{}
	for _, a := range run.answers {
		classes[a.class] = true
	}
	cols := slices.Sorted(func(yield func(string) bool) {
		for c := range classes {
			if !yield(c) {
				return
			}
		}
	})
	var b strings.Builder
	fmt.Fprintf(&b, "fault at %v, restore at %v, Redis answering at %v\n%8s", run.faultAt.Round(time.Millisecond),
		run.endsAt.Round(time.Millisecond), run.restoredAt.Round(time.Millisecond), "t(ms)")
	for _, c := range cols {
		fmt.Fprintf(&b, " %26s", c)
	}
	b.WriteString("\n")
	for i := 0; i < len(run.answers); {
		bucket := run.answers[i].at / faultBucket
		counts := map[string]int{}
		for ; i < len(run.answers) && run.answers[i].at/faultBucket == bucket; i++ {
			counts[run.answers[i].class]++
		}
		fmt.Fprintf(&b, "%8d", int64(bucket*faultBucket/time.Millisecond))
		for _, c := range cols {
			fmt.Fprintf(&b, " %26d", counts[c])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// check fails the test for any answer outside allowed, and for any answer
// other than ok sent more than faultRecoverWithin after Redis came back.
func (run faultRun) check(t *testing.T, allowed []string, ok []string) {
	t.Helper()
	bad := map[string]int{}
	late := map[string]int{}
	for _, a := range run.answers {
		if !slices.Contains(allowed, a.class) {
			bad[a.class]++
		}
		if a.at > run.restoredAt+faultRecoverWithin && !slices.Contains(ok, a.class) {
			late[a.class]++
		}
	}
	if len(bad) > 0 {
		t.Errorf("answers outside %q: %v", allowed, bad)
	}
	if len(late) > 0 {
		t.Errorf("%v after Redis had been back for %v: %v", ok, faultRecoverWithin, late)
	}
}

// outageLogLines returns the WARN and ERROR lines the control plane wrote
// between the fault and the restore, and go-redis's own ("redis: ...").
func (run faultRun) outageLogLines(s *stack) []string {
	logs := s.cp.Logs()
	var out []string
	for _, l := range strings.Split(logs[run.logsAtFault:min(run.logsAtRestore, len(logs))], "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.HasPrefix(l, "redis: ") {
			out = append(out, l)
		}
	}
	return out
}

// TestRedisOutageKeyStore kills, then separately SIGSTOPs, the Redis that
// holds the API keys under 100 requests/s through Envoy, half with a
// valid key and half with unknown keys (always a Redis lookup). Every
// answer must be the key store's own: 200, 401 unknown_key or the
// documented 503 key_store_unavailable, never Envoy's empty 403 of an
// ext_authz timeout; requests succeed again within 2 s of Redis's return;
// and the outage costs a few log lines, not one per request.
func TestRedisOutageKeyStore(t *testing.T) {
	for _, kind := range []string{"kill", "stop"} {
		t.Run(kind, func(t *testing.T) {
			up := harness.StartUpstream(t, "echo")
			r := startFaultyRedis(t)
			port := harness.FreePort(t)
			s := startStackWith(t, fmt.Sprintf(keyFaultPolicy, port, up.Addr()), stackOptions{
				args: []string{"--redis", "redis://" + r.addr + "/0", "--key-pepper", "e2e-pepper-0123456789"},
			})
			s.envoy("public", "fault-0", "delta")
			var created struct{ Key string }
			if err := json.Unmarshal([]byte(s.cli(0, "keys", "create", "--consumer", "c-"+kind, "-o", "json")), &created); err != nil {
				t.Fatal(err)
			}
			unknown := make([]string, faultRate*10)
			for i := range unknown {
				unknown[i] = otherKey(t)
			}
			run := runFault(t, s, r, kind, getWith(t, fmt.Sprintf("http://127.0.0.1:%d/api/x", port), func(i int) map[string]string {
				if i%2 == 0 {
					return map[string]string{"x-api-key": created.Key}
				}
				return map[string]string{"x-api-key": unknown[i/2%len(unknown)]}
			}))
			t.Logf("answers per %v:\n%s", faultBucket, run.table())
			run.check(t, []string{"200", "401 unknown_key", "503 key_store_unavailable"}, []string{"200", "401 unknown_key"})
			lines := run.outageLogLines(s)
			t.Logf("%d WARN/ERROR lines during the %v outage:\n%s", len(lines), faultOutage, strings.Join(lines, "\n"))
			if len(lines) > faultMaxLogLines {
				t.Errorf("%d WARN/ERROR lines during the outage, want at most %d", len(lines), faultMaxLogLines)
			}
		})
	}
}

// fromManyIPs returns a sender of GET url from 250 loopback source
// addresses in turn (127.0.1.1 to 127.0.1.250), so that no client address
// reaches the anonymous limit (5/minute) in a run: every decision is
// taken in Redis, none answered by the over-limit cache.
func fromManyIPs(t *testing.T, url string) sender {
	var clients []*http.Client
	for i := 1; i <= 250; i++ {
		ip := net.IPv4(127, 0, 1, byte(i))
		tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}).DialContext}
		t.Cleanup(tr.CloseIdleConnections)
		clients = append(clients, &http.Client{Transport: tr})
	}
	return func(ctx context.Context, i int) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return 0, nil, err
		}
		resp, err := clients[i%len(clients)].Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, body, err
	}
}

// TestRedisOutageRateLimit does the same on a public, rate-limited route
// from 250 client addresses (anonymous limit 5/minute each, never reached):
// during the outage the rate-limit service answers per failure mode (open:
// admitted; closed: 503 rate_limit_unavailable, the service's or Envoy's
// own status_on_error with the same JSON body) within Envoy's 100 ms
// rate-limit timeout, so Envoy never times a call out.
func TestRedisOutageRateLimit(t *testing.T) {
	for _, tt := range []struct {
		mode, kind string
		allowed    []string
	}{
		{"open", "kill", []string{"200", "429"}},
		{"open", "stop", []string{"200", "429"}},
		{"closed", "stop", []string{"200", "429", "503 rate_limit_unavailable"}},
	} {
		t.Run(tt.mode+"/"+tt.kind, func(t *testing.T) {
			up := harness.StartUpstream(t, "echo")
			r := startFaultyRedis(t)
			port := harness.FreePort(t)
			s := startStackWith(t, fmt.Sprintf(rateLimitPolicy, tt.mode, port, up.Addr()), stackOptions{
				args: []string{"--redis", "redis://" + r.addr + "/0", "--key-pepper", "e2e-pepper-0123456789"},
			})
			e := s.envoy("public", "rlfault-0", "delta")
			run := runFault(t, s, r, tt.kind, fromManyIPs(t, fmt.Sprintf("http://127.0.0.1:%d/open/x", port)))
			t.Logf("answers per %v:\n%s", faultBucket, run.table())
			run.check(t, tt.allowed, []string{"200", "429"})
			ctx := testCtx(t, 10*time.Second)
			if n, _, err := e.Stat(ctx, "cluster.tollgate_ratelimit.upstream_rq_timeout"); err != nil || n != 0 {
				t.Errorf("Envoy timed out %d rate-limit calls (%v)", n, err)
			}
			lines := run.outageLogLines(s)
			t.Logf("%d WARN/ERROR lines during the %v outage:\n%s", len(lines), faultOutage, strings.Join(lines, "\n"))
			if len(lines) > faultMaxLogLines {
				t.Errorf("%d WARN/ERROR lines during the outage, want at most %d", len(lines), faultMaxLogLines)
			}
		})
	}
}
