package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// windowsPolicy limits anonymous clients of a public route to 2/second,
// 4/minute and 5/hour in quota mode, failure mode open.
const windowsPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  mode: quota
  tiers:
    multi: [{requests: 2, per: second}, {requests: 4, per: minute}, {requests: 5, per: hour}]
  defaultTier: multi
  anonymous: [{requests: 2, per: second}, {requests: 4, per: minute}, {requests: 5, per: hour}]
  failureMode: open
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: open, match: {pathPrefix: /open}, backend: echo, auth: none}
backends:
  - {name: echo, endpoints: [%q]}
`

// TestQuotaBackstopWindows: with Redis down (failure mode open: RLQS
// admits everything) the per-Envoy backstop alone holds 2/second,
// 4/minute and 5/hour, and a burst the second window refuses does not
// spend the longer windows' tokens (Envoy 1.40's local_ratelimit spends a
// token of every matched window it checked before one refuses; the
// backstop has one filter per window, shortest first). Every response
// carries exactly one set of X-RateLimit-* (the second window's bucket),
// a backstop 429 the refusing window's Retry-After. Then Redis comes back:
// the account is charged what the backstop admitted (bounded: see
// ratelimit/quota's backstopBound), not the 14 requests RLQS let through
// (which would have spent the hour in Redis for every Envoy).
func TestQuotaBackstopWindows(t *testing.T) {
	r := startRedisStack(t, "rlq-windows", func(port int, up string) string { return fmt.Sprintf(windowsPolicy, port, up) })
	rd, port := r.redis, r.port
	rd.kill(t)
	c := harness.NewHTTPClient(true)
	defer c.Close()
	get := func() *harness.HTTPResponse {
		t.Helper()
		resp, err := c.Get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/open/x", port), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.Header.Values("X-RateLimit-Limit")); n != 1 || len(resp.Header.Values("X-RateLimit-Remaining")) != 1 {
			t.Errorf("%d with %d X-RateLimit-Limit headers (%v), want exactly one set", resp.Status, n, resp.Header)
		}
		return resp
	}
	statuses := func(n int) (out []int) {
		for i := 0; i < n; i++ {
			resp := get()
			if resp.Status == 200 && resp.Header.Get("X-RateLimit-Limit") != "2" {
				t.Errorf("admitted with X-RateLimit-Limit %q, want 2 (the second window's bucket)", resp.Header.Get("X-RateLimit-Limit"))
			}
			out = append(out, resp.Status)
		}
		return out
	}
	start := time.Now()
	burst := statuses(10)
	time.Sleep(time.Until(start.Add(1100 * time.Millisecond)))
	after := statuses(3)
	t.Logf("Redis down, 2/s + 4/min + 5/h: a burst of 10: %v; 1.1 s later 3 more: %v", burst, after)
	if count(burst, 200) != 2 || count(after, 200) != 2 {
		t.Fatalf("admitted %d of the burst and %d of 3 after 1.1 s, want 2 and 2 (the second window refilled, the minute and hour not drained)",
			count(burst, 200), count(after, 200))
	}
	// The minute has no token left; the second has one again after 0.6 s.
	time.Sleep(600 * time.Millisecond)
	resp := get()
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	t.Logf("refused by the minute: %d Retry-After %d X-RateLimit %s/%s/%s", resp.Status, ra, resp.Header.Get("X-RateLimit-Limit"),
		resp.Header.Get("X-RateLimit-Remaining"), resp.Header.Get("X-RateLimit-Reset"))
	if !backstopRefusal(resp) || ra < 10 || ra > 15 {
		t.Errorf("refused by the minute window: %d %q Retry-After %d, want the backstop's 429 with Retry-After 10..15 s", resp.Status, resp.Body, ra)
	}
	t.Run("charged what the backstop admitted", func(t *testing.T) {
		// Envoy reports the burst ≤ 5 s after its first request; the
		// server keeps it pending while Redis is down.
		time.Sleep(time.Until(start.Add(5500 * time.Millisecond)))
		rd.restart(t)
		back := time.Now()
		// The usage is charged by the recovery push, or by Envoy's next
		// report when its tick comes after Redis is back: wait for what
		// the backstop admitted to be charged (or for the time out).
		charged, used := waitCharged(t, r.stack, 4, 10*time.Second)
		t.Logf("RLQS allowed 14, the backstop admitted 4; charged %d (settlements %v), %s after Redis came back",
			charged, used, time.Since(back).Round(10*time.Millisecond))
		if charged < 4 || charged > 5 {
			t.Errorf("charged %d, want 4..5 (the backstop admitted 4; the bound adds at most the minute's refill)", charged)
		}
	})
}

// waitCharged waits up to within for the RLQS server to have charged at
// least want requests in all (the recovery push or Envoy's next report
// once Redis is back) and returns the total and each settlement, also when
// the time ran out.
func waitCharged(t *testing.T, s *stack, want int, within time.Duration) (charged int, used []int) {
	t.Helper()
	_ = harness.WaitFor(testCtx(t, within), func() (bool, error) {
		used, charged = rlqsCharges(s.cp.Logs()), 0
		for _, u := range used {
			charged += u
		}
		return charged >= want, nil
	})
	return charged, used
}

// countOK sends n GETs to url one after another and counts the 200s.
func countOK(t *testing.T, c *harness.HTTPClient, url string, n int) int {
	t.Helper()
	ok := 0
	for i := 0; i < n; i++ {
		resp, err := c.Get(context.Background(), url, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status == 200 {
			ok++
		}
	}
	return ok
}

// rlqsCharges returns the used counts of the RLQS server's assignment
// logs, in order.
func rlqsCharges(logs string) []int {
	re := regexp.MustCompile(`used=(\d+)`)
	var out []int
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, "rlqs: assignment") {
			continue
		}
		if m := re.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	return out
}

func count(xs []int, v int) int {
	n := 0
	for _, x := range xs {
		if x == v {
			n++
		}
	}
	return n
}

// backstopRefusal reports whether resp is the backstop's 429: its JSON body
// {"error":"rate_limited","retryAfter":N} with N its Retry-After (no limit
// named, unlike RLQS's and the rate-limit service's refusals).
func backstopRefusal(resp *harness.HTTPResponse) bool {
	ra := resp.Header.Get("Retry-After")
	return resp.Status == 429 && ra != "" && string(resp.Body) == `{"error":"rate_limited","retryAfter":`+ra+`}` &&
		resp.Header.Get("Content-Type") == "application/json"
}
