package extauthz

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/internal/jwttest"
	"github.com/tollgate/tollgate/policy/ir"
)

const (
	benchPepper = "bench-pepper-0123456789"
	// benchTokenPool is how many distinct tokens jwt_first_seen cycles
	// through; the service's table (and so its verification cache) is
	// replaced, timer stopped, each time the pool wraps.
	benchTokenPool = 1024
)

// BenchmarkCheck measures (*Service).Check on the CheckRequests Envoy
// sends through a route that needs role "user" (context extensions as the
// translator writes them, only the credential header, as the translator's
// allowed_headers let through):
//
//   - jwt_first_seen: an RS256 token the service has not seen (parse,
//     signature, claims), from a pool minted up front;
//   - jwt_cached, and jwt_cached_parallel on every P: the same token,
//     served by the verification cache;
//   - apikey_memory: an API key in the memory store;
//   - apikey_redis: an API key in Redis with the lookup cache off, so one
//     round trip to a local redis-server per Check (skipped without
//     redis-server on PATH).
//
// Metrics are off: this is Check's own cost. bench/authz measures the
// service with metrics on, from several goroutines and through Envoy.
func BenchmarkCheck(b *testing.B) {
	iss, err := jwttest.New("https://idp.bench/", "api.bench")
	if err != nil {
		b.Fatal(err)
	}
	cfg := benchConfig(iss.JWKS())
	mem := apikey.NewMemoryStore([]byte(benchPepper))
	s := benchService(b, mem, cfg)
	tok, err := iss.Token("alice", []string{"user"}, time.Hour, 0)
	if err != nil {
		b.Fatal(err)
	}
	cached := benchRequest(ir.MethodJWT, "authorization", "Bearer "+tok)
	pool := sync.OnceValues(func() ([]*authv3.CheckRequest, error) { return mintRequests(iss, benchTokenPool) })

	b.Run("jwt_first_seen", func(b *testing.B) {
		reqs, err := pool()
		if err != nil {
			b.Fatal(err)
		}
		benchFirstSeen(b, s, cfg, reqs)
	})
	b.Run("jwt_cached", func(b *testing.B) { benchSerial(b, s, cached) })
	b.Run("jwt_cached_parallel", func(b *testing.B) { benchParallel(b, s, cached) })
	b.Run("apikey_memory", func(b *testing.B) { benchSerial(b, s, keyRequest(b, mem)) })
	b.Run("apikey_redis", func(b *testing.B) { benchRedis(b, cfg) })
}

// benchFirstSeen checks each token of reqs once per table, swapping in a
// fresh table (an empty verification cache) each time the pool wraps.
func benchFirstSeen(b *testing.B, s *Service, cfg *ir.Config, reqs []*authv3.CheckRequest) {
	swap := func() {
		if _, err := s.Swap(cfg); err != nil {
			b.Fatal(err)
		}
	}
	swap()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i > 0 && i%len(reqs) == 0 {
			b.StopTimer()
			swap()
			b.StartTimer()
		}
		mustAllow(b, s, reqs[i%len(reqs)])
	}
}

// benchSerial checks req from one goroutine, after one unmeasured check
// that fills the caches.
func benchSerial(b *testing.B, s *Service, req *authv3.CheckRequest) {
	mustAllow(b, s, req)
	b.ReportAllocs()
	for b.Loop() {
		mustAllow(b, s, req)
	}
}

// benchParallel checks req from GOMAXPROCS goroutines.
func benchParallel(b *testing.B, s *Service, req *authv3.CheckRequest) {
	mustAllow(b, s, req)
	var denied atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if resp, err := s.Check(ctx, req); err != nil || resp.GetOkResponse() == nil {
				denied.Add(1)
			}
		}
	})
	if n := denied.Load(); n > 0 {
		b.Fatalf("%d checks denied", n)
	}
}

// benchRedis checks an API key stored in a fresh redis-server, with the
// store's lookup cache off.
func benchRedis(b *testing.B, cfg *ir.Config) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		b.Skip("redis-server not on PATH (make tools)")
	}
	client := redis.NewClient(&redis.Options{Addr: harness.StartRedis(b)})
	b.Cleanup(func() { _ = client.Close() })
	st, err := apikey.NewRedisStore(context.Background(), client, []byte(benchPepper),
		apikey.RedisOptions{Logger: quietLogger(), CacheSize: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	benchSerial(b, benchService(b, st, cfg), keyRequest(b, st))
}

func mustAllow(b *testing.B, s *Service, req *authv3.CheckRequest) {
	resp, err := s.Check(context.Background(), req)
	if err != nil || resp.GetOkResponse() == nil {
		b.Fatalf("check denied: %v %s", err, resp.GetDeniedResponse().GetBody())
	}
}

// benchConfig is one RS256 provider with an inline JWKS (no HTTP), API
// keys in x-api-key, and the default identity headers.
func benchConfig(jwks string) *ir.Config {
	return &ir.Config{Auth: ir.Auth{
		JWT: []ir.JWTProvider{{Name: "corp", Issuer: "https://idp.bench/", Audiences: []string{"api.bench"}, JWKS: jwks,
			Algorithms: []string{"RS256"}, ClockSkew: 30 * time.Second, MaxLifetime: 24 * time.Hour,
			Claims: ir.ClaimMap{UserID: "sub", Roles: "roles"}}},
		APIKeys:         &ir.APIKeys{Header: "x-api-key"},
		IdentityHeaders: ir.IdentityHeaders{UserID: "x-user-id", Roles: "x-user-roles", Tenant: "x-tenant-id", Tier: "x-consumer-tier"},
	}}
}

// benchService returns a service on keys with cfg swapped in.
func benchService(b *testing.B, keys apikey.Store, cfg *ir.Config) *Service {
	b.Helper()
	s := New(context.Background(), Options{Logger: quietLogger(), Keys: keys})
	b.Cleanup(s.Close)
	if _, err := s.Swap(cfg); err != nil {
		b.Fatal(err)
	}
	return s
}

// keyRequest creates an API key with role user in keys and returns the
// request that presents it.
func keyRequest(b *testing.B, keys apikey.Store) *authv3.CheckRequest {
	b.Helper()
	key, _, err := keys.Create(context.Background(), apikey.Record{Consumer: "acme", Roles: []string{"user"}})
	if err != nil {
		b.Fatal(err)
	}
	return benchRequest(ir.MethodAPIKey, "x-api-key", key)
}

// mintRequests signs n distinct tokens on every core (about 1 ms each) and
// returns their requests.
func mintRequests(iss *jwttest.Issuer, n int) ([]*authv3.CheckRequest, error) {
	reqs := make([]*authv3.CheckRequest, n)
	errs := make([]error, runtime.GOMAXPROCS(0))
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := range errs {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && errs[g] == nil; i = int(next.Add(1)) - 1 {
				var tok string
				tok, errs[g] = iss.Token("alice", []string{"user"}, time.Hour, i+1)
				reqs[i] = benchRequest(ir.MethodJWT, "authorization", "Bearer "+tok)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return reqs, nil
}

// benchRequest is Envoy's CheckRequest for GET /orders/42 through a route
// that accepts method and needs role user, carrying one credential header.
func benchRequest(method, header, value string) *authv3.CheckRequest {
	peer := func(port uint32) *authv3.AttributeContext_Peer {
		return &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}},
		}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: peer(51234), Destination: peer(10000),
		ContextExtensions: map[string]string{contract.KeyRoute: "orders", contract.KeyMethods: method, contract.KeyRoles: "user"},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "6f1c3a52-1d8e-4a52-9e43-0c2b8f7d4a10", Method: "GET", Path: "/orders/42", Host: "api.bench",
			Scheme: "http", Protocol: "HTTP/1.1", Headers: map[string]string{header: value},
		}},
	}}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
