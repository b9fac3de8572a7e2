package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/internal/upstream"
)

// TestJWTModuleMissingLibraryFailsClosed: an Envoy host without the module
// file at the path `serve --envoy-module` names refuses the listener
// (module.local.filename cannot be loaded: a NACK the control plane
// reports), so the port is never served without authentication: nothing
// listens there, and no request reaches the upstream.
func TestJWTModuleMissingLibraryFailsClosed(t *testing.T) {
	n := startNativeEnv(t)
	port := harness.FreePort(t)
	missing := filepath.Join(t.TempDir(), "libtollgate_envoy.so")
	s := n.stack(t, n.policy(t, jwtNativePolicy, port), "--envoy-module", missing)
	s.envoy("public", "jwt-module-missing", "delta")
	var msg string
	if err := harness.WaitFor(testCtx(t, 20*time.Second), func() (bool, error) {
		msg = nackMessage(s.status(), "jwt-module-missing")
		return msg != "", nil
	}); err != nil {
		t.Fatalf("no NACK for a listener whose module file is missing: %v", err)
	}
	if !strings.Contains(msg, "libtollgate_envoy.so") {
		t.Errorf("NACK %q does not name the module file", msg)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Fatal("the listener is served without its module")
	}
	if got := n.upstream.Requests(); got != 0 {
		t.Fatalf("the upstream saw %d requests", got)
	}
}

// TestJWTNativeListenerUpdate: a push that replaces the gateway's listener
// (here a JWT provider's clock skew) while the IdP answers its JWKS slowly
// never refuses a valid token. jwt_authn (served over ECDS, its JWKS
// fetched with fast_listener: xds/translator/jwtauthn_ecds.go) serves the
// new listener at once, a request that comes before its JWKS fetch ends
// waiting for an on-demand fetch; the module's new
// filter configuration (a new table, a new verifier without keys) must
// not serve before its first fetch either, or every token on a new
// connection is a 503 jwks_unavailable until the fetch completes (at
// each listener update, and at Envoy's start).
func TestJWTNativeListenerUpdate(t *testing.T) { eachJWTEngine(t, testJWTNativeListenerUpdate) }

// listenerUpdate is a native JWT stack whose Envoy admitted tok once,
// before a push that replaces its listener.
type listenerUpdate struct {
	n        nativeEnv
	s        *stack
	e        *harness.Envoy
	a        *authStack // a new connection per request: each meets the newest listener
	policy   string
	tok      string
	modified int64 // listener_manager.listener_modified before the push
}

func startListenerUpdate(t *testing.T, engine jwtEngine, node string) listenerUpdate {
	t.Helper()
	u := listenerUpdate{n: startNativeEnv(t)}
	port := harness.FreePort(t)
	u.policy = u.n.policy(t, jwtNativePolicy, port)
	u.s = u.n.stack(t, u.policy, engine.args(t)...)
	u.e = u.s.envoy("public", node, "delta")
	u.a = u.n.authStack(u.s, port)
	u.tok = u.n.idp.rs256("k1", u.n.idp.claims("alice", "user"))
	if code, _, body := u.a.call(t, "/users/1", bearer(u.tok)); code != 200 {
		t.Fatalf("before the push: %d %s", code, body)
	}
	var err error
	if u.modified, _, err = u.e.Stat(testCtx(t, 10*time.Second), "listener_manager.listener_modified"); err != nil {
		t.Fatal(err)
	}
	return u
}

// next is the policy with a change that replaces the listener (a JWT
// provider's clock skew).
func (u listenerUpdate) next() string {
	return strings.Replace(u.policy, "algorithms: [RS256]", "algorithms: [RS256]\n      clockSkew: 20s", 1)
}

func testJWTNativeListenerUpdate(t *testing.T, engine jwtEngine) {
	u := startListenerUpdate(t, engine, "jwt-native-update")
	n, s, e, a, tok, modified, ctx := u.n, u.s, u.e, u.a, u.tok, u.modified, testCtx(t, 20*time.Second)
	n.idp.delay.Store(int64(1500 * time.Millisecond))
	next := u.next()
	s.cli(0, "push", writeFile(t, "next.yaml", next))
	start, served := time.Now(), 0
	for {
		code, _, body := a.call(t, "/users/1", bearer(tok))
		if code != 200 {
			t.Fatalf("%s after the push (request %d): %d %s, want 200", time.Since(start).Round(time.Millisecond), served+1, code, body)
		}
		served++
		now, _, err := e.Stat(ctx, "listener_manager.listener_modified")
		warming, _, werr := e.Stat(ctx, "listener_manager.total_listeners_warming")
		if err != nil || werr != nil {
			t.Fatal(err, werr)
		}
		if now > modified && warming == 0 && served >= 3 {
			break
		}
		if time.Since(start) > 8*time.Second {
			t.Fatalf("listener not replaced 8 s after the push (listener_modified %d → %d, warming %d)", modified, now, warming)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d requests admitted while the listener was replaced (%s)", served, time.Since(start).Round(time.Millisecond))
}

// TestJWTModuleWithdrawnKey: once the module's verifier has fetched a JWKS
// that no longer holds a key, a token signed with that key is refused,
// though the module's C table served it a moment before: the table is
// cleared with the verifier's own cache, as the ext_authz service refuses
// such a token after its refresh. (jwt_authn keeps verified tokens in its
// cache across JWKS refreshes until their exp, so this is the module's
// contract only; the control plane's own JWKS watch, there for jwt_authn,
// does not run with the module.)
func TestJWTModuleWithdrawnKey(t *testing.T) {
	t.Parallel() // waits on timers (the 5 s refetch bound) and asserts no latency (e2e/doc.go)
	n := startNativeEnv(t)
	n.idp.addKey("k2")
	port := harness.FreePort(t)
	s := n.stack(t, n.policy(t, jwtNativePolicy, port), "--envoy-module", harness.BuildEnvoyModule(t))
	s.envoy("public", "jwt-module-withdrawn", "delta")
	if strings.Contains(s.cp.Logs(), "watching JWKS for withdrawn keys") {
		t.Error("the control plane watches the JWKS for jwt_authn, which the module replaces")
	}
	a := n.authStack(s, port)
	claims := n.idp.claims("alice", "user")
	tok := n.idp.rs256("k2", claims)
	for i := range 2 { // the second from the table
		if code, _, body := a.call(t, "/users/1", bearer(tok)); code != 200 {
			t.Fatalf("request %d with k2: %d %s", i+1, code, body)
		}
	}
	n.idp.mu.Lock()
	delete(n.idp.keys, "k2")
	n.idp.mu.Unlock()
	// A token naming an unknown kid makes the verifier fetch the JWKS (at
	// most once per 5 s): 401 unknown_kid before, 503 while the fetch
	// runs, 401 once it is done.
	unknown := n.idp.rs256Header("rotated", nil, claims)
	fetches := n.idp.fetches.Load()
	err := harness.WaitFor(testCtx(t, 15*time.Second), func() (bool, error) {
		code, _, _ := a.call(t, "/users/1", bearer(unknown))
		return n.idp.fetches.Load() > fetches && code == 401, nil
	})
	if err != nil {
		t.Fatalf("no JWKS fetch after an unknown kid: %v", err)
	}
	code, _, body := a.call(t, "/users/1", bearer(tok))
	if code != 401 || !strings.Contains(body, "unknown_kid") {
		t.Fatalf("token signed with the withdrawn key k2: %d %s, want 401 unknown_kid", code, body)
	}
}

// TestJWTNativeCredentialForms: a token both engines admit (the module's
// C table holds it after the first request) is refused in every form the
// ext_authz service refuses, over HTTP/1.1 and HTTP/2 (h2c): two
// Authorization fields (Envoy joins the values of its inline Authorization
// header with a comma), the key header beside it (empty, or in capitals),
// a comma after it, the ApiKey scheme, a token over the verifier's bound,
// a 50 KiB value (under Envoy's 60 KiB). None reaches the upstream. A second,
// empty Authorization field is dropped by Envoy's header map before any
// filter (appending an empty value is a no-op): the request is the plain
// one for every engine and for ext_authz, and the upstream of a route
// forwarding credentials sees the one value.
func TestJWTNativeCredentialForms(t *testing.T) { eachJWTEngine(t, testJWTNativeCredentialForms) }

func testJWTNativeCredentialForms(t *testing.T, engine jwtEngine) {
	n := startNativeEnv(t)
	port := harness.FreePort(t)
	policy := strings.Replace(n.policy(t, jwtNativePolicy, port), "auth:\n", "auth:\n  apiKeys: {header: x-api-key}\n", 1)
	s := n.stack(t, policy, engine.args(t)...)
	s.envoy("public", "jwt-native-forms", "delta")
	a := n.authStack(s, port)
	b := "Bearer " + n.idp.rs256("k1", n.idp.claims("alice", "user"))
	for i := range 2 { // the second from the module's table
		if code, _, body := a.call(t, "/users/1", map[string]string{"Authorization": b}); code != 200 {
			t.Fatalf("plain request %d: %d %s", i+1, code, body)
		}
	}
	h2 := &http.Transport{Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	clients := map[string]*http.Client{"HTTP/1.1": {Transport: &http.Transport{DisableKeepAlives: true}}, "HTTP/2": {Transport: h2}}
	cases := []struct {
		name, path string
		header     http.Header
		status     int
		reason     string // the module's (the ext_authz service's); jwt_authn may name another
	}{
		{"two Authorization fields", "/users/1", http.Header{"Authorization": {b, b}}, 401, "ambiguous_credentials"},
		{"the key header beside it, empty", "/users/1", http.Header{"Authorization": {b}, "X-Api-Key": {""}}, 401, "ambiguous_credentials"},
		{"the key header beside it, in capitals", "/users/1", http.Header{"Authorization": {b}, "X-API-KEY": {"k"}}, 401, "ambiguous_credentials"},
		{"a comma after the token", "/users/1", http.Header{"Authorization": {b + ",x"}}, 401, "ambiguous_credentials"},
		{"the ApiKey scheme", "/users/1", http.Header{"Authorization": {"ApiKey " + strings.TrimPrefix(b, "Bearer ")}}, 401, "method_not_allowed"},
		{"a token over the verifier's 8 KiB", "/users/1", http.Header{"Authorization": {b + strings.Repeat("A", 9000)}}, 401, "too_large"},
		{"a 50 KiB Authorization value", "/users/1", http.Header{"Authorization": {"Bearer " + strings.Repeat("a", 50<<10)}}, 401, "method_not_allowed"},
		{"a second, empty Authorization field (dropped by Envoy)", "/raw/x", http.Header{"Authorization": {b, ""}}, 200, ""},
	}
	for proto, c := range clients {
		for _, tc := range cases {
			resp, body := credentialFormCall(t, c, fmt.Sprintf("http://127.0.0.1:%d%s", port, tc.path), tc.header)
			bad := resp.ProtoMajor != int(proto[5]-'0') || resp.StatusCode != tc.status
			switch {
			case tc.status == 200:
				var echo upstream.Echo
				bad = bad || json.Unmarshal(body, &echo) != nil || hdr(&echo, "authorization") != b
			case resp.Header.Get("X-Upstream") != "":
				bad = true
			case engine.name == "module" && !strings.Contains(string(body), `"reason":"`+tc.reason+`"`):
				bad = true
			}
			if bad {
				t.Errorf("%s %s: %s %d %s, want %d %s", proto, tc.name, resp.Proto, resp.StatusCode, body, tc.status, tc.reason)
			}
		}
	}
}

// credentialFormCall sends GET url with header as it is (repeated fields
// kept) and returns the response and its body.
func credentialFormCall(t *testing.T, c *http.Client, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t, 10*time.Second), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestJWTModuleConcurrentIdentities: two Envoy workers deciding 40
// identities' tokens at once, mostly from the module's C table, never
// hand one caller another's identity: every admitted request reaches the
// upstream with its own token's user id and tenant.
func TestJWTModuleConcurrentIdentities(t *testing.T) {
	n := startNativeEnv(t)
	port := harness.FreePort(t)
	engine := jwtEngines[1]
	s := n.stack(t, n.policy(t, jwtNativePolicy, port), engine.args(t)...)
	s.envoyWith("public", "jwt-module-workers", harness.EnvoyOptions{Concurrency: 2})
	a := n.authStack(s, port)
	const identities, workers, each = 40, 16, 150
	toks := make([]string, identities)
	for i := range toks {
		toks[i] = n.idp.rs256("k1", with(n.idp.claims(fmt.Sprintf("u%d", i), "user"), "tid", fmt.Sprintf("t%d", i)))
	}
	errs := make(chan error, workers)
	for w := range workers {
		go func() { errs <- checkIdentities(t, a, toks, w, each) }()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// checkIdentities sends count requests cycling through toks from offset w
// and returns the first whose upstream view is not its token's identity.
func checkIdentities(t *testing.T, a *authStack, toks []string, w, count int) error {
	for j := range count {
		i := (w + j) % len(toks)
		resp, err := a.client.Do(testCtx(t, 10*time.Second), "GET", fmt.Sprintf("http://127.0.0.1:%d/users/%d", a.port, i), "", bearer(toks[i]), nil)
		if err != nil {
			return err
		}
		var echo upstream.Echo
		if resp.Status != 200 || resp.JSON(&echo) != nil {
			return fmt.Errorf("identity %d: status %d, body %s", i, resp.Status, resp.Body)
		}
		if u, tn := hdr(&echo, "x-user-id"), hdr(&echo, "x-tenant-id"); u != fmt.Sprintf("corp:u%d", i) || tn != fmt.Sprintf("t%d", i) {
			return fmt.Errorf("identity %d reached the upstream as %q of tenant %q", i, u, tn)
		}
	}
	return nil
}

// TestJWTModulePushWhileTheIdPHangs: a push that gives the listener a new
// module configuration while the IdP's JWKS endpoint hangs takes effect at
// once and keeps admitting tokens: the new configuration starts with the
// keys the previous one fetched from the same URI (the module's
// process-wide JWKS store) instead of holding Envoy's main thread for a
// fetch (up to 6 s) before the listener can be replaced.
func TestJWTModulePushWhileTheIdPHangs(t *testing.T) {
	u := startListenerUpdate(t, jwtEngines[1], "jwt-module-hung-idp")
	e, a, tok, modified, ctx := u.e, u.a, u.tok, u.modified, testCtx(t, 20*time.Second)
	u.n.idp.delay.Store(int64(time.Minute))
	start := time.Now()
	u.s.cli(0, "push", writeFile(t, "next.yaml", u.next()))
	if err := harness.WaitFor(testCtx(t, 3*time.Second), func() (bool, error) {
		now, _, err := e.Stat(ctx, "listener_manager.listener_modified")
		warming, _, werr := e.Stat(ctx, "listener_manager.total_listeners_warming")
		return err == nil && werr == nil && now > modified && warming == 0, errors.Join(err, werr)
	}); err != nil {
		t.Fatalf("the listener was not replaced 3 s after the push returned, while the IdP hangs: %v", err)
	}
	took := time.Since(start)
	t.Logf("listener replaced %s after the push began", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Fatalf("the listener took %s to be replaced while the IdP hangs, want < 3 s (no wait for a fetch)", took.Round(time.Millisecond))
	}
	if code, _, body := a.call(t, "/users/1", bearer(tok)); code != 200 {
		t.Fatalf("after the push: %d %s", code, body)
	}
}
