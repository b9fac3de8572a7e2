// Command authz benchmarks Tollgate's ext_authz service and prints
// Markdown tables:
//
//  1. Check() in-process, from 2×GOMAXPROCS goroutines for a fixed time
//     per row: decisions/s, p50 and p99 for a JWT seen for the first time
//     (an RS256 signature verification each), a cached JWT, and API keys
//     in Redis (lookup cache off, and the default cache) and in memory.
//  2. End to end through one real Envoy 1.40 started from a static
//     bootstrap built here (no xDS) with three listeners to one Go
//     upstream: no auth, Tollgate's ext_authz (configured with the envoy
//     package builders as the xDS translator configures it), and Envoy's
//     native jwt_authn filter on the same JWKS. A Go closed-loop load
//     generator drives each listener with one token for every request and
//     then with a token never seen before on every request; the last table
//     compares ours with native.
//
// `make bench` runs it; bench/README.md keeps results. Envoy and
// redis-server run in their own process groups and are killed on every
// exit path (and by the kernel if this process dies).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz"
	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/policy/ir"
)

// Identity provider and key-store settings shared by every scenario.
const (
	benchIssuer   = "https://idp.bench.tollgate/"
	benchAudience = "api.bench"
	benchPepper   = "bench-pepper-0123456789"
	benchRole     = "user"
	apiKeyHeader  = "x-api-key"
)

// config holds the driver's knobs; the defaults keep a full run around
// 80 s on 2 cores.
type config struct {
	checkDur  time.Duration // per Check() row
	checkWarm time.Duration // unrecorded calls before each Check() row
	loadWarm  time.Duration // per Envoy row, before measuring
	loadDur   time.Duration // per Envoy row
	conns     int           // keep-alive connections of the load generator
	workers   []int         // Envoy --concurrency values, one Envoy run each
	pool      int           // distinct tokens minted for the "first seen" rows
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "authz bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, os.Stdout, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "authz bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("authz", flag.ContinueOnError)
	var cfg config
	fs.DurationVar(&cfg.checkDur, "check-duration", 3*time.Second, "measured time of each Check() row")
	fs.DurationVar(&cfg.checkWarm, "check-warmup", 200*time.Millisecond, "unrecorded Check() calls before each row")
	fs.DurationVar(&cfg.loadWarm, "warmup", time.Second, "warm-up of each Envoy row")
	fs.DurationVar(&cfg.loadDur, "duration", 5*time.Second, "measured time of each Envoy row")
	fs.IntVar(&cfg.conns, "conns", 16, "keep-alive connections of the load generator")
	fs.IntVar(&cfg.pool, "tokens", 4096, "distinct RS256 tokens minted for the first-seen rows")
	workers := fs.String("concurrency", "1,2", "comma-separated Envoy --concurrency values, one Envoy run each")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	for _, s := range strings.Split(*workers, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil || n < 1 {
			return config{}, fmt.Errorf("-concurrency: bad value %q", s)
		}
		cfg.workers = append(cfg.workers, n)
	}
	if cfg.conns < 1 || cfg.pool < 8*cfg.conns || cfg.pool < 64 {
		return config{}, errors.New("-conns must be at least 1, and -tokens at least 64 and 8×conns")
	}
	return cfg, nil
}

func run(ctx context.Context, w io.Writer, cfg config) error {
	bin, err := envoy.FindBinary()
	if err != nil {
		return fmt.Errorf("find envoy: %w", err)
	}
	toks, err := mintTokens(cfg.pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "machine: %s/%s, %d CPUs (GOMAXPROCS %d), %s; %s; Envoy %s; %s\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(),
		runtime.Version(), envoyVersion(ctx, bin), redisVersion(ctx))
	if err := checkSection(ctx, w, cfg, toks); err != nil {
		return fmt.Errorf("Check() section: %w", err)
	}
	if err := envoySection(ctx, w, cfg, bin, toks); err != nil {
		return fmt.Errorf("Envoy section: %w", err)
	}
	return nil
}

// policy is what `tollgate serve` would compile for one JWT provider with
// an inline JWKS, API keys in a header, and the default identity headers.
func policy(jwks string) *ir.Config {
	return &ir.Config{Auth: ir.Auth{
		JWT: []ir.JWTProvider{{
			Name: "corp", Issuer: benchIssuer, Audiences: []string{benchAudience}, JWKS: jwks,
			Algorithms: []string{"RS256"}, ClockSkew: 30 * time.Second, MaxLifetime: 24 * time.Hour,
			Claims: ir.ClaimMap{UserID: "sub", Roles: "roles"},
		}},
		APIKeys:         &ir.APIKeys{Header: apiKeyHeader},
		IdentityHeaders: ir.IdentityHeaders{UserID: "x-user-id", Roles: "x-user-roles", Tenant: "x-tenant-id", Tier: "x-consumer-tier"},
	}}
}

// authzService is an ext_authz service as `tollgate serve` runs it (with
// its Prometheus metrics, here on a registry of its own) on keys, with
// policy(jwks) swapped in.
type authzService struct {
	*extauthz.Service
	reg  *prometheus.Registry
	jwks string
}

func newAuthzService(ctx context.Context, keys apikey.Store, jwks string) (*authzService, error) {
	reg := prometheus.NewRegistry()
	svc := extauthz.New(ctx, extauthz.Options{Logger: quietLogger(), Keys: keys, Metrics: extauthz.NewMetrics(reg)})
	s := &authzService{Service: svc, reg: reg, jwks: jwks}
	if err := s.reset(); err != nil {
		svc.Close()
		return nil, err
	}
	return s, nil
}

// reset swaps in a fresh table of the same policy: an empty JWT
// verification cache.
func (s *authzService) reset() error {
	if _, err := s.Swap(policy(s.jwks)); err != nil {
		return fmt.Errorf("swap bench policy: %w", err)
	}
	return nil
}

// jwtCache returns the verification cache's hit and miss counts so far.
func (s *authzService) jwtCache(context.Context) (hits, misses int64, err error) {
	mfs, err := s.reg.Gather()
	if err != nil {
		return 0, 0, fmt.Errorf("gather authz metrics: %w", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tollgate_authz_jwt_cache_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				switch {
				case l.GetName() == "result" && l.GetValue() == "hit":
					hits = int64(m.GetCounter().GetValue())
				case l.GetName() == "result" && l.GetValue() == "miss":
					misses = int64(m.GetCounter().GetValue())
				}
			}
		}
	}
	return hits, misses, nil
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return "unknown CPU"
}

// envoyVersion returns the version field of `envoy --version`
// (".../1.40.0/Clean/RELEASE/BoringSSL" → "1.40.0").
func envoyVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "unknown version"
	}
	_, v, _ := strings.Cut(string(out), "version:")
	if parts := strings.Split(strings.TrimSpace(v), "/"); len(parts) > 1 {
		return parts[1]
	}
	return strings.TrimSpace(string(out))
}

// redisVersion returns "redis-server 7.0.15", or says it is missing.
func redisVersion(ctx context.Context) string {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "no redis-server on PATH"
	}
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "redis-server (unknown version)"
	}
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return "redis-server " + v
		}
	}
	return "redis-server (unknown version)"
}
