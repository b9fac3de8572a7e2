package policy

import (
	"fmt"
	"strings"
)

// guardedHeaders are the request headers whose client-sent values the
// gateway must never act on before, or instead of, authentication:
//
//   - the identity headers (auth.identityHeaders, defaults included): the
//     auth layer strips and sets them, but Envoy picks the route before
//     any filter runs, so a route match sees the client's value;
//   - the credential headers: Authorization, Proxy-Authorization and the
//     API-key header (x-api-key, and auth.apiKeys.header when set). A
//     route match on them sees unverified credentials, and a rate-limit
//     key on them writes raw credentials into counter key names.
//
// Cookie is a credential header for rate-limit keys only: Tollgate does
// not authenticate cookies, and matching on one (canary or A/B routing)
// routes on a value everybody knows is the client's.
type guardedHeaders struct {
	identity identitySet
	// credential maps a lower-case header name to what it carries.
	credential map[string]string
}

func newGuardedHeaders(a *Auth) guardedHeaders {
	cred := map[string]string{
		"authorization":       "raw credentials (bearer tokens, `ApiKey <key>`)",
		"proxy-authorization": "raw proxy credentials",
		DefaultAPIKeyHeader:   "raw API keys",
	}
	if a != nil && a.APIKeys != nil && a.APIKeys.Header != "" {
		cred[strings.ToLower(a.APIKeys.Header)] = "the gateway's raw API keys (auth.apiKeys.header)"
	}
	return guardedHeaders{identity: newIdentitySet(a), credential: cred}
}

// matchHeader refuses a route match on a guarded header: a client would
// choose the route by sending it.
func (c *checker) matchHeader(path, name string, g guardedHeaders) {
	lower := strings.ToLower(name)
	if g.identity[lower] {
		c.errorf(path, "match on hosts, path or methods instead, and restrict the route with auth (methods, roles, scopes); "+
			"tier limits come from rateLimits.tiers, not from route matches",
			"header %q is an identity header: Envoy picks the route before the auth layer strips and sets it, "+
				"so any client could pick this route by sending the value the match wants "+
				"(e.g. a free-tier caller sending x-consumer-tier: enterprise)", lower)
		return
	}
	if what, ok := g.credential[lower]; ok {
		c.errorf(path, "match on hosts, path or methods instead, and require the credential with the route's auth (methods, roles, scopes)",
			"header %q carries %s: Envoy picks the route before the credential is verified, so the match would trust "+
				"whatever the client sends", lower, what)
	}
}

// rateLimitKeyHeader reports whether the header a rate-limit key names may
// key limits, and reports it when it carries credentials.
func (c *checker) rateLimitKeyHeader(path, key, name string, g guardedHeaders) bool {
	lower := strings.ToLower(name)
	what, ok := g.credential[lower]
	if lower == "cookie" {
		what, ok = "raw session cookies", true
	}
	if !ok {
		return true
	}
	c.errorf(path, fmt.Sprintf("write `by: [%s]` to limit each authenticated caller (on a public route, `by: [%s]`)", byConsumer, byClientIP),
		"key %q would write %s into the names of the counters in Redis: header %q is a credential header", key, what, lower)
	return false
}
