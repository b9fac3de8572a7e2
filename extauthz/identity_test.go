package extauthz

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/jwttest"
	"github.com/tollgate/tollgate/policy/ir"
)

var testIdentityHeaders = ir.IdentityHeaders{UserID: "x-user-id", Roles: "x-user-roles", Tenant: "x-tenant-id", Tier: "x-consumer-tier"}

// swapService returns a service (metrics on reg) with cfg swapped in.
func swapService(t *testing.T, keys apikey.Store, reg prometheus.Registerer, cfg *ir.Config) *Service {
	t.Helper()
	cfg.Auth.IdentityHeaders = testIdentityHeaders
	s := New(context.Background(), Options{Logger: quietLogger(), Keys: keys, Metrics: NewMetrics(reg),
		Getenv: func(string) string { return "secret" }})
	t.Cleanup(s.Close)
	if _, err := s.Swap(cfg); err != nil {
		t.Fatal(err)
	}
	return s
}

// allowedIdentity checks req, which must be allowed, and returns the
// identity headers set and the ext_authz metadata.
func allowedIdentity(t *testing.T, s *Service, req *authv3.CheckRequest) (headers, md map[string]string) {
	t.Helper()
	resp := mustCheck(t, s, req)
	if status, reason := outcome(resp); status != 0 {
		t.Fatalf("denied %d %s", status, reason)
	}
	headers, md = map[string]string{}, map[string]string{}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	for k, v := range resp.GetDynamicMetadata().GetFields() {
		md[k] = v.GetStringValue()
	}
	return headers, md
}

func jwtProvider(name, namespace string, iss *jwttest.Issuer) ir.JWTProvider {
	return ir.JWTProvider{Name: name, Namespace: namespace, Issuer: iss.Issuer, Audiences: []string{iss.Audience},
		JWKS: iss.JWKS(), Algorithms: []string{"RS256"}, MaxLifetime: time.Hour, Claims: ir.ClaimMap{UserID: "sub", Roles: "roles"}}
}

func newIssuer(t *testing.T, issuer string) *jwttest.Issuer {
	t.Helper()
	iss, err := jwttest.New(issuer, "api.test")
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func token(t *testing.T, iss *jwttest.Issuer, sub string, roles ...string) string {
	t.Helper()
	tok, err := iss.Token(sub, roles, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestCheckNamespacesIdentities: equal subjects of two providers are two
// identities (user id header, consumer and user_id metadata); a provider
// that names another's namespace shares its identities; API keys stay
// bare unless namespaced.
func TestCheckNamespacesIdentities(t *testing.T) {
	corp, partner, apps := newIssuer(t, "https://corp/"), newIssuer(t, "https://partner/"), newIssuer(t, "https://apps/")
	keys := apikey.NewMemoryStore([]byte("unit-test-pepper-0123456789"))
	key, _, err := keys.Create(context.Background(), apikey.Record{Consumer: "alice", Roles: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := func(keyNamespace string) *ir.Config {
		return &ir.Config{Auth: ir.Auth{
			JWT: []ir.JWTProvider{jwtProvider("apps", "corp", apps), jwtProvider("corp", "corp", corp), jwtProvider("partner", "", partner)},
			// API keys without a namespace are bare.
			APIKeys: &ir.APIKeys{Header: "x-api-key", Namespace: keyNamespace},
		}}
	}
	bare, spaced := swapService(t, keys, prometheus.NewRegistry(), cfg("")), swapService(t, keys, prometheus.NewRegistry(), cfg("corp"))
	bearerReq := func(tok string) *authv3.CheckRequest {
		return checkReq(route("apiKey,jwt", ""), "GET", map[string]string{"authorization": "Bearer " + tok})
	}
	keyReq := checkReq(route("apiKey,jwt", ""), "GET", map[string]string{"x-api-key": key})
	tests := []struct {
		name string
		s    *Service
		req  *authv3.CheckRequest
		want string
	}{
		{"corp's alice", bare, bearerReq(token(t, corp, "alice")), "corp:alice"},
		{"partner's alice is another identity", bare, bearerReq(token(t, partner, "alice")), "partner:alice"},
		{"apps shares corp's namespace", bare, bearerReq(token(t, apps, "alice")), "corp:alice"},
		{"a subject with colons stays after the namespace", bare, bearerReq(token(t, partner, "corp:alice")), "partner:corp:alice"},
		{"API keys are bare by default", bare, keyReq, "alice"},
		{"API keys in a namespace", spaced, keyReq, "corp:alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, md := allowedIdentity(t, tt.s, tt.req)
			if h["x-user-id"] != tt.want || md["user_id"] != tt.want || md["consumer"] != tt.want {
				t.Errorf("x-user-id %q, metadata user_id %q consumer %q; want %q", h["x-user-id"], md["user_id"], md["consumer"], tt.want)
			}
		})
	}
}

// introspectionServer is an RFC 7662 endpoint answering from answers,
// recording every token it is sent.
type introspectionServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	seen    []string
	answers map[string]map[string]any
	gate    chan struct{} // when non-nil, requests wait for it
	calls   atomic.Int64
}

func newIntrospectionServer(t *testing.T, answers map[string]map[string]any) *introspectionServer {
	s := &introspectionServer{answers: answers}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		if s.gate != nil {
			<-s.gate
		}
		_ = r.ParseForm()
		tok := r.PostForm.Get("token")
		s.mu.Lock()
		s.seen = append(s.seen, tok)
		ans, ok := s.answers[tok]
		s.mu.Unlock()
		if !ok {
			ans = map[string]any{"active": false}
		}
		_ = json.NewEncoder(w).Encode(ans)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *introspectionServer) tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func (s *introspectionServer) provider(name, prefix string) ir.OAuth2Provider {
	return ir.OAuth2Provider{Name: name, TokenPrefix: prefix, IntrospectionURL: s.srv.URL, ClientID: "gw", ClientSecretEnv: "S"}
}

func opaqueReq(tok string) *authv3.CheckRequest {
	return checkReq(route("oauth2", ""), "GET", map[string]string{"authorization": "Bearer " + tok})
}

// TestCheckIntrospectionGoesToOneProvider: a token goes to the provider
// whose prefix it has and to no other, even when that one says inactive;
// a token with no provider's prefix goes nowhere.
func TestCheckIntrospectionGoesToOneProvider(t *testing.T) {
	a := newIntrospectionServer(t, map[string]map[string]any{"a_good": {"active": true, "sub": "alice", "client_id": "app"}})
	b := newIntrospectionServer(t, map[string]map[string]any{"b_good": {"active": true, "sub": "alice"}})
	s := swapService(t, nil, prometheus.NewRegistry(), &ir.Config{Auth: ir.Auth{
		OAuth2: []ir.OAuth2Provider{a.provider("a", "a_"), b.provider("b", "b_")}}})
	h, md := allowedIdentity(t, s, opaqueReq("a_good"))
	if h["x-user-id"] != "a:alice" || md["consumer"] != "a:app" {
		t.Errorf("x-user-id %q consumer %q, want a:alice and a:app", h["x-user-id"], md["consumer"])
	}
	if h, _ := allowedIdentity(t, s, opaqueReq("b_good")); h["x-user-id"] != "b:alice" {
		t.Errorf("x-user-id %q, want b:alice", h["x-user-id"])
	}
	for tok, want := range map[string]string{"a_inactive": "inactive_token", "c_other": "unknown_token_prefix", "b": "unknown_token_prefix"} {
		if status, reason := outcome(mustCheck(t, s, opaqueReq(tok))); status != 401 || reason != want {
			t.Errorf("%s: %d %s, want 401 %s", tok, status, reason, want)
		}
	}
	if got := strings.Join(a.tokens(), " "); got != "a_good a_inactive" {
		t.Errorf("provider a was sent %q, want a_good a_inactive", got)
	}
	if got := strings.Join(b.tokens(), " "); got != "b_good" {
		t.Errorf("provider b was sent %q, want b_good only", got)
	}
}

// TestSwapRefusesOverlappingTokenPrefixes: the table refuses providers a
// token could match several of, should validation have let them by.
func TestSwapRefusesOverlappingTokenPrefixes(t *testing.T) {
	a := newIntrospectionServer(t, nil)
	for name, ps := range map[string][]ir.OAuth2Provider{
		"no prefix":   {a.provider("a", ""), a.provider("b", "b_")},
		"overlapping": {a.provider("a", "tok"), a.provider("b", "tok_b")},
	} {
		s := New(context.Background(), Options{Logger: quietLogger(), Getenv: func(string) string { return "secret" }})
		if _, err := s.Swap(&ir.Config{Auth: ir.Auth{OAuth2: ps}}); err == nil {
			t.Errorf("%s: Swap accepted providers a token could match twice", name)
		}
		s.Close()
	}
}

// TestCheckIntrospectionWithoutSubjectDenies: an active answer naming no
// sub, username or client_id is no identity: 401.
func TestCheckIntrospectionWithoutSubjectDenies(t *testing.T) {
	a := newIntrospectionServer(t, map[string]map[string]any{
		"anon": {"active": true, "scope": "orders:read"}, "user": {"active": true, "username": "bob"}})
	s := swapService(t, nil, prometheus.NewRegistry(), &ir.Config{Auth: ir.Auth{OAuth2: []ir.OAuth2Provider{a.provider("a", "")}}})
	if status, reason := outcome(mustCheck(t, s, opaqueReq("anon"))); status != 401 || reason != "no_subject" {
		t.Errorf("active token without a subject: %d %s, want 401 no_subject", status, reason)
	}
	if h, md := allowedIdentity(t, s, opaqueReq("user")); h["x-user-id"] != "a:bob" || md["consumer"] != "a:bob" {
		t.Errorf("username only: x-user-id %q consumer %q, want a:bob", h["x-user-id"], md["consumer"])
	}
}

// TestCheckIntrospectionOverloaded: with maxConcurrent introspections in
// flight at a slow endpoint, another token is refused at once with 503
// and counted.
func TestCheckIntrospectionOverloaded(t *testing.T) {
	a := newIntrospectionServer(t, nil)
	a.gate = make(chan struct{})
	open := sync.OnceFunc(func() { close(a.gate) })
	t.Cleanup(open) // before the server's Close, which waits for its handlers
	p := a.provider("slow", "")
	p.MaxConcurrent = 1
	reg := prometheus.NewRegistry()
	s := swapService(t, nil, reg, &ir.Config{Auth: ir.Auth{OAuth2: []ir.OAuth2Provider{p}}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		mustCheck(t, s, opaqueReq("first"))
	}()
	for a.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// Bounded like Envoy's call, so that a service that queues fails the
	// test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	resp, err := s.Check(ctx, opaqueReq("second"))
	if err != nil {
		t.Fatal(err)
	}
	if status, reason := outcome(resp); status != 503 || reason != "introspection_overloaded" {
		t.Errorf("second token: %d %s, want 503 introspection_overloaded", status, reason)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("the refusal took %s", d)
	}
	if body := resp.GetDeniedResponse().GetBody(); body != `{"error":"unavailable","reason":"introspection_overloaded"}` {
		t.Errorf("body %s", body)
	}
	open()
	<-done
	if n := counterValue(t, s.opts.Metrics.refused.WithLabelValues("slow")); n != 1 {
		t.Errorf("tollgate_authz_introspection_refused_total = %v, want 1", n)
	}
	if a.calls.Load() != 1 {
		t.Errorf("the endpoint got %d requests, want 1", a.calls.Load())
	}
}

// TestCheckDropsInvalidRoles: roles that would read as other roles in the
// comma-joined header (a comma, whitespace, a control character) are
// dropped from JWTs, introspection answers and API keys alike, and counted.
func TestCheckDropsInvalidRoles(t *testing.T) {
	corp := newIssuer(t, "https://corp/")
	in := newIntrospectionServer(t, map[string]map[string]any{
		"opaque": {"active": true, "sub": "bob", "roles": []string{"user", "admin,root", "ops\r\nx-evil: 1"}}})
	keys := apikey.NewMemoryStore([]byte("unit-test-pepper-0123456789"))
	key, _, err := keys.Create(context.Background(), apikey.Record{Consumer: "carol", Roles: []string{"user", "admin, root"}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := swapService(t, keys, reg, &ir.Config{Auth: ir.Auth{
		JWT:     []ir.JWTProvider{jwtProvider("corp", "", corp)},
		OAuth2:  []ir.OAuth2Provider{in.provider("idp", "")},
		APIKeys: &ir.APIKeys{Header: "x-api-key"},
	}})
	all := route("apiKey,jwt,oauth2", "")
	tests := []struct {
		name, provider string
		req            *authv3.CheckRequest
		dropped        float64
	}{
		{"jwt", "corp", checkReq(all, "GET", map[string]string{"authorization": "Bearer " + token(t, corp, "alice", "user", "admin,root", "a b", "tab\t", "nul\x00", "")}), 4},
		{"introspection", "idp", checkReq(all, "GET", map[string]string{"authorization": "Bearer opaque"}), 2},
		{"api key", "apikeys", checkReq(all, "GET", map[string]string{"x-api-key": key}), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, md := allowedIdentity(t, s, tt.req)
			if h["x-user-roles"] != "user" || md["roles"] != "user" {
				t.Errorf("x-user-roles %q, metadata roles %q; want user", h["x-user-roles"], md["roles"])
			}
			if n := counterValue(t, s.opts.Metrics.dropped.WithLabelValues(tt.provider)); n != tt.dropped {
				t.Errorf("tollgate_authz_roles_dropped_total{provider=%q} = %v, want %v", tt.provider, n, tt.dropped)
			}
		})
	}
	// A role that needs a route is not granted by a dropped value.
	req := checkReq(route("jwt", "root"), "GET", map[string]string{"authorization": "Bearer " + token(t, corp, "alice", "user,root")})
	if status, reason := outcome(mustCheck(t, s, req)); status != 403 || reason != "missing_role" {
		t.Errorf("role smuggled in a comma: %d %s, want 403 missing_role", status, reason)
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
