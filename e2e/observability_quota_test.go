package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/tollgate/tollgate/e2e/harness"
)

// observabilityQuotaPolicy limits route api to 10 requests a minute per
// consumer in quota mode (RLQS and the backstop in Envoy).
const observabilityQuotaPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  mode: quota # decided in Envoy: tollgate_rlqs_reported_requests_total, Envoy's backstop stats
  tiers: {tiny: [{requests: 10, per: minute}]}
  defaultTier: tiny
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo}
backends:
  - {name: echo, endpoints: [%q]}
`

// backstopRefused is the Envoy series of the backstop's refusals, with
// backstopLabel: the stat prefix of its local_ratelimit filters
// (tollgate_backstop, one counter per Envoy, all routes together).
const backstopRefused = "envoy_http_local_rate_limit_rate_limited"

var backstopLabel = map[string]string{"envoy_local_http_ratelimit_prefix": "tollgate_backstop"}

// TestObservabilityQuota: in quota mode (real Envoy, real Redis), every
// 429 a client sees is counted once, where the dashboard reads it: RLQS's
// refusals in tollgate_rlqs_reported_requests_total{route, tier,
// outcome="denied"} (with the next usage report, every 5 s), the
// backstop's in Envoy's backstopRefused; RLQS's allowed requests are the
// 200s and the backstop's refusals. Then every rate-limit panel of the
// dashboard reads series this run exported.
//
// Consumer a sends one request at a time until RLQS refuses one (its
// token bucket, assigned after its first report, spent); consumer b then
// sends a cold burst of 20, which RLQS allows until b's first assignment
// reaches Envoy and the backstop cuts at the limit (how many each refuses
// depends on timing: the counts need only agree).
func TestObservabilityQuota(t *testing.T) {
	r := startRedisStack(t, "obsq-0", func(port int, up string) string {
		return fmt.Sprintf(observabilityQuotaPolicy, port, up)
	})
	a := map[string]string{"x-api-key": r.key(t, "obsq-a", "tiny")}
	b := map[string]string{"x-api-key": r.key(t, "obsq-b", "tiny")}
	var got answerCounts
	for i := 0; got.rlqs == 0; i++ {
		if i == 30 {
			t.Fatalf("30 requests of a consumer limited to 10 a minute, none refused by RLQS: %d×200, %d refused by the backstop", got.ok, got.backstop)
		}
		got.add(t, r.port, a, 1, 1)
	}
	got.add(t, r.port, b, 20, 10)
	t.Logf("client saw: %d×200, %d×429 from RLQS, %d×429 from the backstop", got.ok, got.rlqs, got.backstop)
	api := map[string]string{"route": "api", "tier": "tiny"}
	start := time.Now()
	waitTollgate(t, r.stack, "tollgate_rlqs_reported_requests_total", api, float64(got.ok+got.rlqs+got.backstop))
	t.Logf("every request reported %v after the last one", time.Since(start).Round(time.Millisecond))
	fams := scrape(t, "http://"+r.adminAddr+"/metrics", testToken)
	envoy := scrape(t, r.proxy.AdminURL()+"/stats/prometheus", "")
	denied, _ := sumWhere(fams, "tollgate_rlqs_reported_requests_total", withLabel(api, "outcome", "denied"))
	allowed, _ := sumWhere(fams, "tollgate_rlqs_reported_requests_total", withLabel(api, "outcome", "allowed"))
	refused, series := sumWhere(envoy, backstopRefused, backstopLabel)
	if denied != float64(got.rlqs) || allowed != float64(got.ok+got.backstop) || series == 0 || refused != float64(got.backstop) {
		t.Errorf("reported denied %v, allowed %v, %s %v (%d series); want %d, %d, %d",
			denied, allowed, backstopRefused, refused, series, got.rlqs, got.ok+got.backstop, got.backstop)
	}
	checkDashboard(t, "quota", rateLimitPanel, envoy, fams)
}

// answerCounts counts a client's answers: 200s, RLQS's 429s (their body names
// the limit) and the backstop's (backstopRefusal: it names none).
type answerCounts struct {
	mu                 sync.Mutex
	ok, rlqs, backstop int
}

// add sends n GET /api/x with headers to port over workers connections
// and counts the answers; any other status fails the test.
func (c *answerCounts) add(t *testing.T, port int, headers map[string]string, n, workers int) {
	var wg sync.WaitGroup
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range workers {
		wg.Go(func() {
			hc := harness.NewHTTPClient(true)
			defer hc.Close()
			for range next {
				resp, err := hc.Get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/api/x", port), "", headers)
				c.mu.Lock()
				switch {
				case err != nil:
					t.Errorf("GET /api/x: %v", err)
				case resp.Status == 200:
					c.ok++
				case backstopRefusal(resp):
					c.backstop++
				case resp.Status == 429 && strings.Contains(string(resp.Body), `"limit":"tiny"`):
					c.rlqs++
				default:
					t.Errorf("GET /api/x: status %d %s", resp.Status, resp.Body)
				}
				c.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// waitTollgate waits until the sum of tollgate's series name with labels
// reaches want (Envoy reports a bucket's usage every 5 s).
func waitTollgate(t *testing.T, s *stack, name string, labels map[string]string, want float64) {
	t.Helper()
	var got float64
	var fams map[string]*dto.MetricFamily
	err := harness.WaitFor(testCtx(t, 10*time.Second), func() (bool, error) {
		fams = scrape(t, "http://"+s.adminAddr+"/metrics", testToken)
		got, _ = sumWhere(fams, name, labels)
		return got >= want, nil
	})
	if err != nil {
		t.Fatalf("%s%v = %v, want %v: %v", name, labels, got, want, err)
	}
}

// withLabel returns a copy of labels with k=v.
func withLabel(labels map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for lk, lv := range labels {
		out[lk] = lv
	}
	return out
}
