package apikey

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v4/jwk"
	"github.com/lestrrat-go/jwx/v4/jws"
)

func mustSigner(t testing.TB, pepper []byte) *Signer {
	t.Helper()
	s, err := NewSigner(pepper)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

// TestSignerIsDerivedFromThePepper: the same pepper gives the same key
// pair, kid and JWKS bytes on every replica; another pepper another one.
func TestSignerIsDerivedFromThePepper(t *testing.T) {
	a, b, other := mustSigner(t, testPepper), mustSigner(t, append([]byte(nil), testPepper...)), mustSigner(t, otherPepper)
	if a.KeyID() != b.KeyID() || a.JWKS() != b.JWKS() || !a.PublicKey().Equal(b.PublicKey()) {
		t.Fatalf("two signers of one pepper differ: %s / %s", a.JWKS(), b.JWKS())
	}
	if a.KeyID() == other.KeyID() || a.PublicKey().Equal(other.PublicKey()) {
		t.Fatal("signers of different peppers share a key")
	}
	if len(a.KeyID()) != 12 {
		t.Errorf("kid %q: want 12 characters (9 bytes, base64url)", a.KeyID())
	}
	want := fmt.Sprintf(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"%s","kid":"%s","alg":"EdDSA","use":"sig"}]}`,
		base64.RawURLEncoding.EncodeToString(a.PublicKey()), a.KeyID())
	if a.JWKS() != want {
		t.Errorf("JWKS = %s, want %s", a.JWKS(), want)
	}
	// A golden value: the derivation (HKDF-SHA256, info "tollgate api-key
	// signing v1") must never change silently, or every signed key breaks.
	if a.KeyID() != goldenKID || base64.RawURLEncoding.EncodeToString(a.PublicKey()) != goldenX {
		t.Errorf("the test pepper gives kid %s, x %s; want %s, %s (the derivation changed)", a.KeyID(),
			base64.RawURLEncoding.EncodeToString(a.PublicKey()), goldenKID, goldenX)
	}
	if _, err := NewSigner(testPepper[:MinPepperLen-1]); err == nil {
		t.Error("NewSigner accepted a short pepper")
	}
}

// goldenKID and goldenX are the kid and public key (x) derived from
// testPepper, computed independently with Python's cryptography package:
// HKDF(SHA256, length 32, salt None, info b"tollgate api-key signing v1")
// → Ed25519PrivateKey.from_private_bytes → raw public key.
const (
	goldenKID = "xQO0Jia9v3Yb"
	goldenX   = "vtDsc4wx2LtNL8K6R5CrBIZuvSgUeWaPCoyzGYdmZEQ"
)

// TestSignedKeyVerifiesWithTheJWKS: an independent verifier (jwx) checks
// a signed key against the JWKS alone; the header and claims are exactly
// the contract's (order included), and another pepper's JWKS refuses it.
func TestSignedKeyVerifiesWithTheJWKS(t *testing.T) {
	sig := mustSigner(t, testPepper)
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		rec    Record
		claims string
	}{
		{"minimal", Record{ID: "27rPErmv", Consumer: "alice", CreatedAt: created},
			`{"iss":"tollgate:keys","sub":"alice","jti":"27rPErmv","iat":1893553445,"ep":"TestEpoch012"}`},
		{"everything", Record{ID: "27rPErmv", Consumer: "alice", Tenant: "acme", Tier: "pro", Roles: []string{"user", "admin"},
			CreatedAt: created, ExpiresAt: created.Add(time.Hour)},
			`{"iss":"tollgate:keys","sub":"alice","jti":"27rPErmv","iat":1893553445,"exp":1893557045,"tnt":"acme","tier":"pro","roles":["user","admin"],"ep":"TestEpoch012"}`},
	}
	set, err := jwk.Parse([]byte(sig.JWKS()))
	if err != nil {
		t.Fatalf("jwk.Parse(JWKS): %v", err)
	}
	otherSet, err := jwk.Parse([]byte(mustSigner(t, otherPepper).JWKS()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := sig.sign(tt.rec, testEpoch)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(key, SignedKeyPrefix) {
				t.Fatalf("key %q lacks the prefix %q", key, SignedKeyPrefix)
			}
			jwsText := []byte(strings.TrimPrefix(key, SignedKeyPrefix))
			payload, err := jws.Verify(jwsText, jws.WithKeySet(set))
			if err != nil {
				t.Fatalf("jws.Verify with the JWKS: %v", err)
			}
			if string(payload) != tt.claims {
				t.Errorf("claims = %s, want %s", payload, tt.claims)
			}
			header, _ := base64.RawURLEncoding.DecodeString(strings.Split(string(jwsText), ".")[0])
			if want := `{"alg":"EdDSA","kid":"` + sig.KeyID() + `"}`; string(header) != want {
				t.Errorf("header = %s, want %s", header, want)
			}
			if _, err := jws.Verify(jwsText, jws.WithKeySet(otherSet)); err == nil {
				t.Error("another pepper's JWKS verified the key")
			}
			if id, err := Parse(key); err != nil || id != tt.rec.ID {
				t.Errorf("Parse = %q, %v; want %q", id, err, tt.rec.ID)
			}
			t.Logf("%s: %d characters", tt.name, len(key))
		})
	}
}

// TestSignedKeyLength measures a typical signed key and keeps it under a
// bound (headers, logs and copy-paste).
// testEpoch is the key-store epoch of keys signed directly by tests.
const testEpoch = "TestEpoch012"

func TestSignedKeyLength(t *testing.T) {
	sig := mustSigner(t, testPepper)
	now := time.Now().UTC().Truncate(time.Second)
	key, err := sig.sign(Record{ID: "27rPErmv", Consumer: "alice", Tier: "pro", Roles: []string{"user"}, CreatedAt: now}, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	long, err := sig.sign(Record{ID: "27rPErmv", Consumer: "billing-service@acme.example", Tenant: "acme-eu", Tier: "enterprise",
		Roles: []string{"user", "admin", "reports"}, CreatedAt: now, ExpiresAt: now.Add(90 * 24 * time.Hour)}, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("signed key: %d characters (consumer alice, tier pro, role user); %d with tenant, 3 roles and an expiry; opaque: %d",
		len(key), len(long), keyLen)
	if len(key) > 310 || len(long) > 450 {
		t.Errorf("signed keys of %d and %d characters: longer than expected", len(key), len(long))
	}
}

func TestParseSigned(t *testing.T) {
	sig := mustSigner(t, testPepper)
	valid, err := sig.sign(Record{ID: "27rPErmv", Consumer: "alice", CreatedAt: time.Unix(1893553445, 0)}, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(strings.TrimPrefix(valid, SignedKeyPrefix), ".")
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	hdr, claims, signature := parts[0], parts[1], parts[2]
	key := func(h, c, s string) string { return SignedKeyPrefix + h + "." + c + "." + s }
	tests := []struct {
		name string
		key  string
		id   string // "" when malformed
	}{
		{"valid", valid, "27rPErmv"},
		{"unverified signature still parses", key(hdr, claims, strings.Repeat("A", 86)), "27rPErmv"},
		{"prefix only", SignedKeyPrefix, ""},
		{"two parts", SignedKeyPrefix + hdr + "." + claims, ""},
		{"four parts", valid + ".x", ""},
		{"empty part", key(hdr, "", signature), ""},
		{"padding", key(hdr, claims+"=", signature), ""},
		{"standard base64", key(hdr, claims, signature[:85]+"+"), ""},
		{"short signature", key(hdr, claims, signature[:85]), ""},
		{"too long", key(hdr, claims+strings.Repeat("A", MaxSignedKeyLen), signature), ""},
		{"alg none", key(enc(`{"alg":"none"}`), claims, signature), ""},
		{"alg HS256", key(enc(`{"alg":"HS256"}`), claims, signature), ""},
		{"header not JSON", key(enc(`alg`), claims, signature), ""},
		{"claims not JSON", key(hdr, enc(`[1,2]`), signature), ""},
		{"other issuer", key(hdr, enc(`{"iss":"x","sub":"a","jti":"27rPErmv"}`), signature), ""},
		{"no sub", key(hdr, enc(`{"iss":"tollgate:keys","jti":"27rPErmv"}`), signature), ""},
		{"bad jti", key(hdr, enc(`{"iss":"tollgate:keys","sub":"a","jti":"27rPErm!"}`), signature), ""},
		{"jti not a string", key(hdr, enc(`{"iss":"tollgate:keys","sub":"a","jti":12345678}`), signature), ""},
		{"opaque prefix", "tg_" + strings.TrimPrefix(valid, SignedKeyPrefix), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := Parse(tt.key)
			if tt.id != "" {
				if err != nil || id != tt.id {
					t.Fatalf("Parse = %q, %v; want %q", id, err, tt.id)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || id != "" {
				t.Fatalf("Parse = %q, %v; want ErrMalformed", id, err)
			}
			if len(tt.key) > 8 && strings.Contains(err.Error(), tt.key[3:]) {
				t.Errorf("the error %q contains the key", err)
			}
		})
	}
}

// FuzzParseSigned: Parse never panics on signed-looking input, accepts only
// bounded keys with a valid id, and never echoes the key in its errors.
func FuzzParseSigned(f *testing.F) {
	sig := mustSigner(f, testPepper)
	for _, rec := range []Record{
		{ID: "27rPErmv", Consumer: "alice", CreatedAt: time.Unix(1893553445, 0)},
		{ID: "AAAAAAAA", Consumer: "b", Tenant: "t", Tier: "pro", Roles: []string{"x"}, CreatedAt: time.Unix(1, 0), ExpiresAt: time.Unix(2, 0)},
	} {
		key, err := sig.sign(rec, testEpoch)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(key)
	}
	f.Add("tg.")
	f.Add("tg...")
	f.Add("tg.e30.e30." + strings.Repeat("A", 86))
	f.Fuzz(func(t *testing.T, key string) {
		if !IsSigned(key) {
			key = SignedKeyPrefix + key
		}
		id, err := Parse(key)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if len(key) > 16 && strings.Contains(err.Error(), key[len(SignedKeyPrefix):]) {
				t.Fatalf("the error %q contains the key", err)
			}
			return
		}
		if len(key) > MaxSignedKeyLen || !validID(id) {
			t.Fatalf("Parse(%q) = %q: accepted a key of %d bytes or an invalid id", key, id, len(key))
		}
	})
}

// TestSignedClaimsAreRecordState: the claims of a key a store issues are
// the record it stores (whole seconds).
func TestSignedClaimsAreRecordState(t *testing.T) {
	clock := newFakeClock()
	s := NewMemoryStoreWithSigner(testPepper, mustSigner(t, testPepper))
	s.now = clock.Now
	key, rec := mustCreate(t, s, Record{Consumer: "alice", Tenant: "acme", Tier: "pro", Roles: []string{"user"},
		ExpiresAt: clock.Now().Add(time.Hour)})
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(key, ".")[2])
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	want := claims{Iss: SignedKeyIssuer, Sub: "alice", Jti: rec.ID, Iat: rec.CreatedAt.Unix(), Exp: rec.ExpiresAt.Unix(),
		Tnt: "acme", Tier: "pro", Roles: []string{"user"}, Ep: s.epoch}
	if fmt.Sprint(c) != fmt.Sprint(want) || rec.CreatedAt.Nanosecond() != 0 || !rec.TokenExpiresAt.Equal(rec.ExpiresAt) {
		t.Errorf("claims %+v of record %+v; want %+v and whole seconds", c, rec, want)
	}
	if _, _, err := NewMemoryStore(testPepper).Create(testContext(t), Record{Consumer: "a", Format: FormatSigned}); !errors.Is(err, ErrFormat) {
		t.Errorf("signed Create on a store without signer = %v, want ErrFormat", err)
	}
	if _, _, err := s.Create(testContext(t), Record{Consumer: "a", Format: "jwt"}); !errors.Is(err, ErrFormat) {
		t.Errorf("Create with format jwt = %v, want ErrFormat", err)
	}
	if k, r := mustCreate(t, s, Record{Consumer: "a", Format: FormatOpaque}); IsSigned(k) || r.Format != FormatOpaque {
		t.Errorf("opaque Create on a signing store = %q, %+v", k, r)
	}
	many := strings.Split(strings.Repeat("role,", 200), ",")[:200]
	if k, _, err := s.Create(testContext(t), Record{Consumer: "a", Roles: many}); !errors.Is(err, ErrFormat) || k != "" {
		t.Errorf("Create of a signed key longer than MaxSignedKeyLen = %d bytes, %v; want ErrFormat", len(k), err)
	}
}
