package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// listsPolicy limits anonymous clients of a public route to 20/minute and
// the route (per client address) to 2/second: two limit lists whose
// shortest windows differ, in quota mode, failure mode open.
const listsPolicy = `version: 1
rateLimits:
  mode: quota
  anonymous: [{requests: 20, per: minute}]
  failureMode: open
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: open, match: {pathPrefix: /open}, backend: echo, auth: none, rateLimit: {extra: [{requests: 2, per: second}]}}
backends:
  - {name: echo, endpoints: [%q]}
`

// TestQuotaBackstopListsDoNotDrainEachOther: with Redis down (failure
// mode open: RLQS admits everything) the backstop alone holds the
// anonymous 20/minute and the route's 2/second, and requests the second
// refuses spend no token of the minute: three bursts of 10, 1.1 s apart,
// admit 2 each, as exact mode does (before, both buckets were in one
// local_ratelimit filter, which spends the minute first, as it refills
// slower: the first two bursts spent all 20 minute tokens and the third
// admitted none). Every response carries exactly one set of
// X-RateLimit-* (the second's bucket, the first filter), a 429 the
// refusing bucket's Retry-After (1 s).
func TestQuotaBackstopListsDoNotDrainEachOther(t *testing.T) {
	r := startRedisStack(t, "rlq-lists", func(port int, up string) string { return fmt.Sprintf(listsPolicy, port, up) })
	r.redis.kill(t)
	c := harness.NewHTTPClient(true)
	defer c.Close()
	url := fmt.Sprintf("http://127.0.0.1:%d/open/x", r.port)
	burst := func() (admitted int) {
		t.Helper()
		for i := 0; i < 10; i++ {
			resp, err := c.Get(context.Background(), url, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(resp.Header.Values("X-RateLimit-Limit")); n != 1 || len(resp.Header.Values("X-RateLimit-Remaining")) != 1 {
				t.Errorf("%d with %d X-RateLimit-Limit headers (%v), want exactly one set", resp.Status, n, resp.Header)
			}
			switch resp.Status {
			case 200:
				admitted++
				if l := resp.Header.Get("X-RateLimit-Limit"); l != "2" {
					t.Errorf("admitted with X-RateLimit-Limit %q, want 2 (the second's bucket)", l)
				}
			case 429:
				if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1 || ra > 2 {
					t.Errorf("429 with Retry-After %q, want 1..2 (the second's bucket refused)", resp.Header.Get("Retry-After"))
				}
			default:
				t.Errorf("status %d, want 200 or 429", resp.Status)
			}
		}
		return admitted
	}
	start := time.Now()
	var admitted []int
	for i := 0; i < 3; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * 1100 * time.Millisecond)))
		admitted = append(admitted, burst())
	}
	t.Logf("Redis down, anonymous 20/minute + route 2/second: admitted per burst of 10, 1.1 s apart: %v (%s)",
		admitted, time.Since(start).Round(10*time.Millisecond))
	for i, a := range admitted {
		if a != 2 {
			t.Fatalf("burst %d admitted %d (all: %v), want 2 each: the minute has 20 and the second refills 2 between bursts", i, a, admitted)
		}
	}
}
