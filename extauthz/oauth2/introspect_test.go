package oauth2

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// secretToken is a token the log and errors must never show.
const secretToken = "opaque-7f3a9c-token-value"

func TestIntrospectActive(t *testing.T) {
	p := newIDP(t)
	clock := newFakeClock()
	exp := clock.Now().Add(time.Hour)
	p.set("tok", map[string]any{"active": true, "scope": "read write", "aud": []string{"other", "api"},
		"sub": "user-1", "client_id": "app", "username": "ann", "exp": exp.Unix(),
		"roles": []string{"admin"}, "tenant": "acme", "tier": "gold"})
	prov := p.provider()
	prov.Audiences = []string{"api"}
	in := newTestIntrospector(t, prov, Options{Now: clock.Now})
	got, err := in.Introspect(testContext(t), "tok")
	if err != nil {
		t.Fatalf("Introspect: %v", err)
	}
	want := &Result{Provider: "idp", Subject: "user-1", ClientID: "app", Username: "ann",
		Scopes: []string{"read", "write"}, Audiences: []string{"other", "api"}, Roles: []string{"admin"},
		Tenant: "acme", Tier: "gold", ExpiresAt: exp}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Introspect = %+v, want %+v", got, want)
	}
	if !HasScopes(got, []string{"write", "read"}) || HasScopes(got, []string{"read", "admin"}) {
		t.Error("HasScopes disagrees with the token's scopes")
	}
	got.Scopes[0] = "mutated by the caller"
	again, err := in.Introspect(testContext(t), "tok")
	if err != nil || again.Scopes[0] != "read" {
		t.Errorf("cached result = %+v, %v; the caller's mutation leaked into the cache", again, err)
	}
}

func TestIntrospectOutcomes(t *testing.T) {
	clock := newFakeClock()
	now := clock.Now().Unix()
	tests := []struct {
		name      string
		claims    map[string]any // nil: the server does not know the token
		audiences []string
		wantErr   error
		check     func(r *Result) bool
	}{
		{"inactive", map[string]any{"active": false, "sub": "x"}, nil, ErrInactive, nil},
		{"unknown", nil, nil, ErrInactive, nil},
		{"expired", map[string]any{"active": true, "exp": now - 1}, nil, ErrInactive, nil},
		{"expires now", map[string]any{"active": true, "exp": now}, nil, ErrInactive, nil},
		{"audience mismatch", map[string]any{"active": true, "aud": "other"}, []string{"api"}, ErrAudience, nil},
		{"no audience", map[string]any{"active": true}, []string{"api"}, ErrAudience, nil},
		{"audience string", map[string]any{"active": true, "aud": "api"}, []string{"api", "web"}, nil,
			func(r *Result) bool { return reflect.DeepEqual(r.Audiences, []string{"api"}) }},
		{"audience not required", map[string]any{"active": true, "aud": "anything"}, nil, nil, nil},
		{"fractional exp", map[string]any{"active": true, "exp": float64(now) + 60.5}, nil, nil,
			func(r *Result) bool { return r.ExpiresAt.Equal(time.Unix(now+60, 5e8)) }},
		{"no exp", map[string]any{"active": true}, nil, nil, func(r *Result) bool { return r.ExpiresAt.IsZero() }},
		{"roles as a string", map[string]any{"active": true, "roles": "a  b"}, nil, nil,
			func(r *Result) bool { return reflect.DeepEqual(r.Roles, []string{"a", "b"}) }},
		{"scope as an array", map[string]any{"active": true, "scope": []string{"x", "y"}}, nil, nil,
			func(r *Result) bool { return HasScopes(r, []string{"y", "x"}) }},
		{"null members", map[string]any{"active": true, "scope": nil, "aud": nil, "roles": nil}, nil, nil,
			func(r *Result) bool { return r.Scopes == nil && r.Audiences == nil && r.Roles == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newIDP(t)
			if tt.claims != nil {
				p.set("tok", tt.claims)
			}
			prov := p.provider()
			prov.Audiences = tt.audiences
			in := newTestIntrospector(t, prov, Options{Now: clock.Now})
			got, err := in.Introspect(testContext(t), "tok")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Introspect = %+v, %v; want %v", got, err, tt.wantErr)
			}
			if err != nil && errors.Is(err, ErrUnavailable) {
				t.Errorf("error %v is also ErrUnavailable", err)
			}
			if tt.check != nil && !tt.check(got) {
				t.Errorf("Introspect = %+v: unexpected fields", got)
			}
		})
	}
}

func TestIntrospectUnavailable(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, p *idp, prov *ir.OAuth2Provider, opts *Options)
	}{
		{"wrong client secret: 401", func(_ *testing.T, _ *idp, _ *ir.OAuth2Provider, o *Options) {
			o.Getenv = func(string) string { return "wrong" }
		}},
		{"wrong client id: 401", func(_ *testing.T, _ *idp, prov *ir.OAuth2Provider, _ *Options) {
			prov.ClientID = "someone else"
		}},
		{"status 500", func(_ *testing.T, p *idp, _ *ir.OAuth2Provider, _ *Options) {
			p.configure(func(p *idp) { p.status = http.StatusInternalServerError })
		}},
		{"not JSON", func(_ *testing.T, p *idp, _ *ir.OAuth2Provider, _ *Options) {
			p.configure(func(p *idp) { p.raw = []byte("<html>maintenance</html>") })
		}},
		{"no active member", func(_ *testing.T, p *idp, _ *ir.OAuth2Provider, _ *Options) {
			p.configure(func(p *idp) { p.raw = []byte(`{"sub":"x"}`) })
		}},
		{"bad exp", func(_ *testing.T, p *idp, _ *ir.OAuth2Provider, _ *Options) {
			p.configure(func(p *idp) { p.raw = []byte(`{"active":true,"exp":"soon"}`) })
		}},
		{"bad scope type", func(_ *testing.T, p *idp, _ *ir.OAuth2Provider, _ *Options) {
			p.configure(func(p *idp) { p.raw = []byte(`{"active":true,"scope":42}`) })
		}},
		{"response over 1 MiB", func(_ *testing.T, p *idp, _ *ir.OAuth2Provider, _ *Options) {
			big := `{"active":true,"pad":"` + strings.Repeat("x", maxResponseBytes) + `"}`
			p.configure(func(p *idp) { p.raw = []byte(big) })
		}},
		{"server down", func(_ *testing.T, p *idp, _ *ir.OAuth2Provider, _ *Options) { p.srv.Close() }},
		{"timeout", func(t *testing.T, p *idp, _ *ir.OAuth2Provider, o *Options) {
			gate := make(chan struct{})
			t.Cleanup(func() { close(gate) })
			p.configure(func(p *idp) { p.gate = gate })
			o.Timeout = 50 * time.Millisecond
		}},
		{"redirect", func(t *testing.T, _ *idp, prov *ir.OAuth2Provider, _ *Options) {
			prov.IntrospectionURL = redirector(t)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newIDP(t)
			p.set(secretToken, map[string]any{"active": true})
			prov := p.provider()
			var logs bytes.Buffer
			opts := Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			tt.setup(t, p, &prov, &opts)
			in := newTestIntrospector(t, prov, opts)
			for i := range 2 { // failures are not cached
				got, err := in.Introspect(testContext(t), secretToken)
				if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInactive) || got != nil {
					t.Fatalf("Introspect #%d = %v, %v; want ErrUnavailable only", i, got, err)
				}
				if strings.Contains(err.Error(), secretToken) || strings.Contains(err.Error(), testSecret) {
					t.Errorf("error %q shows the token or the secret", err)
				}
			}
			if s := logs.String(); strings.Contains(s, secretToken) || strings.Contains(s, testSecret) {
				t.Errorf("the log shows the token or the secret:\n%s", s)
			}
		})
	}
}

// redirector returns the URL of a server that redirects to a trap: the
// test fails if the introspector follows the redirect.
func redirector(t *testing.T) string {
	trap := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the introspector followed a redirect")
	}))
	t.Cleanup(trap.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, trap.URL, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestIntrospectCachesActiveTokens(t *testing.T) {
	p := newIDP(t)
	clock := newFakeClock()
	p.set("tok", map[string]any{"active": true, "exp": clock.Now().Add(time.Hour).Unix()})
	in := newTestIntrospector(t, p.provider(), Options{Now: clock.Now}) // CacheTTL 1m
	steps := []struct {
		advance  time.Duration
		requests int64
	}{
		{0, 1},
		{0, 1},
		{59 * time.Second, 1},
		{time.Second, 2}, // CacheTTL reached
		{30 * time.Second, 2},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if _, err := in.Introspect(testContext(t), "tok"); err != nil {
			t.Fatalf("step %d: Introspect: %v", i, err)
		}
		if n := p.requests.Load(); n != s.requests {
			t.Fatalf("step %d: %d requests so far, want %d", i, n, s.requests)
		}
	}
}

func TestIntrospectCacheNeverOutlivesExp(t *testing.T) {
	p := newIDP(t)
	clock := newFakeClock()
	prov := p.provider()
	prov.CacheTTL = time.Hour
	p.set("tok", map[string]any{"active": true, "exp": clock.Now().Add(30 * time.Second).Unix()})
	in := newTestIntrospector(t, prov, Options{Now: clock.Now})
	steps := []struct {
		advance  time.Duration
		wantErr  error
		requests int64
	}{
		{0, nil, 1},
		{29 * time.Second, nil, 1},
		{time.Second, ErrInactive, 2}, // exp reached: the entry is gone
		{time.Second, ErrInactive, 2}, // remembered as inactive
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if _, err := in.Introspect(testContext(t), "tok"); !errors.Is(err, s.wantErr) {
			t.Fatalf("step %d: Introspect = %v, want %v", i, err, s.wantErr)
		}
		if n := p.requests.Load(); n != s.requests {
			t.Fatalf("step %d: %d requests so far, want %d", i, n, s.requests)
		}
	}
}

func TestIntrospectNegativeCache(t *testing.T) {
	p := newIDP(t)
	clock := newFakeClock()
	in := newTestIntrospector(t, p.provider(), Options{Now: clock.Now, NegativeTTL: 5 * time.Second})
	steps := []struct {
		advance  time.Duration
		requests int64
	}{
		{0, 1},
		{4 * time.Second, 1},
		{time.Second, 2},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if _, err := in.Introspect(testContext(t), "unknown"); !errors.Is(err, ErrInactive) {
			t.Fatalf("step %d: Introspect = %v, want ErrInactive", i, err)
		}
		if n := p.requests.Load(); n != s.requests {
			t.Fatalf("step %d: %d requests so far, want %d", i, n, s.requests)
		}
	}
}

func TestIntrospectWithoutCache(t *testing.T) {
	p := newIDP(t)
	p.set("tok", map[string]any{"active": true})
	prov := p.provider()
	prov.CacheTTL = 0
	in := newTestIntrospector(t, prov, Options{NegativeTTL: -1})
	for _, tok := range []string{"tok", "tok", "unknown", "unknown"} {
		_, _ = in.Introspect(testContext(t), tok)
	}
	if n := p.requests.Load(); n != 4 {
		t.Errorf("%d requests, want 4 (nothing cached)", n)
	}
}

func TestIntrospectErrorsAreNotCached(t *testing.T) {
	p := newIDP(t)
	p.set("tok", map[string]any{"active": true})
	p.configure(func(p *idp) { p.status = http.StatusServiceUnavailable })
	in := newTestIntrospector(t, p.provider(), Options{})
	if _, err := in.Introspect(testContext(t), "tok"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Introspect = %v, want ErrUnavailable", err)
	}
	p.configure(func(p *idp) { p.status = 0 })
	if _, err := in.Introspect(testContext(t), "tok"); err != nil {
		t.Fatalf("Introspect after recovery: %v", err)
	}
}

func TestIntrospectSingleFlight(t *testing.T) {
	for _, cacheTTL := range []time.Duration{time.Minute, 0} {
		p := newIDP(t)
		p.set("tok", map[string]any{"active": true})
		gate := make(chan struct{})
		p.configure(func(p *idp) { p.gate = gate })
		prov := p.provider()
		prov.CacheTTL = cacheTTL
		in := newTestIntrospector(t, prov, Options{})
		const callers = 20
		var started, wg sync.WaitGroup
		started.Add(callers)
		for range callers {
			wg.Go(func() {
				started.Done()
				if _, err := in.Introspect(testContext(t), "tok"); err != nil {
					t.Errorf("Introspect: %v", err)
				}
			})
		}
		started.Wait()
		time.Sleep(50 * time.Millisecond) // let every caller join the flight
		close(gate)
		wg.Wait()
		if n := p.requests.Load(); n != 1 {
			t.Errorf("CacheTTL %v: %d concurrent callers made %d requests, want 1", cacheTTL, callers, n)
		}
	}
}

func TestIntrospectCallerGivesUp(t *testing.T) {
	p := newIDP(t)
	p.set("tok", map[string]any{"active": true})
	gate := make(chan struct{})
	p.configure(func(p *idp) { p.gate = gate })
	in := newTestIntrospector(t, p.provider(), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := in.Introspect(ctx, "tok")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Introspect = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Introspect returned after %v, want about 50ms", d)
	}
	close(gate) // the detached request completes and is cached
	waitFor(t, func() bool { return in.cache.len() == 1 })
	if _, err := in.Introspect(testContext(t), "tok"); err != nil {
		t.Fatalf("Introspect: %v", err)
	}
	if n := p.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestIntrospectCacheIsBounded(t *testing.T) {
	p := newIDP(t)
	in := newTestIntrospector(t, p.provider(), Options{CacheSize: 10})
	for i := range 100 {
		_, _ = in.Introspect(testContext(t), "tok-"+string(rune('a'+i%26))+strings.Repeat("x", i))
	}
	if n := in.cache.len(); n > 10 {
		t.Errorf("cache holds %d entries, want at most 10", n)
	}
}

func TestIntrospectEmptyToken(t *testing.T) {
	p := newIDP(t)
	in := newTestIntrospector(t, p.provider(), Options{})
	if _, err := in.Introspect(testContext(t), ""); !errors.Is(err, ErrInactive) {
		t.Errorf("Introspect(\"\") = %v, want ErrInactive", err)
	}
	if n := p.requests.Load(); n != 0 {
		t.Errorf("%d requests for an empty token, want 0", n)
	}
}

func TestNewIntrospectorRejects(t *testing.T) {
	valid := ir.OAuth2Provider{Name: "idp", IntrospectionURL: "https://idp.example/introspect",
		ClientID: "gw", ClientSecretEnv: testSecretEnv}
	tests := []struct {
		name   string
		modify func(p *ir.OAuth2Provider)
		getenv func(string) string
	}{
		{"secret not set", func(*ir.OAuth2Provider) {}, func(string) string { return "" }},
		{"no secret variable", func(p *ir.OAuth2Provider) { p.ClientSecretEnv = "" }, testGetenv},
		{"no client id", func(p *ir.OAuth2Provider) { p.ClientID = "" }, testGetenv},
		{"relative URL", func(p *ir.OAuth2Provider) { p.IntrospectionURL = "/introspect" }, testGetenv},
		{"other scheme", func(p *ir.OAuth2Provider) { p.IntrospectionURL = "ftp://idp/x" }, testGetenv},
		{"unparsable URL", func(p *ir.OAuth2Provider) { p.IntrospectionURL = "https://idp\x7f/" }, testGetenv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid
			tt.modify(&p)
			if _, err := NewIntrospector(p, Options{Getenv: tt.getenv}); err == nil {
				t.Error("NewIntrospector succeeded, want an error")
			} else if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
	if _, err := NewIntrospector(valid, Options{Getenv: testGetenv}); err != nil {
		t.Errorf("NewIntrospector(valid): %v", err)
	}
}

func TestHasScopes(t *testing.T) {
	r := &Result{Scopes: []string{"read", "write"}}
	tests := []struct {
		name     string
		result   *Result
		required []string
		want     bool
	}{
		{"none required", r, nil, true},
		{"one held", r, []string{"read"}, true},
		{"all held", r, []string{"write", "read"}, true},
		{"one missing", r, []string{"read", "admin"}, false},
		{"prefix is not a scope", r, []string{"rea"}, false},
		{"nil result", nil, nil, false},
		{"no scopes", &Result{}, []string{"read"}, false},
	}
	for _, tt := range tests {
		if got := HasScopes(tt.result, tt.required); got != tt.want {
			t.Errorf("%s: HasScopes = %v, want %v", tt.name, got, tt.want)
		}
	}
}
