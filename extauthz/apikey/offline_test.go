package apikey

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const offlineEpoch = "Epoch0123456"

// offlineNow is the clock of the offline tests.
var offlineNow = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

// signClaims signs arbitrary claims with sig's key, as sign does for a
// record: header as given (nil: the signer's).
func signClaims(t *testing.T, sig *Signer, header map[string]any, claims map[string]any) string {
	t.Helper()
	h := sig.header
	if header != nil {
		b, err := json.Marshal(header)
		if err != nil {
			t.Fatal(err)
		}
		h = b64(b)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := h + "." + b64(p)
	return SignedKeyPrefix + input + "." + b64(ed25519.Sign(sig.priv, []byte(input)))
}

// signRaw signs payload kept byte for byte (invalid UTF-8 and escapes
// survive) under sig's header.
func signRaw(sig *Signer, payload string) string {
	input := sig.header + "." + b64([]byte(payload))
	return SignedKeyPrefix + input + "." + b64(ed25519.Sign(sig.priv, []byte(input)))
}

// rawPayload is a valid payload whose tnt is the raw JSON string body v.
func rawPayload(v string) string {
	return `{"iss":"tollgate:keys","sub":"alice","jti":"27rPErmv","iat":1,"tnt":"` + v + `","ep":"` + offlineEpoch + `"}`
}

// baseClaims are valid claims, changed by over (a nil value deletes).
func baseClaims(over map[string]any) map[string]any {
	c := map[string]any{"iss": SignedKeyIssuer, "sub": "alice", "jti": "27rPErmv", "iat": offlineNow.Add(-time.Hour).Unix(),
		"exp": offlineNow.Add(time.Hour).Unix(), "tnt": "acme", "tier": "pro", "roles": []string{"user", "admin"}, "ep": offlineEpoch}
	for k, v := range over {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func newTestOffline(t *testing.T, sig *Signer, mod func(*OfflineConfig)) *Offline {
	t.Helper()
	cfg := OfflineConfig{PublicKey: b64(sig.PublicKey()), Epoch: offlineEpoch, Fresh: true,
		Now: func() time.Time { return offlineNow }}
	if mod != nil {
		mod(&cfg)
	}
	o, err := NewOffline(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestOfflineLookup: every acceptance and refusal of a signed key, as the
// filter path's jwt_authn and key identity script decide it.
func TestOfflineLookup(t *testing.T) {
	sig, other := mustSigner(t, testPepper), mustSigner(t, otherPepper)
	exp := offlineNow.Add(time.Hour).Truncate(time.Second)
	minted, err := sig.sign(Record{ID: "27rPErmv", Consumer: "bob", Tier: "gold", Roles: []string{"r"},
		CreatedAt: offlineNow.Add(-time.Minute), ExpiresAt: exp}, offlineEpoch)
	if err != nil {
		t.Fatal(err)
	}
	valid := signClaims(t, sig, nil, baseClaims(nil))
	parts := strings.Split(valid, ".")
	flipped := []byte(parts[3])
	flipped[10] ^= 1 // stays base64url
	if flipped[10] == '.' {
		t.Fatal("bad flip")
	}
	tamperedSig := strings.Join(append(parts[:3:3], string(flipped)), ".")
	otherClaims := b64([]byte(`{"iss":"tollgate:keys","sub":"mallory","jti":"27rPErmv","ep":"` + offlineEpoch + `"}`))
	tamperedClaims := strings.Join([]string{parts[0], parts[1], otherClaims, parts[3]}, ".")
	noneHeader := signClaims(t, sig, map[string]any{"alg": "none"}, baseClaims(nil))
	soon := offlineNow.Add(time.Minute)
	exc := []Exception{{ID: "Revoked1", Revoked: true}, {ID: "Updated1", Tier: "basic", Roles: []string{"x", "bad role"}, ExpiresAt: soon},
		{ID: "Expired1", ExpiresAt: offlineNow}, {ID: "BadTier1", Tier: "a\tb"}, {ID: "Cleared1"}}
	want := &Record{ID: "27rPErmv", Consumer: "alice", Tenant: "acme", Tier: "pro", Roles: []string{"user", "admin"},
		Format: FormatSigned, CreatedAt: offlineNow.Add(-time.Hour), ExpiresAt: offlineNow.Add(time.Hour),
		TokenExpiresAt: offlineNow.Add(time.Hour)}
	with := func(f func(r *Record)) *Record {
		r := *want
		r.Roles = append([]string(nil), want.Roles...)
		f(&r)
		return &r
	}
	tests := []struct {
		name string
		key  string
		mod  func(*OfflineConfig)
		want *Record
		err  error // nil: allowed; errUnavailableTest: wraps ErrUnavailable
	}{
		{"minted by the signer", minted, nil, &Record{ID: "27rPErmv", Consumer: "bob", Tier: "gold", Roles: []string{"r"},
			Format: FormatSigned, CreatedAt: offlineNow.Add(-time.Minute), ExpiresAt: exp, TokenExpiresAt: exp}, nil},
		{"valid", valid, nil, want, nil},
		{"no exp, roles as a string, invalid roles dropped", signClaims(t, sig, nil, baseClaims(map[string]any{"exp": nil,
			"roles": "a b,c\x01d"})), nil, with(func(r *Record) { r.ExpiresAt, r.TokenExpiresAt, r.Roles = time.Time{}, time.Time{}, []string{"a", "b"} }), nil},
		{"roles as an object: none", signClaims(t, sig, nil, baseClaims(map[string]any{"roles": map[string]any{"a": "b"}})), nil,
			with(func(r *Record) { r.Roles = nil }), nil},
		{"tenant with a tab", signClaims(t, sig, nil, baseClaims(map[string]any{"tnt": "a\tb"})), nil,
			with(func(r *Record) { r.Tenant = "a\tb" }), nil},
		{"within the clock skew", signClaims(t, sig, nil, baseClaims(map[string]any{"exp": offlineNow.Add(-time.Second).Unix()})), nil,
			with(func(r *Record) {
				r.ExpiresAt, r.TokenExpiresAt = offlineNow.Add(-time.Second), offlineNow.Add(-time.Second)
			}), nil},
		{"tenant with a surrogate pair", signRaw(sig, rawPayload(`a\ud83d\ude00b`)), nil, &Record{ID: "27rPErmv", Consumer: "alice",
			Tenant: "a\U0001F600b", Format: FormatSigned, CreatedAt: time.Unix(1, 0).UTC()}, nil},
		{"nbf within the skew", signClaims(t, sig, nil, baseClaims(map[string]any{"nbf": offlineNow.Add(time.Second).Unix()})), nil, want, nil},
		{"tenant not UTF-8", signRaw(sig, rawPayload("a\xffb")), nil, nil, ErrMalformed},
		{"tenant overlong UTF-8", signRaw(sig, rawPayload("a\xc0\xafb")), nil, nil, ErrMalformed},
		{"tenant with a lone surrogate", signRaw(sig, rawPayload(`a\ud800b`)), nil, nil, ErrMalformed},
		{"tenant with a lone low surrogate", signRaw(sig, rawPayload(`a\udc00b`)), nil, nil, ErrMalformed},
		{"an escaped backslash before u", signRaw(sig, rawPayload(`a\\ud800b`)), nil, &Record{ID: "27rPErmv", Consumer: "alice",
			Tenant: `a\ud800b`, Format: FormatSigned, CreatedAt: time.Unix(1, 0).UTC()}, nil},
		{"claims not an object", signRaw(sig, `["a"]`), nil, nil, ErrMalformed},
		{"trailing data after the claims", signRaw(sig, rawPayload("t")+"{}"), nil, nil, ErrMalformed},
		{"aud a number", signClaims(t, sig, nil, baseClaims(map[string]any{"aud": 1})), nil, nil, ErrMalformed},
		{"aud strings", signClaims(t, sig, nil, baseClaims(map[string]any{"aud": []string{"a", "b"}})), nil, want, nil},
		{"kid a number", signClaims(t, sig, map[string]any{"alg": "EdDSA", "kid": 1}, baseClaims(nil)), nil, nil, ErrMalformed},
		{"jti a number", signClaims(t, sig, nil, baseClaims(map[string]any{"jti": 12345678})), nil, nil, ErrMalformed},
		{"iat negative", signClaims(t, sig, nil, baseClaims(map[string]any{"iat": -1})), nil, nil, ErrMalformed},
		{"nbf in the future", signClaims(t, sig, nil, baseClaims(map[string]any{"nbf": offlineNow.Add(2 * time.Second).Unix()})), nil, nil, ErrNotFound},
		{"expired before the signature", strings.Join(append(strings.Split(signClaims(t, sig, nil,
			baseClaims(map[string]any{"exp": offlineNow.Add(-time.Hour).Unix()})), ".")[:3], strings.Repeat("A", 86)), "."), nil, nil, ErrExpired},
		{"forged and malformed: the signature first", strings.Join(append(strings.Split(signClaims(t, sig, nil,
			baseClaims(map[string]any{"jti": "bad"})), ".")[:3], strings.Repeat("A", 86)), "."), nil, nil, ErrNotFound},
		{"a short signature", strings.Join(append(parts[:3:3], "AAAA"), "."), nil, nil, ErrNotFound},
		{"opaque", "tg_27rPErmv_" + strings.Repeat("a", 32) + "_000000", nil, nil, ErrNotSigned},
		{"tampered signature", tamperedSig, nil, nil, ErrNotFound},
		{"tampered claims", tamperedClaims, nil, nil, ErrNotFound},
		{"another signer", signClaims(t, other, nil, baseClaims(nil)), nil, nil, ErrNotFound},
		{"alg none", noneHeader, nil, nil, ErrMalformed},
		{"too long", signClaims(t, sig, nil, baseClaims(map[string]any{"tnt": strings.Repeat("t", MaxSignedKeyLen)})), nil, nil, ErrMalformed},
		{"two parts", "tg." + parts[1] + "." + parts[2], nil, nil, ErrMalformed},
		{"expired beyond the skew", signClaims(t, sig, nil, baseClaims(map[string]any{"exp": offlineNow.Add(-2 * time.Second).Unix()})), nil, nil, ErrExpired},
		{"exp not an integer", signClaims(t, sig, nil, baseClaims(map[string]any{"exp": 1.5})), nil, nil, ErrMalformed},
		{"exp a string", signClaims(t, sig, nil, baseClaims(map[string]any{"exp": "1"})), nil, nil, ErrMalformed},
		{"sub not a consumer", signClaims(t, sig, nil, baseClaims(map[string]any{"sub": "a b"})), nil, nil, ErrMalformed},
		{"sub too long", signClaims(t, sig, nil, baseClaims(map[string]any{"sub": strings.Repeat("a", 129)})), nil, nil, ErrMalformed},
		{"sub a number", signClaims(t, sig, nil, baseClaims(map[string]any{"sub": 7})), nil, nil, ErrMalformed},
		{"bad jti", signClaims(t, sig, nil, baseClaims(map[string]any{"jti": "short"})), nil, nil, ErrMalformed},
		{"wrong iss", signClaims(t, sig, nil, baseClaims(map[string]any{"iss": "other"})), nil, nil, ErrMalformed},
		{"tier not a name", signClaims(t, sig, nil, baseClaims(map[string]any{"tier": "Gold"})), nil, nil, ErrMalformed},
		{"tier a number", signClaims(t, sig, nil, baseClaims(map[string]any{"tier": 1})), nil, nil, ErrMalformed},
		{"tenant with a newline", signClaims(t, sig, nil, baseClaims(map[string]any{"tnt": "a\nb"})), nil, nil, ErrMalformed},
		{"roles with a number", signClaims(t, sig, nil, baseClaims(map[string]any{"roles": []any{"a", 1}})), nil, nil, ErrMalformed},
		{"roles a number", signClaims(t, sig, nil, baseClaims(map[string]any{"roles": 1})), nil, nil, ErrMalformed},
		{"not fresh", valid, func(c *OfflineConfig) { c.Fresh = false }, nil, ErrUnavailable},
		{"malformed before not fresh", signClaims(t, sig, nil, baseClaims(map[string]any{"tier": "Gold"})),
			func(c *OfflineConfig) { c.Fresh = false }, nil, ErrMalformed},
		{"another epoch", valid, func(c *OfflineConfig) { c.Epoch = "Epoch9999999" }, nil, ErrNotFound},
		{"no epoch", valid, func(c *OfflineConfig) { c.Epoch = "" }, nil, ErrNotFound},
		{"no ep claim", signClaims(t, sig, nil, baseClaims(map[string]any{"ep": nil})), nil, nil, ErrNotFound},
		{"ep a number", signClaims(t, sig, nil, baseClaims(map[string]any{"ep": 1})), nil, nil, ErrNotFound},
		{"revoked", signClaims(t, sig, nil, baseClaims(map[string]any{"jti": "Revoked1"})), func(c *OfflineConfig) { c.Exceptions = exc }, nil, ErrRevoked},
		{"exception expired", signClaims(t, sig, nil, baseClaims(map[string]any{"jti": "Expired1"})), func(c *OfflineConfig) { c.Exceptions = exc }, nil, ErrExpired},
		{"exception tier unusable", signClaims(t, sig, nil, baseClaims(map[string]any{"jti": "BadTier1"})), func(c *OfflineConfig) { c.Exceptions = exc }, nil, ErrMalformed},
		{"exception replaces tier, roles and expiry", signClaims(t, sig, nil, baseClaims(map[string]any{"jti": "Updated1"})),
			func(c *OfflineConfig) { c.Exceptions = exc }, with(func(r *Record) {
				r.ID, r.Tier, r.Roles, r.ExpiresAt = "Updated1", "basic", []string{"x"}, soon
			}), nil},
		{"exception clears tier and roles", signClaims(t, sig, nil, baseClaims(map[string]any{"jti": "Cleared1"})),
			func(c *OfflineConfig) { c.Exceptions = exc }, with(func(r *Record) { r.ID, r.Tier, r.Roles = "Cleared1", "", nil }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newTestOffline(t, sig, tt.mod).Lookup(context.Background(), tt.key)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || got != nil {
					t.Fatalf("Lookup = %+v, %v; want %v", got, err, tt.err)
				}
				if strings.Contains(err.Error(), tt.key) || strings.Contains(err.Error(), "alice") {
					t.Errorf("the error %q holds the key or a claim", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Lookup = %+v, %v\nwant %+v", got, err, tt.want)
			}
		})
	}
}

// TestOfflineNotFreshIsNoVerdict: the service maps only the sentinel
// errors to 401s; a stale table must be none of them.
func TestOfflineNotFreshIsNoVerdict(t *testing.T) {
	sig := mustSigner(t, testPepper)
	o := newTestOffline(t, sig, func(c *OfflineConfig) { c.Fresh = false })
	_, err := o.Lookup(context.Background(), signClaims(t, sig, nil, baseClaims(nil)))
	for _, s := range []error{ErrMalformed, ErrNotFound, ErrExpired, ErrRevoked, ErrNotSigned} {
		if errors.Is(err, s) {
			t.Fatalf("%v wraps %v", err, s)
		}
	}
}

// TestNewOfflineRefusesBadKeys: the public key must be 32 bytes of
// unpadded base64url.
func TestNewOfflineRefusesBadKeys(t *testing.T) {
	for _, pk := range []string{"", "abc", b64(make([]byte, 31)), b64(make([]byte, 33)),
		base64.URLEncoding.EncodeToString(make([]byte, 32))} {
		if _, err := NewOffline(OfflineConfig{PublicKey: pk}); err == nil {
			t.Errorf("NewOffline accepted public key %q", pk)
		}
	}
}

// FuzzOfflineLookup: Lookup never panics; an error is one of its
// contract's; it accepts only a key whose signature verifies (the fuzzer
// cannot forge one: an accepted input is a seed's signing input with its
// signature), and a record it returns holds claims a key identity script
// would accept.
func FuzzOfflineLookup(f *testing.F) {
	sig := mustSigner(f, testPepper)
	o, err := NewOffline(OfflineConfig{PublicKey: b64(sig.PublicKey()), Epoch: offlineEpoch, Fresh: true,
		Exceptions: []Exception{{ID: "Revoked1", Revoked: true}}, Now: func() time.Time { return offlineNow }})
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []map[string]any{baseClaims(nil), baseClaims(map[string]any{"jti": "Revoked1"}),
		baseClaims(map[string]any{"roles": "a,b c"}), baseClaims(map[string]any{"tier": 1})} {
		p, _ := json.Marshal(c)
		input := sig.header + "." + b64(p)
		f.Add(SignedKeyPrefix + input + "." + b64(ed25519.Sign(sig.priv, []byte(input))))
	}
	f.Add("tg.a.b.c")
	f.Add("tg_27rPErmv_" + strings.Repeat("a", 32) + "_000000")
	f.Fuzz(func(t *testing.T, key string) {
		rec, err := o.Lookup(context.Background(), key)
		if err != nil {
			for _, s := range []error{ErrNotSigned, ErrMalformed, ErrNotFound, ErrExpired, ErrRevoked, ErrUnavailable} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error %v is none of Lookup's", err)
		}
		dot := strings.LastIndexByte(key, '.')
		s, _ := base64.RawURLEncoding.DecodeString(key[dot+1:])
		if !ed25519.Verify(sig.PublicKey(), []byte(key[len(SignedKeyPrefix):dot]), s) {
			t.Fatalf("accepted %q without a valid signature", key)
		}
		if !validID(rec.ID) || rec.Consumer == "" || !validTierName(rec.Tier) || hasControl(strings.ReplaceAll(rec.Tenant, "\t", "")) {
			t.Fatalf("accepted record %+v", rec)
		}
	})
}
