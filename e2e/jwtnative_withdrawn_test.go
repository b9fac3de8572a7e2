package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// jwksWatchEnv makes the control plane fetch the watched JWKS every
// second (internal/cli/jwkswatch.go; 30 s by default).
const jwksWatchEnv = "TOLLGATE_TEST_JWKS_WATCH_INTERVAL=1s"

// withdrawnKeyBound is the longest the test lets a token signed with a
// withdrawn key stay admitted: the watch interval (1 s) at most twice
// (a withdrawal within an interval of the last bump waits for its end),
// the push and Envoy's JWKS fetch, with room for a loaded machine.
const withdrawnKeyBound = 10 * time.Second

// TestJWTNativeWithdrawnKey (security review F4): jwt_authn keeps a
// verified token in its cache until its exp, across JWKS refreshes. The
// control plane watches the IdP's JWKS and, once k2 is withdrawn, serves
// jwt_authn a config of a new JWKS epoch over ECDS: the k2 token admitted
// (and cached) before is refused, on the connection that carried it,
// within withdrawnKeyBound, while a k1 token is admitted throughout on one
// kept-alive connection (no 5xx, no connection error) and no listener is
// replaced. Over delta and state-of-the-world ADS.
func TestJWTNativeWithdrawnKey(t *testing.T) {
	for _, protocol := range []string{"delta", "sotw"} {
		t.Run(protocol, func(t *testing.T) { testJWTNativeWithdrawnKey(t, protocol) })
	}
}

func testJWTNativeWithdrawnKey(t *testing.T, protocol string) {
	n := startNativeEnv(t)
	n.idp.addKey("k2")
	port := harness.FreePort(t)
	s := startStackWith(t, n.policy(t, jwtNativePolicy, port), stackOptions{
		args: []string{"--redis", "redis://" + n.redis.addr + "/0", "--key-pepper", keyPepper},
		env:  []string{jwksWatchEnv}})
	e := s.envoy("public", "jwt-native-withdrawn-"+protocol, protocol)
	a := n.authStack(s, port)
	a.client = harness.NewHTTPClient(true) // the k2 token's requests share a connection
	claims := n.idp.claims("alice", "user")
	k2 := bearer(n.idp.rs256("k2", claims))
	for i := range 3 { // the later ones from jwt_authn's cache
		if code, _, body := a.call(t, "/users/1", k2); code != 200 {
			t.Fatalf("request %d with k2: %d %s", i+1, code, body)
		}
	}
	churn := listenerChurnOf(t, e)
	reloads, _ := jwtAuthnReloads(t, e)
	// Another user than the k2 token's: each stays far under the pro
	// tier's 1000 requests a minute.
	k1 := startKeptAliveLoad(t, fmt.Sprintf("http://127.0.0.1:%d/users/1", port), bearer(n.idp.rs256("k1", n.idp.claims("bob", "user"))))

	n.idp.mu.Lock()
	delete(n.idp.keys, "k2")
	n.idp.mu.Unlock()
	start := time.Now()
	code, body := 200, ""
	for code == 200 && time.Since(start) < withdrawnKeyBound {
		time.Sleep(50 * time.Millisecond)
		code, _, body = a.call(t, "/users/1", k2)
	}
	refused := time.Since(start)
	if code == 200 {
		body = "(admitted: reached the upstream)"
	}
	if code != 401 {
		t.Fatalf("token signed with the withdrawn key k2: %d %s after %s, want 401 within %s", code, body, refused.Round(time.Millisecond), withdrawnKeyBound)
	}
	t.Logf("k2 token refused %s after k2 left the JWKS (%s)", refused.Round(time.Millisecond), strings.TrimSpace(body))
	time.Sleep(time.Second) // k1 requests on the new config
	k1.stopAndCheck(t)
	if after := listenerChurnOf(t, e); after != churn {
		t.Errorf("listener_modified, lds.update_success went from %v to %v: the epoch touched the listeners", churn, after)
	}
	// One withdrawal, one new config (the watch fetched the JWKS about
	// once a second meanwhile, without k2 each time).
	if after, ok := jwtAuthnReloads(t, e); !ok || after != reloads+1 {
		t.Errorf("jwt_authn configs loaded over ECDS: %d before the withdrawal, %d after (stat found: %v), want one more", reloads, after, ok)
	}
}

// jwtAuthnReloads is how often Envoy loaded a jwt_authn config over ECDS,
// and whether it serves jwt_authn over ECDS at all.
func jwtAuthnReloads(t *testing.T, e *harness.Envoy) (int64, bool) {
	t.Helper()
	st, err := e.Stats(testCtx(t, 5*time.Second), "extension_config_discovery")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	found := false
	for name, v := range st {
		if strings.Contains(name, ".tollgate.jwt_authn.") && strings.HasSuffix(name, ".config_reload") {
			n, found = n+v, true
		}
	}
	return n, found
}

// listenerChurnOf returns Envoy's listener_manager.listener_modified and
// listener_manager.lds.update_success.
func listenerChurnOf(t *testing.T, e *harness.Envoy) [2]int64 {
	t.Helper()
	var out [2]int64
	for i, name := range []string{"listener_manager.listener_modified", "listener_manager.lds.update_success"} {
		v, _, err := e.Stat(testCtx(t, 5*time.Second), name)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = v
	}
	return out
}

// keptAliveLoad sends one request after another over one kept-alive
// connection until stopped, counting the admitted ones, the others and the
// connections opened.
type keptAliveLoad struct {
	stop     context.CancelFunc
	wg       sync.WaitGroup
	ok, conn atomic.Int64
	mu       sync.Mutex
	failures []string
}

func startKeptAliveLoad(t *testing.T, url string, headers map[string]string) *keptAliveLoad {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &keptAliveLoad{stop: cancel}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			l.conn.Add(1)
		}
	}}
	l.wg.Go(func() {
		defer client.CloseIdleConnections()
		for ctx.Err() == nil {
			l.once(httptrace.WithClientTrace(ctx, trace), client, url, headers)
			time.Sleep(50 * time.Millisecond)
		}
	})
	return l
}

// once sends one request and records its outcome.
func (l *keptAliveLoad) once(ctx context.Context, client *http.Client, url string, headers map[string]string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		l.fail(err.Error())
		return
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.fail(err.Error())
		}
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		l.fail(fmt.Sprintf("%d %s", resp.StatusCode, body))
		return
	}
	l.ok.Add(1)
}

func (l *keptAliveLoad) fail(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, what)
}

// stopAndCheck stops the load and fails t unless every request was
// admitted over one connection.
func (l *keptAliveLoad) stopAndCheck(t *testing.T) {
	t.Helper()
	l.stop()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("k1 load: %d requests admitted, %d failed, %d connection(s)", l.ok.Load(), len(l.failures), l.conn.Load())
	if len(l.failures) > 0 {
		t.Errorf("k1 requests failed across the swap: %d, first %q", len(l.failures), l.failures[0])
	}
	if l.ok.Load() == 0 || l.conn.Load() != 1 {
		t.Errorf("k1 load: %d admitted over %d connections, want some over 1", l.ok.Load(), l.conn.Load())
	}
}
