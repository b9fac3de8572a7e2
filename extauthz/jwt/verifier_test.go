package jwt

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

func TestVerify(t *testing.T) {
	k := sharedKeys()
	clock := newClock()
	now := clock.Now()
	v := newTestVerifier(t, testProviders(t, k), Options{Now: clock.Now, CacheSize: -1})

	valid := func(kv ...any) map[string]any { return claimsAt(now, testIssuer, kv...) }
	rsaKid := map[string]any{"kid": "rsa-1"}
	ecKid := map[string]any{"kid": "ec-1"}
	edKid := map[string]any{"kid": "ed-1"}
	withHdr := func(kv ...any) map[string]any {
		h := map[string]any{"kid": "rsa-1"}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i].(string)] = kv[i+1]
		}
		return h
	}
	good := sign(t, "RS256", k.rsa, rsaKid, valid())
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + encodeJSON(t, valid("sub", "admin")) + "." + parts[2]
	pemSecret := rsaPublicPEM(t, k.rsa)

	tests := []struct {
		name  string
		token string
		want  string // reason; "" means accepted
	}{
		{"RS256 accepted", good, ""},
		{"ES256 accepted", sign(t, "ES256", k.ec256, ecKid, valid()), ""},
		{"EdDSA accepted", sign(t, "EdDSA", k.ed, edKid, valid()), ""},
		{"ES256 without kid accepted", sign(t, "ES256", k.ec256, nil, valid()), ""},
		{"aud array containing an audience accepted", sign(t, "RS256", k.rsa, rsaKid, valid("aud", []string{"x", "other"})), ""},
		{"exp within clock skew accepted", sign(t, "RS256", k.rsa, rsaKid, valid("exp", now.Add(-10*time.Second).Unix())), ""},
		{"HS256 with the configured secret accepted", sign(t, "HS256", []byte(hsSecret), nil, claimsAt(now, hsIssuer)), ""},
		{"JSON with whitespace accepted", signRawHeader(t, "RS256", k.rsa, "{ \"alg\" :\n \"RS256\" , \"kid\":\t\"rsa-1\" }", valid()), ""},
		{"escaped strings accepted", signRawHeader(t, "RS256", k.rsa, `{"alg":"RS\u0032\u00356","kid":"rsa\u002d1"}`, valid("sub", "user\u002d1")), ""},
		{"unknown header member accepted", sign(t, "RS256", k.rsa, withHdr("x5t", "abc"), valid()), ""},

		{"user id with a NUL", sign(t, "RS256", k.rsa, rsaKid, valid("sub", "alice\x00x")), ReasonBadClaim},
		{"user id with a line feed", sign(t, "RS256", k.rsa, rsaKid, valid("sub", "alice\nx")), ReasonBadClaim},
		{"user id with DEL", sign(t, "RS256", k.rsa, rsaKid, valid("sub", "alice\x7f")), ReasonBadClaim},

		{"garbage", "not a token", ReasonMalformed},
		{"empty", "", ReasonMalformed},
		{"two segments", parts[0] + "." + parts[1], ReasonMalformed},
		{"four segments", good + ".x", ReasonMalformed},
		{"JSON serialization", `{"payload":"` + parts[1] + `","signatures":[]}`, ReasonMalformed},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], ReasonMalformed},
		{"header not an object", encodeJSON(t, []string{"RS256"}) + "." + parts[1] + "." + parts[2], ReasonMalformed},
		{"payload not JSON", parts[0] + "." + enc64.EncodeToString([]byte("nope")) + "." + parts[2], ReasonMalformed},
		{"too large", strings.Repeat("a", DefaultMaxTokenBytes+1), ReasonTooLarge},
		{"alg none", sign(t, "none", nil, nil, valid()), ReasonAlgNotAllowed},
		{"alg NoNe", sign(t, "NoNe", nil, nil, valid()), ReasonAlgNotAllowed},
		{"alg not in allow-list", sign(t, "RS384", k.rsa, rsaKid, valid()), ReasonAlgNotAllowed},
		{"PS256 not in allow-list", sign(t, "PS256", k.rsa, rsaKid, valid()), ReasonAlgNotAllowed},
		{"HS256 with RSA public key PEM, provider without HS", sign(t, "HS256", pemSecret, rsaKid, valid()), ReasonAlgNotAllowed},
		{"HS256 with RSA public key PEM, provider with HS", sign(t, "HS256", pemSecret, rsaKid, claimsAt(now, mixedIssuer)), ReasonBadSignature},
		{"HS256 with the wrong secret", sign(t, "HS256", []byte(strings.Repeat("x", 32)), nil, claimsAt(now, hsIssuer)), ReasonBadSignature},
		{"signed by another key", sign(t, "RS256", k.rsaOther, rsaKid, valid()), ReasonBadSignature},
		{"tampered payload", tampered, ReasonBadSignature},
		{"empty signature", parts[0] + "." + parts[1] + ".", ReasonBadSignature},
		{"ES256 naming an RSA kid", sign(t, "ES256", k.ec256, rsaKid, valid()), ReasonBadSignature},
		{"unknown kid", sign(t, "RS256", k.rsa, map[string]any{"kid": "nope"}, valid()), ReasonUnknownKID},
		{"unknown issuer", sign(t, "RS256", k.rsa, rsaKid, valid("iss", "https://evil.example")), ReasonUnknownIssuer},
		{"no issuer", sign(t, "RS256", k.rsa, rsaKid, valid("iss", del{})), ReasonUnknownIssuer},
		{"expired", sign(t, "RS256", k.rsa, rsaKid, valid("exp", now.Add(-2*time.Minute).Unix())), ReasonExpired},
		{"nbf in the future", sign(t, "RS256", k.rsa, rsaKid, valid("nbf", now.Add(5*time.Minute).Unix())), ReasonNotYetValid},
		{"iat in the future", sign(t, "RS256", k.rsa, rsaKid, valid("iat", now.Add(5*time.Minute).Unix())), ReasonNotYetValid},
		{"wrong aud", sign(t, "RS256", k.rsa, rsaKid, valid("aud", "someone-else")), ReasonBadAudience},
		{"aud array without an audience", sign(t, "RS256", k.rsa, rsaKid, valid("aud", []string{"x", "y"})), ReasonBadAudience},
		{"no aud", sign(t, "RS256", k.rsa, rsaKid, valid("aud", del{})), ReasonBadAudience},
		{"no exp", sign(t, "RS256", k.rsa, rsaKid, valid("exp", del{})), ReasonNoExp},
		{"exp not a number", sign(t, "RS256", k.rsa, rsaKid, valid("exp", "tomorrow")), ReasonBadClaim},
		{"lifetime too long", sign(t, "RS256", k.rsa, rsaKid, valid("exp", now.Add(2*time.Hour).Unix())), ReasonLifetimeTooLong},
		{"lifetime too long without iat", sign(t, "RS256", k.rsa, rsaKid, valid("iat", del{}, "exp", now.Add(2*time.Hour).Unix())), ReasonLifetimeTooLong},
		{"crit header", sign(t, "RS256", k.rsa, withHdr("crit", []string{"exp"}, "exp", 1), valid()), ReasonCritUnsupported},
		{"empty crit header", sign(t, "RS256", k.rsa, withHdr("crit", []string{}), valid()), ReasonCritUnsupported},
		{"b64 header", sign(t, "RS256", k.rsa, withHdr("b64", false), valid()), ReasonCritUnsupported},
		{"jku header", sign(t, "RS256", k.rsa, withHdr("jku", "https://evil.example/jwks"), valid()), ReasonEmbeddedKey},
		{"jwk header", sign(t, "RS256", k.rsa, withHdr("jwk", pubJWK(t, "rsa-1", k.rsa, nil)), valid()), ReasonEmbeddedKey},
		{"x5u header", sign(t, "RS256", k.rsa, withHdr("x5u", "https://evil.example/cert"), valid()), ReasonEmbeddedKey},
		{"x5c header", sign(t, "RS256", k.rsa, withHdr("x5c", []string{"MIIB"}), valid()), ReasonEmbeddedKey},
		{"duplicate alg header member", signRawHeader(t, "RS256", k.rsa, `{"alg":"RS256","alg":"RS256","kid":"rsa-1"}`, valid()), ReasonBadSignature},
		{"header alg differs from the signing alg", signRawHeader(t, "HS256", []byte(hsSecret), `{"alg":"RS256","kid":"rsa-1"}`, valid()), ReasonBadSignature},
		{"no user id", sign(t, "RS256", k.rsa, rsaKid, valid("sub", del{})), ReasonBadClaim},
		{"user id not a string", sign(t, "RS256", k.rsa, rsaKid, valid("sub", 42)), ReasonBadClaim},
		{"roles of the wrong type", sign(t, "RS256", k.rsa, rsaKid, valid("roles", map[string]any{"a": 1})), ReasonBadClaim},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Verify(context.Background(), tt.token)
			if got := Reason(err); got != tt.want {
				t.Fatalf("Verify: reason %q (%v), want %q", got, err, tt.want)
			}
			if tt.want != "" {
				var e *Error
				if id != nil || !errors.As(err, &e) {
					t.Fatalf("Verify = %v, %T; want nil, *Error", id, err)
				}
				return
			}
			if id == nil || id.UserID != "user-1" {
				t.Fatalf("Verify = %+v, want the identity of user-1", id)
			}
		})
	}
}

func TestVerifyIdentity(t *testing.T) {
	k := sharedKeys()
	clock := newClock()
	now := clock.Now()
	providers := testProviders(t, k)
	providers[0].Claims = ir.ClaimMap{UserID: "email", Roles: "groups", Tenant: "org", Tier: "plan"}
	v := newTestVerifier(t, providers, Options{Now: clock.Now})

	tests := []struct {
		name   string
		claims map[string]any
		want   Identity
	}{
		{
			name: "array roles and space separated scope",
			claims: claimsAt(now, testIssuer, "email", "a@example.com", "groups", []string{"admin", "", "ops"},
				"org", "acme", "plan", "gold"),
			want: Identity{Provider: "idp", Subject: "user-1", UserID: "a@example.com", Roles: []string{"admin", "ops"},
				Scopes: []string{"read", "write"}, Tenant: "acme", Tier: "gold"},
		},
		{
			name:   "string roles and scp array",
			claims: claimsAt(now, testIssuer, "email", "b@example.com", "groups", "admin, ops  dev", "scope", del{}, "scp", []string{"read"}),
			want: Identity{Provider: "idp", Subject: "user-1", UserID: "b@example.com", Roles: []string{"admin", "ops", "dev"},
				Scopes: []string{"read"}},
		},
		{
			name:   "no optional claims",
			claims: claimsAt(now, testIssuer, "email", "c@example.com", "sub", del{}, "scope", del{}),
			want:   Identity{Provider: "idp", UserID: "c@example.com"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Verify(context.Background(), sign(t, "ES256", k.ec256, map[string]any{"kid": "ec-1"}, tt.claims))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			tt.want.Expiry = time.Unix(tt.claims["exp"].(int64), 0)
			if !identityEqual(*id, tt.want) {
				t.Fatalf("identity = %+v, want %+v", *id, tt.want)
			}
		})
	}
}

func identityEqual(a, b Identity) bool {
	return a.Provider == b.Provider && a.Subject == b.Subject && a.UserID == b.UserID &&
		slices.Equal(a.Roles, b.Roles) && slices.Equal(a.Scopes, b.Scopes) &&
		a.Tenant == b.Tenant && a.Tier == b.Tier && a.Expiry.Equal(b.Expiry)
}

func TestNewVerifierRejectsBadConfig(t *testing.T) {
	k := sharedKeys()
	set := jwks(t, pubJWK(t, "rsa-1", k.rsa, nil))
	base := ir.JWTProvider{Name: "p", Issuer: testIssuer, JWKS: set, Algorithms: []string{"RS256"}}
	with := func(f func(p *ir.JWTProvider)) []ir.JWTProvider {
		p := base
		f(&p)
		return []ir.JWTProvider{p}
	}
	tests := []struct {
		name      string
		providers []ir.JWTProvider
		want      string
	}{
		{"alg none", with(func(p *ir.JWTProvider) { p.Algorithms = []string{"none"} }), `"none" is not supported`},
		{"unknown alg", with(func(p *ir.JWTProvider) { p.Algorithms = []string{"RS1"} }), "not supported"},
		{"no algorithms", with(func(p *ir.JWTProvider) { p.Algorithms = nil }), "no algorithms"},
		{"HS without env", with(func(p *ir.JWTProvider) { p.Algorithms = []string{"HS256"} }), "hmacSecretEnv"},
		{"HS with unset env", with(func(p *ir.JWTProvider) { p.Algorithms, p.HMACSecretEnv = []string{"HS256"}, "UNSET" }), "at least 32 bytes"},
		{"HS512 with a short secret", with(func(p *ir.JWTProvider) { p.Algorithms, p.HMACSecretEnv = []string{"HS512"}, hsSecretEnv }), "at least 64 bytes"},
		{"both key sources", with(func(p *ir.JWTProvider) { p.JWKSURI = "https://idp.example/jwks" }), "exclusive"},
		{"no key source", with(func(p *ir.JWTProvider) { p.JWKS = "" }), "need jwks"},
		{"bad URI", with(func(p *ir.JWTProvider) { p.JWKS, p.JWKSURI = "", "file:///etc/passwd" }), "http(s) URL"},
		{"bad inline JWKS", with(func(p *ir.JWTProvider) { p.JWKS = "{" }), "inline jwks"},
		{"only a symmetric key", with(func(p *ir.JWTProvider) { p.JWKS = jwks(t, pubJWK(t, "k", []byte(hsSecret), nil)) }), "no usable"},
		{"only an encryption key", with(func(p *ir.JWTProvider) { p.JWKS = jwks(t, pubJWK(t, "k", k.rsa, map[string]any{"use": "enc"})) }), "no usable"},
		{"key of another type", with(func(p *ir.JWTProvider) { p.JWKS = jwks(t, pubJWK(t, "k", k.ec256, nil)) }), "no usable"},
		{"no issuer", with(func(p *ir.JWTProvider) { p.Issuer = "" }), "issuer is empty"},
		{"duplicate issuer", append(with(func(*ir.JWTProvider) {}), base), "configured twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier(tt.providers, Options{Getenv: testGetenv})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewVerifier error = %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), hsSecret) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestNewVerifierRejectsNegativeOptions(t *testing.T) {
	for _, opts := range []Options{{RefreshInterval: -1}, {MinRefreshGap: -1}, {MaxTokenBytes: -1}} {
		if _, err := NewVerifier(nil, opts); err == nil {
			t.Errorf("NewVerifier(%+v) succeeded", opts)
		}
	}
}

func TestVerifierLifecycle(t *testing.T) {
	k := sharedKeys()
	clock := newClock()
	v := newTestVerifier(t, testProviders(t, k), Options{Now: clock.Now})
	v.Start(context.Background())
	v.Close()
	v.Close()
	v.Start(context.Background())
	tok := sign(t, "EdDSA", k.ed, map[string]any{"kid": "ed-1"}, claimsAt(clock.Now(), testIssuer))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify after Close with inline keys: %v", err)
	}
}

func TestErrorIs(t *testing.T) {
	err := error(rejectf(ReasonExpired, errors.New("cause")))
	if !errors.Is(err, &Error{Reason: ReasonExpired}) || errors.Is(err, &Error{Reason: ReasonNoExp}) {
		t.Fatalf("errors.Is on %v does not match by reason", err)
	}
	if got := err.Error(); got != "jwt: expired: cause" {
		t.Fatalf("Error() = %q", got)
	}
}
