package e2e

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// resetPolicy limits anonymous clients of a public route to 3/minute in
// quota mode, failure mode open; timeout varies another route's timeout (a
// route configuration push that changes nothing of the limited route).
const resetPolicy = `version: 1
rateLimits:
  mode: quota
  anonymous: [{requests: 3, per: minute}]
  failureMode: open
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: open, match: {pathPrefix: /open}, backend: echo, auth: none}
  - {name: other, match: {pathPrefix: /other}, backend: echo, auth: none, rateLimit: none, timeout: %s}
backends:
  - {name: echo, endpoints: [%q]}
`

// TestQuotaBackstopResetByPush: with Redis down (failure mode open: RLQS
// admits everything), every policy push (here another route's timeout)
// gives the backstop a fresh burst (Envoy 1.40 rebuilds a route's
// local_ratelimit buckets, full, with the route configuration), so 3 are
// admitted per push; once Redis is back the account is charged at least
// what was admitted (the server allows a report a fresh burst per push
// since the previous one: ratelimit/quota chargeAfterPushes). Before,
// 9 admitted were charged 4.
func TestQuotaBackstopResetByPush(t *testing.T) {
	r := startRedisStack(t, "rlq-reset", func(port int, up string) string { return fmt.Sprintf(resetPolicy, port, "10s", up) })
	rd, port := r.redis, r.port
	rd.kill(t)
	c := harness.NewHTTPClient(true)
	defer c.Close()
	url := fmt.Sprintf("http://127.0.0.1:%d/open/x", port)
	start := time.Now()
	admitted := []int{countOK(t, c, url, 5)}
	for i, timeout := range []string{"11s", "12s"} {
		r.cli(0, "push", writeFile(t, fmt.Sprintf("p%d.yaml", i), fmt.Sprintf(resetPolicy, port, timeout, r.up)))
		r.waitSynced("rlq-reset")
		admitted = append(admitted, countOK(t, c, url, 5))
	}
	total := 0
	for _, a := range admitted {
		total += a
	}
	t.Logf("3/minute, Redis down: admitted per burst of 5 (pushes between): %v (%s)", admitted, time.Since(start).Round(10*time.Millisecond))
	time.Sleep(time.Until(start.Add(5500 * time.Millisecond)))
	rd.restart(t)
	charged, used := waitCharged(t, r.stack, total, 8*time.Second)
	t.Logf("admitted %d, charged %d (settlements %v)", total, charged, used)
	if total > 3*len(admitted) {
		t.Errorf("admitted %d with a limit of 3/minute and %d pushes, want at most a burst per push", total, len(admitted)-1)
	}
	if charged < total || charged > total+1 {
		t.Errorf("charged %d for %d admitted, want %d..%d (RLQS let 15 through)", charged, total, total, total+1)
	}
}

// twoListenersPolicy is resetPolicy's route on a gateway with two
// listeners (say HTTP and HTTPS): Envoy gets one route configuration per
// listener.
const twoListenersPolicy = `version: 1
rateLimits:
  mode: quota
  anonymous: [{requests: 3, per: minute}]
  failureMode: open
gateways:
  - name: public
    listeners: [{name: a, port: %d, address: 127.0.0.1}, {name: b, port: %d, address: 127.0.0.1}]
routes:
  - {name: open, match: {pathPrefix: /open}, backend: echo, auth: none}
backends:
  - {name: echo, endpoints: [%q]}
`

// TestQuotaBackstopTwoListeners: with Redis down (failure mode open), a
// client of a gateway with two listeners on one Envoy gets the backstop's
// burst on each listener (each route configuration has its own
// local_ratelimit buckets) but one RLQS bucket: once Redis is back the
// account is charged at least what was admitted.
func TestQuotaBackstopTwoListeners(t *testing.T) {
	pb := harness.FreePort(t)
	r := startRedisStack(t, "rlq-two", func(pa int, up string) string { return fmt.Sprintf(twoListenersPolicy, pa, pb, up) })
	rd, pa := r.redis, r.port
	rd.kill(t)
	c := harness.NewHTTPClient(true)
	defer c.Close()
	start := time.Now()
	a, b := countOK(t, c, fmt.Sprintf("http://127.0.0.1:%d/open/x", pa), 5), countOK(t, c, fmt.Sprintf("http://127.0.0.1:%d/open/x", pb), 5)
	t.Logf("3/minute, Redis down: admitted %d of 5 on listener a, %d of 5 on listener b", a, b)
	time.Sleep(time.Until(start.Add(5500 * time.Millisecond)))
	rd.restart(t)
	charged, used := waitCharged(t, r.stack, a+b, 8*time.Second)
	t.Logf("admitted %d, charged %d (settlements %v)", a+b, charged, used)
	if charged < a+b || charged > a+b+1 {
		t.Errorf("charged %d for %d admitted, want %d..%d (RLQS let 10 through)", charged, a+b, a+b, a+b+1)
	}
}

// byIPPolicy has an authenticated route whose extra limit is keyed by
// client IP, in quota mode.
const byIPPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  mode: quota
  tiers:
    busy: [{requests: 600, per: minute}]
  defaultTier: busy
  failureMode: open
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo, rateLimit: {extra: [{requests: 5, per: minute}], by: [clientIP]}}
backends:
  - {name: echo, endpoints: [%q]}
`

// TestQuotaExtraLimitByClientIP: an extra limit keyed by client IP on an
// authenticated route counts per address in quota mode, as in exact mode:
// a consumer that spent its 5 from 127.0.0.1 leaves another consumer's 5
// from 127.0.0.2 (before, the quota server charged every consumer and
// address of the route to one counter: the second got 1, under ALLOW_ALL
// before its first assignment).
func TestQuotaExtraLimitByClientIP(t *testing.T) {
	r := startRedisStack(t, "rlq-ip", func(port int, up string) string { return fmt.Sprintf(byIPPolicy, port, up) })
	port := r.port
	from := func(ip, key string, n int) int {
		t.Helper()
		tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		ok := 0
		for i := 0; i < n; i++ {
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/api/x", port), nil)
			req.Header.Set("x-api-key", key)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ok++
			}
			time.Sleep(100 * time.Millisecond) // each after the previous one's report is answered
		}
		return ok
	}
	a, b := r.key(t, "ip-a", "busy"), r.key(t, "ip-b", "busy")
	first := from("127.0.0.1", a, 7)
	second := from("127.0.0.2", b, 7)
	t.Logf("5/minute per client address: consumer a from 127.0.0.1 admitted %d of 7, consumer b from 127.0.0.2 %d of 7", first, second)
	if first != 5 || second != 5 {
		t.Fatalf("admitted %d and %d, want 5 and 5", first, second)
	}
}
