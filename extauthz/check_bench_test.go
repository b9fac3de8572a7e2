package extauthz

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/jwttest"
	"github.com/tollgate/tollgate/policy/ir"
)

// benchService returns a service with one inline-JWKS JWT provider and
// API keys in keys.
func benchService(b *testing.B, keys apikey.Store) (*Service, *jwttest.Issuer) {
	b.Helper()
	iss, err := jwttest.New("https://idp.bench/", "api.bench")
	if err != nil {
		b.Fatal(err)
	}
	s := New(context.Background(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Keys: keys})
	b.Cleanup(s.Close)
	cfg := &ir.Config{Auth: ir.Auth{
		JWT: []ir.JWTProvider{{Name: "corp", Issuer: iss.Issuer, Audiences: []string{iss.Audience}, JWKS: iss.JWKS(),
			Algorithms: []string{"RS256"}, ClockSkew: 30 * time.Second, MaxLifetime: 24 * time.Hour, Claims: ir.ClaimMap{UserID: "sub", Roles: "roles"}}},
		APIKeys:         &ir.APIKeys{Header: "x-api-key"},
		IdentityHeaders: ir.IdentityHeaders{UserID: "x-user-id", Roles: "x-user-roles", Tenant: "x-tenant-id", Tier: "x-consumer-tier"},
	}}
	if _, err := s.Swap(cfg); err != nil {
		b.Fatal(err)
	}
	return s, iss
}

func runChecks(b *testing.B, s *Service, reqFor func(i int) map[string]string, methods string) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := s.Check(context.Background(), checkReq(route(methods, "user"), "GET", reqFor(i)))
		if err != nil || resp.GetOkResponse() == nil {
			b.Fatalf("check %d denied: %v %v", i, resp.GetDeniedResponse().GetBody(), err)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	mem := apikey.NewMemoryStore([]byte("bench-pepper-0123456789"))
	s, iss := benchService(b, mem)
	b.Run("jwt_cached", func(b *testing.B) {
		tok, _ := iss.Token("alice", []string{"user"}, time.Hour, 0)
		h := map[string]string{"authorization": "Bearer " + tok}
		runChecks(b, s, func(int) map[string]string { return h }, "jwt")
	})
	b.Run("jwt_first_seen", func(b *testing.B) {
		pool := make([]map[string]string, b.N)
		for i := range pool {
			tok, _ := iss.Token("alice", []string{"user"}, time.Hour, i)
			pool[i] = map[string]string{"authorization": "Bearer " + tok}
		}
		runChecks(b, s, func(i int) map[string]string { return pool[i] }, "jwt")
	})
	b.Run("apikey_memory", func(b *testing.B) {
		key, _, _ := mem.Create(context.Background(), apikey.Record{Consumer: "acme", Roles: []string{"user"}, CreatedAt: time.Now()})
		h := map[string]string{"x-api-key": key}
		runChecks(b, s, func(int) map[string]string { return h }, "apiKey")
	})
	b.Run("apikey_redis_uncached", func(b *testing.B) { benchRedisKey(b) })
}

// benchRedisKey measures an API-key Check that does one Redis round trip.
func benchRedisKey(b *testing.B) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		b.Skip("redis-server not installed")
	}
	addr := harness.StartRedis(b)
	client := redis.NewClient(&redis.Options{Addr: addr})
	st, err := apikey.NewRedisStore(context.Background(), client, []byte("bench-pepper-0123456789"), apikey.RedisOptions{CacheSize: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close(); client.Close() })
	s, _ := benchService(b, st)
	key, _, _ := st.Create(context.Background(), apikey.Record{Consumer: "acme", Roles: []string{"user"}, CreatedAt: time.Now()})
	h := map[string]string{"x-api-key": key}
	runChecks(b, s, func(int) map[string]string { return h }, "apiKey")
}
