package extauthz

import (
	"cmp"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/internal/jwttest"
	"github.com/tollgate/tollgate/policy/ir"
)

// localFixture is a Service (with a key store) and a Local over the same
// JWT provider, identity headers and key header.
type localFixture struct {
	svc   *Service
	local *Local
	iss   *jwttest.Issuer
}

func newLocalFixture(t *testing.T) localFixture {
	t.Helper()
	iss := newIssuer(t, "https://idp.test")
	p := jwtProvider("corp", "corp", iss)
	p.Claims.Tenant, p.Claims.Tier = "tenant", "tier"
	keys := apikey.NewMemoryStore([]byte("unit-test-pepper-0123456789"))
	svc := swapService(t, keys, prometheus.NewRegistry(), &ir.Config{Auth: ir.Auth{JWT: []ir.JWTProvider{p},
		APIKeys: &ir.APIKeys{Header: "x-api-key"}}})
	local, err := NewLocal(context.Background(), envoymod.FilterConfig{JWT: []ir.JWTProvider{p},
		IdentityHeaders: testIdentityHeaders, KeyHeader: "x-api-key"}, LocalOptions{Options: Options{Logger: quietLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(local.Close)
	return localFixture{svc: svc, local: local, iss: iss}
}

// sign mints a token of the fixture's issuer: claims over valid defaults
// (a nil value deletes a default).
func (f localFixture) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	now := time.Now()
	c := map[string]any{"iss": f.iss.Issuer, "aud": f.iss.Audience, "sub": "alice", "roles": []string{"user"},
		"scope": "read write", "tenant": "t1", "tier": "gold", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	tok, err := f.iss.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// decisionFromCheck reads the service's CheckResponse independently of
// decisionOf.
func decisionFromCheck(resp *authv3.CheckResponse) Decision {
	var d Decision
	if dr := resp.GetDeniedResponse(); dr != nil {
		d.Status, d.Reason, d.Body = int(dr.GetStatus().GetCode()), resp.GetStatus().GetMessage(), dr.GetBody()
		for _, h := range dr.GetHeaders() {
			d.Headers = append(d.Headers, Header{h.GetHeader().GetKey(), h.GetHeader().GetValue()})
		}
		return d
	}
	ok := resp.GetOkResponse()
	d.Set, d.Remove = []Header{}, ok.GetHeadersToRemove()
	for _, h := range ok.GetHeaders() {
		d.Set = append(d.Set, Header{h.GetHeader().GetKey(), h.GetHeader().GetValue()})
	}
	for k, v := range resp.GetDynamicMetadata().GetFields() {
		d.Metadata = append(d.Metadata, Header{k, v.GetStringValue()})
	}
	slices.SortFunc(d.Metadata, func(a, b Header) int { return cmp.Compare(a.Name, b.Name) })
	return d
}

func jwtRoute(extra map[string]string) map[string]string {
	ext := map[string]string{contract.KeyRoute: "orders", contract.KeyMethods: "jwt"}
	for k, v := range extra {
		ext[k] = v
	}
	return ext
}

// TestLocalDecidesAsCheck: Service.Check and Local.Decide give the same
// status, reason, body, headers, header mutations and metadata.
func TestLocalDecidesAsCheck(t *testing.T) {
	f := newLocalFixture(t)
	valid := f.sign(t, nil)
	bearer := map[string]string{"authorization": "Bearer " + valid}
	tests := []struct {
		name    string
		ext     map[string]string
		headers map[string]string
		status  int
	}{
		{"valid", jwtRoute(nil), bearer, 0},
		{"valid, scheme in lower case and client ip", jwtRoute(nil),
			map[string]string{"authorization": "bearer " + valid, contract.HeaderClientIP: "10.0.0.1"}, 0},
		{"forward credentials", jwtRoute(map[string]string{contract.KeyForwardCredentials: "true"}), bearer, 0},
		{"role and scopes held", jwtRoute(map[string]string{contract.KeyRoles: "admin,user", contract.KeyScopes: "read,write"}), bearer, 0},
		{"no tenant nor tier", jwtRoute(nil), map[string]string{"authorization": "Bearer " + f.sign(t, map[string]any{"tenant": nil, "tier": nil})}, 0},
		{"expired", jwtRoute(nil), map[string]string{"authorization": "Bearer " + f.sign(t, map[string]any{
			"iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()})}, 401},
		{"wrong audience", jwtRoute(nil), map[string]string{"authorization": "Bearer " + f.sign(t, map[string]any{"aud": "other"})}, 401},
		{"missing role", jwtRoute(map[string]string{contract.KeyRoles: "admin"}), bearer, 403},
		{"missing scope", jwtRoute(map[string]string{contract.KeyScopes: "read,delete"}), bearer, 403},
		{"no credentials", jwtRoute(nil), map[string]string{}, 401},
		{"two credentials", jwtRoute(nil), map[string]string{"authorization": "Bearer " + valid, "x-api-key": "k"}, 401},
		{"repeated authorization", jwtRoute(nil), map[string]string{"authorization": "Bearer " + valid + ",Bearer " + valid}, 401},
		{"api key on a jwt route", jwtRoute(nil), map[string]string{"x-api-key": "tg_0123456789"}, 401},
		{"basic scheme", jwtRoute(nil), map[string]string{"authorization": "Basic YTpi"}, 401},
		{"garbage token", jwtRoute(nil), map[string]string{"authorization": "Bearer a.b.c"}, 401},
		{"no route requirement", map[string]string{}, bearer, 403},
		{"rate limit in the check", jwtRoute(map[string]string{contract.KeyRateLimit: contract.RateLimitExact}), bearer, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := mustCheck(t, f.svc, checkReq(tt.ext, "GET", tt.headers))
			want := decisionFromCheck(resp)
			got := f.local.Decide(context.Background(), tt.ext, tt.headers)
			if got.Status != tt.status || want.Status != tt.status {
				t.Fatalf("status: local %d (%s), service %d (%s), want %d", got.Status, got.Reason, want.Status, want.Reason, tt.status)
			}
			compareDecisions(t, got, want)
		})
	}
}

func compareDecisions(t *testing.T, got, want Decision) {
	t.Helper()
	if got.Reason != want.Reason || got.Body != want.Body {
		t.Errorf("reason/body: local %q %q, service %q %q", got.Reason, got.Body, want.Reason, want.Body)
	}
	if !slices.Equal(got.Headers, want.Headers) || !slices.Equal(got.Set, want.Set) ||
		!slices.Equal(got.Remove, want.Remove) || !slices.Equal(got.Metadata, want.Metadata) {
		t.Errorf("local:\n headers %v\n set %v\n remove %v\n metadata %v\nservice:\n headers %v\n set %v\n remove %v\n metadata %v",
			got.Headers, got.Set, got.Remove, got.Metadata, want.Headers, want.Set, want.Remove, want.Metadata)
	}
}

// TestLocalAllowCarriesIdentity: an allow carries the roles, scopes and
// exp the module's table needs.
func TestLocalAllowCarriesIdentity(t *testing.T) {
	f := newLocalFixture(t)
	exp := time.Now().Add(30 * time.Minute).Truncate(time.Second)
	tok := f.sign(t, map[string]any{"exp": exp.Unix(), "roles": []string{"user", "bad role"}})
	d := f.local.Decide(context.Background(), jwtRoute(nil), map[string]string{"authorization": "Bearer " + tok})
	if d.Status != 0 {
		t.Fatalf("denied %d %s", d.Status, d.Reason)
	}
	if !slices.Equal(d.Roles, []string{"user"}) || !slices.Equal(d.Scopes, []string{"read", "write"}) || !d.Expiry.Equal(exp) {
		t.Fatalf("roles %v scopes %v expiry %v, want [user] [read write] %v", d.Roles, d.Scopes, d.Expiry, exp)
	}
}

// TestLocalUnavailable is the service's 503 body.
func TestLocalUnavailable(t *testing.T) {
	d := Unavailable("internal_error")
	if d.Status != 503 || d.Body != `{"error":"unavailable","reason":"internal_error"}` || len(d.Headers) != 2 {
		t.Fatalf("%+v", d)
	}
}

// TestLocalNeverWaitsForJWKS: a provider whose remote JWKS does not answer
// is refused at once with jwks_unavailable (503), the fetch going on in the
// background.
func TestLocalNeverWaitsForJWKS(t *testing.T) {
	block := make(chan struct{})
	srv := newBlockingServer(t, block)
	iss := newIssuer(t, "https://idp.test")
	local := remoteLocal(t, iss, srv.URL)
	defer close(block)
	start := time.Now()
	d := local.Decide(context.Background(), jwtRoute(nil), map[string]string{"authorization": "Bearer " + token(t, iss, "alice")})
	if d.Status != 503 || d.Reason != "jwks_unavailable" {
		t.Fatalf("got %d %s, want 503 jwks_unavailable", d.Status, d.Reason)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Decide took %v", el)
	}
}

// TestLocalJWKSFetching: while the fetch a Decide left behind runs,
// JWKSFetching is true; once it ended (here: failed), false. A Local
// without remote JWKS never fetches.
func TestLocalJWKSFetching(t *testing.T) {
	block := make(chan struct{})
	srv := newBlockingServer(t, block)
	iss := newIssuer(t, "https://idp.test")
	local := remoteLocal(t, iss, srv.URL)
	d := local.Decide(context.Background(), jwtRoute(nil), map[string]string{"authorization": "Bearer " + token(t, iss, "alice")})
	if d.Status != 503 || !local.JWKSFetching() {
		t.Fatalf("during the fetch: %d %s, fetching %v; want 503 and a fetch under way", d.Status, d.Reason, local.JWKSFetching())
	}
	close(block)
	deadline := time.Now().Add(5 * time.Second)
	for local.JWKSFetching() {
		if time.Now().After(deadline) {
			t.Fatal("JWKSFetching still true 5 s after the fetch was answered")
		}
		time.Sleep(time.Millisecond)
	}
	inline, err := NewLocal(context.Background(), envoymod.FilterConfig{JWT: []ir.JWTProvider{jwtProvider("corp", "corp", iss)},
		IdentityHeaders: testIdentityHeaders}, LocalOptions{Options: Options{Logger: quietLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	defer inline.Close()
	if inline.JWKSFetching() {
		t.Fatal("an inline JWKS is never fetched")
	}
}

// TestLocalEndedContextNeverWaits: with a JWKSWait, a Decide whose
// context has already ended answers at once; one whose context may wait
// waits for the fetch (here: until it is answered, a failure: 503).
func TestLocalEndedContextNeverWaits(t *testing.T) {
	block := make(chan struct{})
	srv := newBlockingServer(t, block)
	iss := newIssuer(t, "https://idp.test")
	p := jwtProvider("corp", "corp", iss)
	p.JWKS, p.JWKSURI = "", srv.URL
	local, err := NewLocal(context.Background(), envoymod.FilterConfig{JWT: []ir.JWTProvider{p},
		IdentityHeaders: testIdentityHeaders}, LocalOptions{Options: Options{Logger: quietLogger()}, JWKSWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	headers := map[string]string{"authorization": "Bearer " + token(t, iss, "alice")}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if d := local.Decide(ended, jwtRoute(nil), headers); d.Status != 503 || time.Since(start) > time.Second {
		t.Fatalf("ended context: %d %s after %v, want 503 at once", d.Status, d.Reason, time.Since(start))
	}
	time.AfterFunc(200*time.Millisecond, func() { close(block) })
	start = time.Now()
	d := local.Decide(context.Background(), jwtRoute(nil), headers)
	if took := time.Since(start); d.Status != 503 || took < 150*time.Millisecond || took > 4*time.Second {
		t.Fatalf("waiting context: %d %s after %v, want 503 once the fetch is answered (200 ms)", d.Status, d.Reason, took)
	}
}

// remoteLocal is a Local with one provider of iss whose JWKS is at url,
// closed when the test ends.
func remoteLocal(t *testing.T, iss *jwttest.Issuer, url string) *Local {
	t.Helper()
	p := jwtProvider("corp", "corp", iss)
	p.JWKS, p.JWKSURI = "", url
	local, err := NewLocal(context.Background(), envoymod.FilterConfig{JWT: []ir.JWTProvider{p},
		IdentityHeaders: testIdentityHeaders}, LocalOptions{Options: Options{Logger: quietLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(local.Close)
	return local
}

// newBlockingServer answers every request once block is closed.
func newBlockingServer(t *testing.T, block <-chan struct{}) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
		http.Error(w, "gone", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestLocalWaitKeys: a Local whose remote JWKS is still being fetched
// refuses a token with 503 jwks_unavailable at once; WaitKeys waits for
// that fetch, after which the same token is allowed.
func TestLocalWaitKeys(t *testing.T) {
	iss := newIssuer(t, "https://idp.test")
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte(iss.JWKS()))
	}))
	t.Cleanup(srv.Close)
	local := remoteLocal(t, iss, srv.URL)
	headers := map[string]string{"authorization": "Bearer " + token(t, iss, "alice")}
	if d := local.Decide(context.Background(), jwtRoute(nil), headers); d.Status != 503 || d.Reason != "jwks_unavailable" {
		t.Fatalf("before the fetch: %d %s, want 503 jwks_unavailable", d.Status, d.Reason)
	}
	time.AfterFunc(20*time.Millisecond, func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := local.WaitKeys(ctx); err != nil {
		t.Fatalf("WaitKeys: %v", err)
	}
	if d := local.Decide(context.Background(), jwtRoute(nil), headers); d.Status != 0 {
		t.Fatalf("after WaitKeys: %d %s, want allowed", d.Status, d.Reason)
	}
}
