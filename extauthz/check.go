package extauthz

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/extauthz/jwt"
	"github.com/tollgate/tollgate/extauthz/oauth2"
	"github.com/tollgate/tollgate/policy/ir"
)

// verdict is the outcome of one Check: status 0 allows.
type verdict struct {
	status int
	reason string
	id     *identity
	req    requirement
	token  bool // a credential was presented (for WWW-Authenticate)
}

// Check implements envoy.service.auth.v3.Authorization. It never returns an
// error: every failure is a denial with a status.
func (s *Service) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	attrs := req.GetAttributes()
	v, resp := s.check(ctx, s.table.Load(), attrs.GetContextExtensions(), attrs.GetRequest().GetHttp().GetHeaders())
	s.opts.Metrics.check(v, time.Since(start))
	return resp, nil
}

// check decides one request (the route's context extensions ext, its
// headers as the ext_authz filter sends them) and builds the answer. It is
// the one decision path of Check and Local.Decide.
func (s *Service) check(ctx context.Context, t *Table, ext, headers map[string]string) (verdict, *authv3.CheckResponse) {
	v := s.decide(ctx, t, ext, headers)
	if v.status != 0 {
		return v, denied(v)
	}
	return v, s.respond(ctx, t, v, headers) // ratelimit.go
}

// decide authenticates and authorizes one request.
func (s *Service) decide(ctx context.Context, t *Table, ext, headers map[string]string) verdict {
	if t == nil {
		return verdict{status: 503, reason: "not_ready"}
	}
	rq, ok := parseRequirement(ext)
	if !ok {
		return verdict{status: 403, reason: "no_route_requirement"}
	}
	// Every method needs credentials, OPTIONS included: a CORS preflight
	// never gets here on a route with a CORS policy (Envoy's CORS filter,
	// before ext_authz, answers it), and elsewhere an OPTIONS is an
	// ordinary request that reaches the upstream.
	kind, cred := credential(headers, t.keyHeader)
	v := verdict{req: rq, token: kind != credNone}
	switch kind {
	case credNone:
		v.status, v.reason = 401, "missing_credentials"
	case credAmbiguous:
		v.status, v.reason = 401, "ambiguous_credentials"
	case credUnsupported:
		v.status, v.reason = 401, "unsupported_scheme"
	case credBearer:
		v.id, v.status, v.reason = s.bearer(ctx, t, rq, cred)
	case credAPIKey:
		v.id, v.status, v.reason = s.apiKey(ctx, t, rq, cred)
	}
	if v.status == 0 {
		v.status, v.reason = rq.authorize(v.id)
	}
	return v
}

// bearer authenticates a bearer token: a JWT when it has the JWS shape and
// the route accepts JWTs, otherwise an opaque OAuth 2.0 token.
func (s *Service) bearer(ctx context.Context, t *Table, rq requirement, tok string) (*identity, int, string) {
	if looksLikeJWT(tok) && rq.allows(ir.MethodJWT) && t.jwt != nil {
		return s.verifyJWT(ctx, t, tok)
	}
	if rq.allows(ir.MethodOAuth2) && len(t.oauth2) > 0 {
		return s.introspect(ctx, t, tok)
	}
	return nil, 401, "method_not_allowed"
}

func (s *Service) verifyJWT(ctx context.Context, t *Table, tok string) (*identity, int, string) {
	id, err := t.jwt.Verify(ctx, tok)
	if err != nil {
		var je *jwt.Error
		if errors.As(err, &je) {
			if je.Reason == "jwks_unavailable" {
				return nil, 503, je.Reason
			}
			return nil, 401, je.Reason
		}
		return nil, 401, "invalid_token"
	}
	user := namespaced(id.Namespace, id.UserID)
	return &identity{method: ir.MethodJWT, provider: id.Provider, userID: user, consumer: user,
		roles: s.roles(t, id.Provider, id.Roles), scopes: id.Scopes, tenant: id.Tenant, tier: id.Tier,
		expiry: id.Expiry}, 0, ""
}

// introspect asks the one OAuth 2.0 provider whose token prefix the token
// has; no other provider ever sees it. An unreachable or saturated
// provider denies with 503; an active answer naming no subject with 401.
func (s *Service) introspect(ctx context.Context, t *Table, tok string) (*identity, int, string) {
	in := t.introspector(tok)
	if in == nil {
		return nil, 401, "unknown_token_prefix"
	}
	res, err := in.Introspect(ctx, tok)
	switch {
	case err == nil:
		return s.oauth2Identity(t, in, res)
	case errors.Is(err, oauth2.ErrOverloaded):
		s.opts.Metrics.introspectionRefused(in.Name())
		return nil, 503, "introspection_overloaded"
	case errors.Is(err, oauth2.ErrUnavailable):
		return nil, 503, "introspection_unavailable"
	case errors.Is(err, oauth2.ErrAudience):
		return nil, 401, "bad_audience"
	}
	return nil, 401, "inactive_token"
}

// oauth2Identity is the identity of an active token: the user is its sub,
// username or client_id (the first present), the consumer its client_id
// or else the user, both in the provider's namespace. A token naming none
// of them is refused: it would be an identity without a name.
func (s *Service) oauth2Identity(t *Table, in *oauth2.Introspector, res *oauth2.Result) (*identity, int, string) {
	user := firstOf(res.Subject, res.Username, res.ClientID)
	if user == "" {
		return nil, 401, "no_subject"
	}
	ns := in.Namespace()
	return &identity{method: ir.MethodOAuth2, provider: in.Name(), userID: namespaced(ns, user),
		consumer: namespaced(ns, firstOf(res.ClientID, user)), roles: s.roles(t, in.Name(), res.Roles),
		scopes: res.Scopes, tenant: res.Tenant, tier: res.Tier}, 0, ""
}

// apiKey authenticates an API key against the key store.
func (s *Service) apiKey(ctx context.Context, t *Table, rq requirement, key string) (*identity, int, string) {
	if !rq.allows(ir.MethodAPIKey) || t.keyHeader == "" {
		return nil, 401, "method_not_allowed"
	}
	if s.opts.Keys == nil { // a Local without signed keys: it decides JWT routes only
		return nil, 503, "key_store_unavailable"
	}
	rec, err := s.opts.Keys.Lookup(ctx, key)
	switch {
	case err == nil:
		consumer := rec.Consumer
		if t.keyNamespace != "" {
			consumer = namespaced(t.keyNamespace, consumer)
		}
		id := &identity{method: ir.MethodAPIKey, provider: apiKeyProvider, userID: consumer, consumer: consumer,
			roles: s.roles(t, apiKeyProvider, rec.Roles), tenant: rec.Tenant, tier: rec.Tier, expiry: keyExpiry(rec),
			keyID: rec.ID}
		if t.keyRecords && !apikey.IsSigned(key) && rec.Epoch != "" {
			id.keyRecord = keyRecordOf(rec)
		}
		return id, 0, ""
	case errors.Is(err, apikey.ErrMalformed):
		return nil, 401, "malformed_key"
	case errors.Is(err, apikey.ErrNotFound):
		return nil, 401, "unknown_key"
	case errors.Is(err, apikey.ErrExpired):
		return nil, 401, "expired_key"
	case errors.Is(err, apikey.ErrRevoked):
		return nil, 401, "revoked_key"
	}
	// Per request at debug level only: the store logs its outages once
	// (apikey.RedisStore's circuit breaker), not once per request.
	s.log.Debug("api key store unavailable", "err", err)
	return nil, 503, "key_store_unavailable"
}

// keyRecordOf is rec as the Envoy module learns it (envoymod.KeyRecord
// JSON; a record whose epoch the store could not tell is not published).
func keyRecordOf(rec *apikey.Record) string {
	kr := envoymod.KeyRecord{ID: rec.ID, Consumer: rec.Consumer, Tenant: rec.Tenant, Tier: rec.Tier, Roles: rec.Roles,
		ExpiresAt: rec.ExpiresAt, Epoch: rec.Epoch}
	b, _ := json.Marshal(kr) // strings and a UTC time of a stored record: never fails
	return string(b)
}

// noKeyExpiry is the expiry (Unix seconds, 2100-01-01) of a key that never
// expires: far enough that any cache bound (the Envoy module's
// cacheMaxTtl) comes first, near enough to fit int64 nanoseconds.
const noKeyExpiry = 4102444800

// keyExpiry is the identity expiry of an API key's record: its ExpiresAt,
// or noKeyExpiry for a key without one.
func keyExpiry(rec *apikey.Record) time.Time {
	if rec.ExpiresAt.IsZero() {
		return time.Unix(noKeyExpiry, 0).UTC()
	}
	return rec.ExpiresAt
}

// namespaced is the identity id in namespace ns: "<ns>:<id>". Namespaces
// are policy names, which never contain ':', so the namespace is always
// the part before the first ':'.
func namespaced(ns, id string) string { return ns + ":" + id }

// firstOf returns the first non-empty string.
func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
