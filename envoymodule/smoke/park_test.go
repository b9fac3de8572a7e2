package smoke

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/jwttest"
)

// slowJWKS serves a JWK set that a test changes, each answer after a
// delay the test sets, and remembers when it last answered.
type slowJWKS struct {
	mu      sync.Mutex
	body    string
	delay   time.Duration
	last    time.Time
	fetches atomic.Int64
}

func (j *slowJWKS) set(body string, delay time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.body, j.delay = body, delay
}

func (j *slowJWKS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	j.mu.Lock()
	body, delay := j.body, j.delay
	j.mu.Unlock()
	time.Sleep(delay)
	j.mu.Lock()
	j.last = time.Now()
	j.mu.Unlock()
	j.fetches.Add(1)
	w.Header().Set("content-type", "application/json")
	_, _ = w.Write([]byte(body))
}

// quiet waits until an unknown kid may start a fetch again: the
// Verifier's MinRefreshGap (5 s) after the last answer.
func (j *slowJWKS) quiet() {
	j.mu.Lock()
	last := j.last
	j.mu.Unlock()
	time.Sleep(time.Until(last.Add(5300 * time.Millisecond)))
}

// jwksOf merges the issuers' JWK sets into one.
func jwksOf(t *testing.T, issuers ...*jwttest.Issuer) string {
	t.Helper()
	var all []any
	for _, iss := range issuers {
		var doc struct {
			Keys []any `json:"keys"`
		}
		if err := json.Unmarshal([]byte(iss.JWKS()), &doc); err != nil {
			t.Fatal(err)
		}
		all = append(all, doc.Keys...)
	}
	b, _ := json.Marshal(map[string]any{"keys": all})
	return string(b)
}

// rotated is an issuer of the same name with a new key and kid, as an IdP
// rotating its key.
func rotated(t *testing.T, base *jwttest.Issuer, kid string) *jwttest.Issuer {
	t.Helper()
	iss, err := jwttest.New(base.Issuer, base.Audience)
	if err != nil {
		t.Fatal(err)
	}
	iss.KID = kid
	return iss
}

// parkSession is TestModuleParksForJWKS's Envoy and IdP.
type parkSession struct {
	session
	jwks   *slowJWKS
	listen int
	admin  int
}

// TestModuleParksForJWKS: a token whose kid the module does not know yet
// (the IdP rotated its key) is held while the JWKS is fetched and then
// decided: admitted once the fetch brings its key, 401 unknown_kid when
// the fetched set still lacks it (no second wait); a client that goes
// away while its request is parked crashes nothing; beyond MaxParked such
// requests are refused 503 at once, as before parking.
func TestModuleParksForJWKS(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" {
		t.Skip("ENVOY_BIN not set")
	}
	fx := newFixture(t)
	j := &slowJWKS{}
	j.set(jwksOf(t, fx.iss), 0)
	idp := httptest.NewServer(j)
	t.Cleanup(idp.Close)
	fc := filterConfig(fx.iss)
	fc.JWT[0].JWKS, fc.JWT[0].JWKSURI = "", idp.URL+"/jwks"
	fc.MaxParked = 40
	p := startEnvoy(t, envoyBin, fx.soDir, envoyConfig(fc, fx.listen, fx.admin, fx.upstream), fx.listen, fx.admin)
	s := parkSession{session: session{t: t, p: p, iss: fx.iss}, jwks: j, listen: fx.listen, admin: fx.admin}
	t.Run("rotated key admitted after the fetch", s.rotation)
	t.Run("kid unknown after the fetch", s.unknownAfterFetch)
	t.Run("client gone while parked", s.reset)
	t.Run("clients gone as the fetch ends", s.resetRace)
	t.Run("flood beyond the bound", s.flood)
	if t.Failed() {
		t.Logf("envoy log:\n%s", p.log())
	}
}

func (s parkSession) bearer(t *testing.T, iss *jwttest.Issuer) map[string]string {
	t.Helper()
	tok := session{t: t, p: s.p, iss: iss}.token(t, nil)
	return map[string]string{"authorization": "Bearer " + tok}
}

func (s parkSession) rotation(t *testing.T) {
	k2 := rotated(t, s.iss, "k2")
	s.jwks.quiet()
	s.jwks.set(jwksOf(t, s.iss, k2), time.Second)
	start := time.Now()
	a := post(t, s.listen, "/jwt", s.bearer(t, k2), "a body held with the request")
	took := time.Since(start)
	if a.status != http.StatusOK || a.upstream["x-user-id"] != "corp:alice" || a.upstream["x-body"] != "a body held with the request" {
		t.Fatalf("new kid during rotation: %d %s, want 200 after the fetch with the body upstream", a.status, a.body)
	}
	if took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("parked request took %v, want about the fetch's 1 s", took)
	}
	t.Logf("parked request answered in %v (JWKS fetch 1 s)", took)
	start = time.Now()
	if a := get(t, s.listen, "/jwt", s.bearer(t, k2)); a.status != http.StatusOK || time.Since(start) > 500*time.Millisecond {
		t.Errorf("the next token of the new key: %d in %v, want 200 at once", a.status, time.Since(start))
	}
	st := moduleStats(t, s.admin)
	if st["jwks_parked"] != 1 || st["rq_go_allowed"] < 1 || st["rq_go_allowed"]+st["rq_table_allowed"] != 2 {
		t.Errorf("stats %v: want jwks_parked 1, two admitted", st)
	}
}

func (s parkSession) unknownAfterFetch(t *testing.T) {
	k3 := rotated(t, s.iss, "k3")
	s.jwks.quiet()
	s.jwks.set(jwksOf(t, s.iss), 300*time.Millisecond)
	start := time.Now()
	a := get(t, s.listen, "/jwt", s.bearer(t, k3))
	if a.status != http.StatusUnauthorized || !jsonReason(a.body, "unknown_kid") {
		t.Fatalf("kid unknown after the fetch: %d %s, want 401 unknown_kid", a.status, a.body)
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("answered in %v: want it to wait for the fetch (300 ms)", took)
	}
	start = time.Now() // within the rate limit: no fetch, no wait
	if a := get(t, s.listen, "/jwt", s.bearer(t, k3)); a.status != http.StatusUnauthorized ||
		time.Since(start) > 200*time.Millisecond {
		t.Errorf("again within the gap: %d in %v, want 401 at once", a.status, time.Since(start))
	}
}

// post sends a POST with body; the echo upstream puts the body it got in
// x-body of its answer.
func post(t *testing.T, listen int, path string, headers map[string]string, body string) answer {
	t.Helper()
	return do(t, listen, http.MethodPost, path, headers, strings.NewReader(body))
}

func jsonReason(body, reason string) bool {
	var doc struct {
		Reason string `json:"reason"`
	}
	return json.Unmarshal([]byte(body), &doc) == nil && doc.Reason == reason
}

// reset: clients give up on parked requests (before the fetch ends, and
// one as it ends); Envoy then serves on.
func (s parkSession) reset(t *testing.T) {
	k4 := rotated(t, s.iss, "k4")
	s.jwks.quiet()
	s.jwks.set(jwksOf(t, s.iss, k4), time.Second)
	var wg sync.WaitGroup
	for _, after := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, time.Second} {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), after)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/jwt", s.listen), nil)
			req.Header.Set("authorization", s.bearer(t, k4)["authorization"])
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close() // the one at 1 s may win the race: fine
			} else if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("client after %v: %v", after, err)
			}
		})
	}
	wg.Wait()
	time.Sleep(1500 * time.Millisecond) // the fetch has ended, the waiters woke nothing
	if n := strings.Count(s.p.log(), "parked stream gone"); n < 2 {
		t.Errorf("%d parked streams seen gone, want at least 2 (the clients at 200 and 400 ms)", n)
	}
	for _, iss := range []*jwttest.Issuer{s.iss, k4} {
		if a := get(t, s.listen, "/jwt", s.bearer(t, iss)); a.status != http.StatusOK {
			t.Errorf("after the resets, kid %s: %d %s", iss.KID, a.status, a.body)
		}
	}
}

// resetRace: 40 parked clients give up between 100 ms before and 95 ms
// after the 1 s fetch ends, racing the waiters' commits and Envoy's
// scheduled events against the streams' destruction; Envoy serves on.
func (s parkSession) resetRace(t *testing.T) {
	k6 := rotated(t, s.iss, "k6")
	s.jwks.quiet()
	s.jwks.set(jwksOf(t, s.iss, k6), time.Second)
	h := s.bearer(t, k6)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 40}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	var gone, answered atomic.Int64
	for i := range 40 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 900*time.Millisecond+time.Duration(i)*5*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/jwt", s.listen), nil)
			req.Header.Set("authorization", h["authorization"])
			resp, err := client.Do(req)
			if err != nil {
				gone.Add(1)
				return
			}
			resp.Body.Close()
			answered.Add(1)
		})
	}
	wg.Wait()
	t.Logf("%d clients gone before their answer, %d answered", gone.Load(), answered.Load())
	time.Sleep(200 * time.Millisecond)
	for _, iss := range []*jwttest.Issuer{s.iss, k6} {
		if a := get(t, s.listen, "/jwt", s.bearer(t, iss)); a.status != http.StatusOK {
			t.Errorf("after the racing resets, kid %s: %d %s", iss.KID, a.status, a.body)
		}
	}
	if st := moduleStats(t, s.admin); st["jwks_parked"] < 40 {
		t.Errorf("stats %v: want the 40 requests parked", st)
	}
}

// flood: 50 tokens of a new kid at once with MaxParked 40: 40 wait for the
// fetch and are admitted, 10 are refused 503 jwks_unavailable at once.
func (s parkSession) flood(t *testing.T) {
	k5 := rotated(t, s.iss, "k5")
	s.jwks.quiet()
	s.jwks.set(jwksOf(t, s.iss, k5), 1500*time.Millisecond)
	before := moduleStats(t, s.admin)
	type result struct {
		status int
		took   time.Duration
	}
	results := make(chan result, 50)
	var wg sync.WaitGroup
	for range 50 {
		h := s.bearer(t, k5)
		wg.Go(func() {
			start := time.Now()
			a := get(t, s.listen, "/jwt", h)
			results <- result{a.status, time.Since(start)}
		})
	}
	wg.Wait()
	close(results)
	count := map[int]int{}
	var slowestRefusal, fastestAdmit time.Duration = 0, time.Hour
	for r := range results {
		count[r.status]++
		if r.status == http.StatusServiceUnavailable {
			slowestRefusal = max(slowestRefusal, r.took)
		} else if r.status == http.StatusOK {
			fastestAdmit = min(fastestAdmit, r.took)
		}
		if r.status == http.StatusServiceUnavailable && r.took > 700*time.Millisecond {
			t.Errorf("a refusal beyond the bound took %v: want it at once", r.took)
		}
		if r.status == http.StatusOK && r.took < 1200*time.Millisecond {
			t.Errorf("an admitted request took %v: want it parked for the fetch", r.took)
		}
	}
	t.Logf("answers %v; slowest 503 %v, fastest admission %v (fetch 1.5 s)", count, slowestRefusal, fastestAdmit)
	if count[http.StatusOK] != 40 || count[http.StatusServiceUnavailable] != 10 {
		t.Errorf("answers %v: want 40 admitted after the fetch, 10 refused 503", count)
	}
	after := moduleStats(t, s.admin)
	if d := after["jwks_park_full"] - before["jwks_park_full"]; d != 10 {
		t.Errorf("jwks_park_full grew by %d, want 10", d)
	}
	if d := after["jwks_parked"] - before["jwks_parked"]; d != 40 {
		t.Errorf("jwks_parked grew by %d, want 40", d)
	}
}
