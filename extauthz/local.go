package extauthz

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

// LocalOptions configure a Local. Options.Keys and Options.RateLimit are
// ignored: a Local has no key store and no rate limiter (see Local).
type LocalOptions struct {
	Options
	// JWKSWait bounds how long one Decide waits for a remote JWKS fetch (a
	// token naming an unknown kid, or a provider whose keys were never
	// loaded). The fetch itself always goes on in the background; a
	// Decide that stops waiting answers 503 jwks_unavailable, as the
	// service does when its caller's deadline ends during the fetch. Zero
	// (the default) never waits: Decide never blocks on the network. A
	// Decide whose context has already ended never waits either (the Envoy
	// module's workers decide so, and park the request while the fetch
	// runs, then decide it again with a context that may wait).
	JWKSWait time.Duration
	// Now is the clock of signed keys' expiries; nil means time.Now.
	Now func() time.Time
}

// Local decides requests in process with the ext_authz service's own
// decision code (Service.check), for Tollgate's Envoy dynamic module. It
// serves one envoymod.FilterConfig: JWT providers, identity headers and,
// with FilterConfig.Keys, signed API keys (apikey.Offline over the
// config's public key, epoch, freshness and exceptions, in the place of
// the key store); no key store, no OAuth 2.0 providers and no rate
// limiter. So:
//   - without Keys, an API key is refused (401 method_not_allowed on a
//     route that does not accept keys, 503 key_store_unavailable on one
//     that does);
//   - with Keys, on a route that accepts keys, a signed key is decided
//     offline and any other API key passes undecided (Decision.Pass), for
//     the ext_authz filter after the module;
//   - an opaque bearer token is refused (method_not_allowed), and a route
//     that takes its rate limits in the Check is 503
//     rate_limit_unavailable: the translator hands the module no such
//     route.
//
// Safe for concurrent use.
type Local struct {
	s    *Service
	t    *Table
	keys bool // FilterConfig.Keys is set: other API keys pass
	wait time.Duration
	// ended is a context that has already ended: the one a Decide passes
	// down when it may not wait.
	ended context.Context
	// Successors (local_derive.go): the config without its exceptions
	// table (LineageOf), the signed-key verifier (nil without Keys), the
	// Table's holders (it is closed when the last Local using it closes).
	base    envoymod.FilterConfig
	offline *apikey.Offline
	now     func() time.Time
	holders *tableHolders
	closed  atomic.Bool
	// learned is the lineage's learned opaque keys (local_learned.go);
	// nil without signed keys.
	learned *learnedKeys
}

// NewLocal builds a Local for cfg and starts its remote JWKS fetches in
// the background (until Close or the end of ctx). It fails when a JWT
// provider cannot be set up, or cfg.Keys is set without cfg.KeyHeader or
// with a public key that is not an Ed25519 key.
func NewLocal(ctx context.Context, cfg envoymod.FilterConfig, opts LocalOptions) (*Local, error) {
	o := opts.Options
	o.Keys, o.RateLimit = nil, nil
	if cfg.Keys != nil {
		if cfg.KeyHeader == "" {
			return nil, fmt.Errorf("extauthz: local decisions: signed keys without a key header (API keys not configured)")
		}
		v, err := offlineKeys(*cfg.Keys, opts.Now)
		if err != nil {
			return nil, fmt.Errorf("extauthz: local decisions: %w", err)
		}
		o.Keys = localKeys{v}
	}
	s := New(ctx, o)
	t, err := localTable(ctx, cfg, s.opts)
	if err != nil {
		return nil, err
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	l := &Local{s: s, t: t, keys: cfg.Keys != nil, wait: max(opts.JWKSWait, 0), ended: ended, base: LineageOf(cfg),
		now: opts.Now, holders: &tableHolders{}}
	if k, ok := o.Keys.(localKeys); ok {
		l.offline, l.learned = k.offline, newLearnedKeys(cmp.Or(cfg.CacheSize, envoymod.DefaultCacheSize))
	}
	l.holders.n.Store(1)
	return l, nil
}

// localTable builds the Table of a Local serving cfg.
func localTable(ctx context.Context, cfg envoymod.FilterConfig, opts Options) (*Table, error) {
	auth := ir.Auth{JWT: cfg.JWT, IdentityHeaders: cfg.IdentityHeaders}
	if cfg.KeyHeader != "" {
		auth.APIKeys = &ir.APIKeys{Header: cfg.KeyHeader}
		if cfg.Keys != nil {
			auth.APIKeys.Namespace = cfg.Keys.Namespace
		}
	}
	t, err := newTable(ctx, &ir.Config{Auth: auth}, opts, true)
	if err != nil {
		return nil, fmt.Errorf("extauthz: local decisions: %w", err)
	}
	return t, nil
}

// offlineKeys is the verifier of k's signed keys.
func offlineKeys(k envoymod.Keys, now func() time.Time) (*apikey.Offline, error) {
	exc := make([]apikey.Exception, 0, len(k.Exceptions))
	for _, x := range k.Exceptions {
		e := apikey.Exception{ID: x.ID, Revoked: x.Revoked, Tier: x.Tier, Roles: x.Roles}
		if x.ExpiresAt != 0 {
			e.ExpiresAt = time.Unix(x.ExpiresAt, 0).UTC()
		}
		exc = append(exc, e)
	}
	v, err := apikey.NewOffline(apikey.OfflineConfig{PublicKey: k.PublicKey, Epoch: k.Epoch, Fresh: k.Fresh,
		Exceptions: exc, Now: now})
	if err != nil {
		return nil, fmt.Errorf("signed keys: %w", err)
	}
	return v, nil
}

// Close releases the Local; the background JWKS fetches stop when the
// last Local sharing them (Derive) is closed. A second Close does nothing.
func (l *Local) Close() {
	if l.closed.Swap(true) {
		return
	}
	if l.holders.n.Add(-1) == 0 {
		l.t.close()
	}
}

// WaitKeys waits until ctx ends for the first fetch of each remote JWKS
// (see jwt.Verifier.WaitKeys): a Decide never waits for the network, so a
// Local that serves before its keys arrived refuses every token with 503
// jwks_unavailable. It returns why a provider's keys are still missing
// (nil when all are loaded, or the policy has no remote JWKS).
func (l *Local) WaitKeys(ctx context.Context) error {
	if l.t.jwt == nil {
		return nil
	}
	return l.t.jwt.WaitKeys(ctx)
}

// JWKSFetching reports whether a remote JWKS fetch is under way (see
// jwt.Verifier.Fetching): a Decide that answered 503 jwks_unavailable
// without waiting (JWKSWait elapsed, or its context had ended) would be
// decided by that fetch, and a Decide that may wait joins it.
func (l *Local) JWKSFetching() bool {
	return l.t.jwt != nil && l.t.jwt.Fetching()
}

// Header is one header name and value.
type Header struct {
	Name, Value string
}

// Decision is a Local's answer, exactly the content of the CheckResponse
// the ext_authz service gives the same request.
type Decision struct {
	// Status is 0 for an allowed request, else the HTTP status of the
	// denial (401, 403, 503).
	Status int
	// Reason is a denial's short reason code ("" when allowed).
	Reason string
	// Body and Headers are a denial's response body and headers
	// (content-type, cache-control, and www-authenticate for a 401).
	Body    string
	Headers []Header
	// Set are the request headers an allowed request gets (overwriting),
	// Remove the request headers it loses.
	Set    []Header
	Remove []string
	// Metadata is an allowed request's dynamic metadata in the ext_authz
	// filter's namespace (envoy.ExtAuthzName), sorted by key: the identity (route, method,
	// consumer, user_id, tenant, tier, roles).
	Metadata []Header
	// Roles and Scopes are the allowed caller's (roles as published:
	// invalid ones dropped), for checking another route's requirement
	// against the same identity.
	Roles, Scopes []string
	// Expiry is when the identity must no longer be reused: the verified
	// JWT's exp, a signed key's expiry (its exp or its exception's, the
	// earliest; a far time, after any cache bound, for a key without one);
	// zero for other methods.
	Expiry time.Time
	// KeyID is an allowed API key's id (its jti for a signed key; "" for
	// other methods): what a revocation or update of the key names.
	KeyID string
	// Pass: the module does not decide this request (an API key not in
	// signed form on a route that accepts keys, with FilterConfig.Keys):
	// it goes on untouched to the ext_authz filter. Nothing else is set.
	Pass bool
}

// Decide decides one request: ext is the route's requirement (the context
// extensions the ext_authz filter would send, envoymod.RouteConfig),
// headers the request headers as that filter would send them (lower-case
// names, repeated headers joined with ","). It never blocks on the network
// for longer than LocalOptions.JWKSWait.
//
// An opaque API key the Local learned (Learn) is decided with its learned
// record, and its Decision.Expiry is at the latest the record's end of
// use; one it did not learn passes (Decision.Pass).
func (l *Local) Decide(ctx context.Context, ext, headers map[string]string) Decision {
	return l.decide(ctx, ext, headers, true)
}

// DecideUnlearned is Decide using no learned record: every opaque API key
// passes (a route whose limits the ext_authz Check takes:
// envoymod.RouteConfig.CheckLimits).
func (l *Local) DecideUnlearned(ctx context.Context, ext, headers map[string]string) Decision {
	return l.decide(ctx, ext, headers, false)
}

// decide is Decide, with learned records when learned is set.
func (l *Local) decide(ctx context.Context, ext, headers map[string]string, learned bool) Decision {
	hit, pass := l.passes(ext, headers, learned)
	if pass {
		return Decision{Pass: true}
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	if hit != nil {
		ctx = context.WithValue(ctx, learnedCtxKey{}, *hit)
	}
	v, resp := l.s.check(ctx, l.t, ext, headers)
	d := decisionOf(resp)
	if v.status == 0 && v.id != nil {
		d.Roles, d.Scopes, d.Expiry, d.KeyID = v.id.roles, v.id.scopes, v.id.expiry, v.id.keyID
		if hit != nil && d.Expiry.After(hit.lk.until) {
			d.Expiry = hit.lk.until
		}
	}
	return d
}

// passes reports whether the request is not the Local's to decide: with
// signed keys configured, its credential is an API key not in signed form,
// which the Local has not learned (learnedFor), and its route accepts keys
// (where the service would look the key up). A learned key's record is
// returned for the decision.
func (l *Local) passes(ext, headers map[string]string, learned bool) (*learnedHit, bool) {
	if !l.keys || l.t.keyHeader == "" {
		return nil, false
	}
	kind, key := credential(headers, l.t.keyHeader)
	if kind != credAPIKey || apikey.IsSigned(key) {
		return nil, false
	}
	rq, ok := parseRequirement(ext)
	if !ok || !rq.allows(ir.MethodAPIKey) {
		return nil, false
	}
	if lk, ok := l.learnedFor(key); ok && learned {
		return &learnedHit{key: key, lk: lk}, false
	}
	return nil, true
}

// bound limits the wait for a JWKS fetch: with no wait, a context that has
// already ended (the Verifier then starts or joins the fetch and returns at
// once; nothing else in a Local's decision reads the context).
//
// A ctx that has already ended is used as it is (no timer): a caller with
// a JWKSWait that must not wait for this decision passes one.
func (l *Local) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	switch {
	case l.wait <= 0:
		return l.ended, func() {}
	case ctx.Err() != nil:
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, l.wait)
}

// Unavailable is the service's 503 denial with reason, for a caller of
// Decide that cannot decide at all (e.g. an internal error).
func Unavailable(reason string) Decision {
	return decisionOf(denied(verdict{status: 503, reason: reason}))
}

// decisionOf reads a CheckResponse into a Decision.
func decisionOf(resp *authv3.CheckResponse) Decision {
	if dr := resp.GetDeniedResponse(); dr != nil {
		return Decision{Status: int(dr.GetStatus().GetCode()), Reason: resp.GetStatus().GetMessage(),
			Body: dr.GetBody(), Headers: headersOf(dr.GetHeaders())}
	}
	ok := resp.GetOkResponse()
	d := Decision{Set: headersOf(ok.GetHeaders()), Remove: ok.GetHeadersToRemove()}
	for k, v := range resp.GetDynamicMetadata().GetFields() {
		d.Metadata = append(d.Metadata, Header{Name: k, Value: v.GetStringValue()})
	}
	slices.SortFunc(d.Metadata, func(a, b Header) int { return cmp.Compare(a.Name, b.Name) })
	return d
}

func headersOf(hs []*corev3.HeaderValueOption) []Header {
	out := make([]Header, 0, len(hs))
	for _, h := range hs {
		out = append(out, Header{Name: h.GetHeader().GetKey(), Value: h.GetHeader().GetValue()})
	}
	return out
}
