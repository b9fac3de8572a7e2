package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/loadgen"
)

// Auth filter of a listener, and how its requests carry tokens.
const (
	authNone   = "none"
	authOurs   = "Tollgate ext_authz"
	authNative = "Envoy jwt_authn"

	tokenNone      = "–"
	tokenSame      = "same token"
	tokenFirstSeen = "first seen"
)

// scenario is one row of an Envoy table.
type scenario struct {
	auth, token string
	port        int
	authz       func() string // Authorization of the next request
	rot         *rotation     // first-seen rows
	// cache returns the auth filter's verification cache hits and misses
	// so far; nil for no auth.
	cache func(context.Context) (int64, int64, error)
	reset func() error // empties our cache before the row; nil for others
}

// result is a measured scenario.
type result struct {
	workers     int
	auth, token string
	load        loadResult
}

// envoySection measures the three listeners of one Envoy per worker count
// in cfg.workers, then compares ours with native.
func envoySection(ctx context.Context, w io.Writer, cfg config, bin string, toks *tokens) error {
	dir, err := os.MkdirTemp("", "tollgate-authz-bench-envoy-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	svc, err := newAuthzService(ctx, apikey.NewMemoryStore([]byte(benchPepper)), toks.jwks)
	if err != nil {
		return err
	}
	defer svc.Close()
	p, stopBackends, err := startBackends(svc)
	if err != nil {
		return err
	}
	defer stopBackends()
	path, err := writeBootstrap(ctx, dir, bin, p, policy(toks.jwks))
	if err != nil {
		return err
	}
	describeEnvoy(w, envoyVersion(ctx, bin), len(toks.pool))
	var results []result
	for _, n := range cfg.workers {
		r, err := envoyRun(ctx, w, cfg, envoyEnv{dir: dir, bin: bin, path: path, ports: p, svc: svc, toks: toks}, n)
		if err != nil {
			return fmt.Errorf("envoy --concurrency %d: %w", n, err)
		}
		results = append(results, r...)
	}
	printRatios(w, results)
	return nil
}

// describeEnvoy prints what the Envoy tables measure.
func describeEnvoy(w io.Writer, version string, pool int) {
	fmt.Fprintf(w, "\nEnd to end through one Envoy %s (static bootstrap, no xDS), three listeners to one Go upstream, "+
		"each starting with the translator's header_mutation filter: %q has no auth filter; %q is the translator's "+
		"ext_authz filter calling the in-process service over gRPC (route requires jwt and role %q); %q has the same "+
		"issuer, audience and inline JWKS, jwt_cache_config size %d (without it jwt_authn caches nothing). %q: every "+
		"request carries a token the verifying cache has not seen (%d distinct tokens cycled; ours emptied every %d, "+
		"Envoy's LRU of %d never holds one again). The last column is each cache's counters over the row and its warm-up.\n",
		version, authNone, authOurs, benchRole, authNative, jwtAuthnCacheSize, tokenFirstSeen, pool, pool/2, jwtAuthnCacheSize)
}

// envoyEnv is what every Envoy run shares.
type envoyEnv struct {
	dir, bin, path string
	ports          ports
	svc            *authzService
	toks           *tokens
}

// envoyRun starts Envoy with the given worker threads, checks that both
// auth listeners deny a missing token and allow a valid one, and measures
// every scenario. Envoy is killed on return.
func envoyRun(ctx context.Context, w io.Writer, cfg config, env envoyEnv, workers int) ([]result, error) {
	p, err := startEnvoy(ctx, env.dir, env.bin, env.path, env.ports.admin, workers)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if err := sanity(ctx, env.ports, env.toks); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "\nEnvoy `--concurrency %d`: %d keep-alive connections, closed loop, %s warm-up + %s per row; "+
		"requests/s, p50 and p99 count 200s only:\n\n", workers, cfg.conns, cfg.loadWarm, cfg.loadDur)
	table(w, "llrrrrr", "auth filter", "token", "requests/s", "p50", "p99", "errors", "verification cache hits/misses")
	var out []result
	var notes []string
	for _, sc := range scenarios(env) {
		lr, cache, err := measureScenario(ctx, cfg, sc)
		if err != nil {
			return nil, fmt.Errorf("%s, %s: %w", sc.auth, sc.token, err)
		}
		row(w, sc.auth, sc.token, perSecond(lr.rate()), micros(lr.p50), micros(lr.p99), group(int64(lr.errs)), cache)
		if lr.firstErr != "" {
			notes = append(notes, fmt.Sprintf("%s, %s: first error: %s", sc.auth, sc.token, lr.firstErr))
		}
		out = append(out, result{workers: workers, auth: sc.auth, token: sc.token, load: lr})
	}
	for _, n := range notes {
		fmt.Fprintf(w, "\n%s\n", n)
	}
	return out, nil
}

// measureScenario runs one row and reports the cache's hits/misses over it
// (warm-up included).
func measureScenario(ctx context.Context, cfg config, sc scenario) (loadResult, string, error) {
	if sc.reset != nil {
		if err := sc.reset(); err != nil {
			return loadResult{}, "", err
		}
	}
	var h0, m0 int64
	var err error
	if sc.cache != nil {
		if h0, m0, err = sc.cache(ctx); err != nil {
			return loadResult{}, "", err
		}
	}
	url := "http://127.0.0.1:" + strconv.Itoa(sc.port) + "/orders/42"
	lr := runLoad(ctx, load{url: url, authz: sc.authz, conns: cfg.conns, warm: cfg.loadWarm, dur: cfg.loadDur})
	if err := ctx.Err(); err != nil {
		return loadResult{}, "", err
	}
	if sc.rot != nil {
		if err := sc.rot.err(); err != nil {
			return loadResult{}, "", err
		}
	}
	if sc.cache == nil {
		return lr, "–", nil
	}
	h1, m1, err := sc.cache(ctx)
	if err != nil {
		return loadResult{}, "", err
	}
	return lr, group(h1-h0) + " / " + group(m1-m0), nil
}

// scenarios are the rows of one Envoy run: no auth, then ours and native
// with the same token on every request, then with a token never seen
// before by the verifying cache on every request.
func scenarios(env envoyEnv) []scenario {
	same := "Bearer " + env.toks.same
	pool := make([]string, len(env.toks.pool))
	for i, t := range env.toks.pool {
		pool[i] = "Bearer " + t
	}
	ours := newRotation(len(pool), env.svc.reset)
	native := newRotation(len(pool), nil)
	nativeCache := func(ctx context.Context) (int64, int64, error) { return envoyJWTCache(ctx, env.ports.admin) }
	p := env.ports
	return []scenario{
		{auth: authNone, token: tokenNone, port: p.plain, authz: func() string { return "" }},
		{auth: authOurs, token: tokenSame, port: p.extAuthz, authz: func() string { return same },
			cache: env.svc.jwtCache, reset: env.svc.reset},
		{auth: authNative, token: tokenSame, port: p.jwtAuthn, authz: func() string { return same }, cache: nativeCache},
		{auth: authOurs, token: tokenFirstSeen, port: p.extAuthz, authz: func() string { return pool[ours.index()] },
			rot: ours, cache: env.svc.jwtCache, reset: env.svc.reset},
		{auth: authNative, token: tokenFirstSeen, port: p.jwtAuthn, authz: func() string { return pool[native.index()] },
			rot: native, cache: nativeCache},
	}
}

// sanity checks that the plain listener lets everything through and that
// both auth listeners deny a request without a token with 401 (so our
// service answered: an unreachable one gives 403) and allow a valid one.
func sanity(ctx context.Context, p ports, toks *tokens) error {
	last := toks.pool[len(toks.pool)-1] // the first-seen rows reach it after the caches forgot it
	checks := []struct {
		port  int
		authz string
		want  int
	}{
		{p.plain, "", http.StatusOK},
		{p.extAuthz, "", http.StatusUnauthorized}, {p.extAuthz, "Bearer " + toks.same, http.StatusOK},
		{p.jwtAuthn, "", http.StatusUnauthorized}, {p.jwtAuthn, "Bearer " + toks.same, http.StatusOK},
		{p.extAuthz, "Bearer " + last, http.StatusOK}, {p.jwtAuthn, "Bearer " + last, http.StatusOK},
	}
	for _, c := range checks {
		url := "http://127.0.0.1:" + strconv.Itoa(c.port) + "/orders/42"
		if got := loadgen.Status(url, c.authz); got != c.want {
			return fmt.Errorf("sanity: GET %s with token %t: status %d, want %d", url, c.authz != "", got, c.want)
		}
	}
	return nil
}
