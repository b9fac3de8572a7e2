package main

import (
	"context"
	"errors"
	"fmt"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tollgate/tollgate/extauthz/apikey"
)

// closers are cleanups, run last first.
type closers []func()

func (c *closers) add(f func()) { *c = append(*c, f) }

// close runs the cleanups; a pointer receiver, so that `defer cl.close()`
// sees the cleanups added after the defer statement.
func (c *closers) close() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

// checkCases builds the rows of the Check() table: JWT first seen and
// cached, API keys in Redis (lookup cache off, default cache) and in
// memory. It returns notes on rows it had to skip.
func checkCases(ctx context.Context, dir string, toks *tokens, cl *closers) ([]checkCase, []string, error) {
	mem := apikey.NewMemoryStore([]byte(benchPepper))
	memSvc, err := newAuthzService(ctx, mem, toks.jwks)
	if err != nil {
		return nil, nil, err
	}
	cl.add(memSvc.Close)
	cases := jwtCases(memSvc, toks)
	rc, err := redisCases(ctx, dir, toks.jwks, cl)
	var skipped []string
	switch {
	case errors.Is(err, errNoRedis):
		skipped = append(skipped, "API key rows in Redis skipped: "+err.Error())
	case err != nil:
		return nil, nil, err
	}
	mc, err := apiKeyCase(ctx, "API key, memory store", memSvc, mem)
	if err != nil {
		return nil, nil, err
	}
	return append(append(cases, rc...), mc), skipped, nil
}

// jwtCases are the first-seen row (a new token on every call, from the
// pool, with the verification cache emptied once per cycle) and the
// cached row (the same token on every call).
func jwtCases(svc *authzService, toks *tokens) []checkCase {
	pool := make([]*authv3.CheckRequest, len(toks.pool))
	for i, t := range toks.pool {
		pool[i] = checkRequest("jwt", "authorization", "Bearer "+t)
	}
	rot := newRotation(len(pool), svc.reset)
	same := checkRequest("jwt", "authorization", "Bearer "+toks.same)
	return []checkCase{
		{name: "JWT, first seen (RS256 signature verified)", svc: svc, rot: rot,
			next: func() *authv3.CheckRequest { return pool[rot.index()] }},
		{name: "JWT, cached (same token)", svc: svc, next: func() *authv3.CheckRequest { return same }},
	}
}

// redisCases start redis-server and return the two Redis API-key rows.
func redisCases(ctx context.Context, dir, jwks string, cl *closers) ([]checkCase, error) {
	rs, err := startRedis(ctx, dir)
	if err != nil {
		return nil, err
	}
	cl.add(rs.stop)
	var cases []checkCase
	for _, v := range []struct {
		name      string
		cacheSize int
	}{
		{"API key, Redis, lookup cache off (one round trip)", -1},
		{fmt.Sprintf("API key, Redis, default lookup cache (%s TTL)", apikey.DefaultCacheTTL), 0},
	} {
		st, err := apikey.NewRedisStore(ctx, rs.client, []byte(benchPepper),
			apikey.RedisOptions{Logger: quietLogger(), CacheSize: v.cacheSize})
		if err != nil {
			return nil, fmt.Errorf("redis key store: %w", err)
		}
		cl.add(func() { _ = st.Close() })
		svc, err := newAuthzService(ctx, st, jwks)
		if err != nil {
			return nil, err
		}
		cl.add(svc.Close)
		c, err := apiKeyCase(ctx, v.name, svc, st)
		if err != nil {
			return nil, err
		}
		c.redis = rs
		cases = append(cases, c)
	}
	return cases, nil
}
