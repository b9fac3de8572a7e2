package apikey

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/policy/ir"
)

// Signed keys.
//
//	tg.<header>.<claims>.<signature>
//
// is "tg." followed by a compact JWS (RFC 7515) signed with Ed25519
// (alg EdDSA), which Envoy's jwt_authn filter verifies natively against
// the Signer's JWKS. The claims are readable by whoever holds the key;
// the signature only makes them unforgeable.
const (
	// SignedKeyPrefix starts every signed key. Opaque keys ("tg_…", base62)
	// never contain it.
	SignedKeyPrefix = "tg."
	// SignedKeyIssuer is the iss claim of every signed key, which no jwt
	// provider of a policy may use.
	SignedKeyIssuer = ir.SignedKeyIssuer
	// MaxSignedKeyLen bounds the length of a signed key Parse accepts
	// (Envoy's key identity script refuses a longer one too).
	MaxSignedKeyLen = contract.MaxSignedKeyLen

	// Formats of Record.Format.
	FormatSigned = "signed"
	FormatOpaque = "opaque"

	signerInfo = "tollgate api-key signing v1"
	kidLen     = 9 // bytes of SHA-256(public key) in the kid
)

// Signer mints signed keys. Its Ed25519 key pair is derived from the
// pepper, so every replica sharing the pepper signs and verifies alike and
// the store (Redis) never holds a signing secret. It is safe for
// concurrent use.
type Signer struct {
	priv   ed25519.PrivateKey
	pub    ed25519.PublicKey
	kid    string
	header string // base64url of the JWS header
	jwks   string
}

// NewSigner derives a signer from pepper: the Ed25519 seed is
// HKDF-SHA256(secret=pepper, salt=nil, info="tollgate api-key signing v1").
func NewSigner(pepper []byte) (*Signer, error) {
	if len(pepper) < MinPepperLen {
		return nil, fmt.Errorf("apikey: the pepper must be at least %d bytes", MinPepperLen)
	}
	seed, err := hkdf.Key(sha256.New, pepper, nil, signerInfo, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("apikey: derive signing key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	s := &Signer{priv: priv, pub: priv.Public().(ed25519.PublicKey)}
	sum := sha256.Sum256(s.pub)
	s.kid = b64(sum[:kidLen])
	s.header = b64([]byte(`{"alg":"EdDSA","kid":"` + s.kid + `"}`))
	s.jwks = `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + b64(s.pub) + `","kid":"` + s.kid +
		`","alg":"EdDSA","use":"sig"}]}`
	return s, nil
}

// KeyID returns the kid: base64url (no padding) of the first 9 bytes of
// SHA-256(public key).
func (s *Signer) KeyID() string { return s.kid }

// JWKS returns the JSON Web Key Set holding the public key; the same
// bytes for the same pepper.
func (s *Signer) JWKS() string { return s.jwks }

// PublicKey returns the public key.
func (s *Signer) PublicKey() ed25519.PublicKey { return append(ed25519.PublicKey(nil), s.pub...) }

// claims are a signed key's JWS payload, marshalled in this field order.
type claims struct {
	Iss   string   `json:"iss"`
	Sub   string   `json:"sub"`
	Jti   string   `json:"jti"`
	Iat   int64    `json:"iat"`
	Exp   int64    `json:"exp,omitempty"`
	Tnt   string   `json:"tnt,omitempty"`
	Tier  string   `json:"tier,omitempty"`
	Roles []string `json:"roles,omitempty"`
	Ep    string   `json:"ep"`
}

// sign returns the signed key of rec (whose ID is set) in the key-store
// epoch ep.
func (s *Signer) sign(rec Record, ep string) (string, error) {
	c := claims{Iss: SignedKeyIssuer, Sub: rec.Consumer, Jti: rec.ID, Iat: rec.CreatedAt.Unix(),
		Tnt: rec.Tenant, Tier: rec.Tier, Roles: rec.Roles, Ep: ep}
	if !rec.ExpiresAt.IsZero() {
		c.Exp = rec.ExpiresAt.Unix()
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("apikey: encode claims: %w", err)
	}
	signingInput := s.header + "." + b64(payload)
	sig := ed25519.Sign(s.priv, []byte(signingInput))
	return SignedKeyPrefix + signingInput + "." + b64(sig), nil
}

// signedRecord prepares rec (validated by newRecord) for a signed key:
// the token carries whole seconds, so the record's times are truncated to
// agree with it.
func signedRecord(rec Record) (Record, error) {
	rec.Format = FormatSigned
	rec.CreatedAt = rec.CreatedAt.Truncate(time.Second)
	rec.ExpiresAt = rec.ExpiresAt.Truncate(time.Second)
	if !rec.ExpiresAt.IsZero() && !rec.ExpiresAt.After(rec.CreatedAt) {
		return Record{}, errors.New("apikey: a signed key must live at least a second")
	}
	return rec, nil
}

// ErrSignedExpiry refuses to extend a signed key (Update): Envoy enforces
// the exp claim of the token, which cannot change.
var ErrSignedExpiry = errors.New("apikey: a signed key's expiry can only be shortened; create a new key")

// ErrFormat refuses a Create whose Record.Format is unknown, signed on a
// store without a Signer, or signed with claims too long for
// MaxSignedKeyLen.
var ErrFormat = errors.New("apikey: unsupported key format")

// withFormat resolves rec.Format for Create: "" means signed when the
// store has a signer, opaque otherwise. A signed key's record is prepared
// by signedRecord; its TokenExpiresAt is its ExpiresAt.
func withFormat(rec Record, sig *Signer) (Record, error) {
	format := rec.Format
	if format == "" {
		format = FormatOpaque
		if sig != nil {
			format = FormatSigned
		}
	}
	rec.TokenExpiresAt = time.Time{}
	switch {
	case format == FormatOpaque:
		rec.Format = FormatOpaque
		return rec, nil
	case format == FormatSigned && sig != nil:
		signed, err := signedRecord(rec)
		signed.TokenExpiresAt = signed.ExpiresAt
		return signed, err
	case format == FormatSigned:
		return Record{}, fmt.Errorf("%w: this store cannot sign keys (no signer): use the opaque format", ErrFormat)
	}
	return Record{}, fmt.Errorf("%w %q: want %q or %q", ErrFormat, format, FormatSigned, FormatOpaque)
}

// mint returns a new key for rec (whose Format is resolved) with a fresh
// id, and the record to store; a signed key carries the epoch ep.
func mint(rnd io.Reader, sig *Signer, rec Record, ep string) (string, Record, error) {
	key, id, err := Generate(rnd)
	if err != nil {
		return "", Record{}, err
	}
	rec = cloneRecord(rec)
	rec.ID = id
	if rec.Format == FormatSigned {
		if key, err = sig.sign(rec, ep); err != nil {
			return "", Record{}, err
		}
		if len(key) > MaxSignedKeyLen {
			return "", Record{}, fmt.Errorf("%w: the signed key would be %d bytes, more than %d: "+
				"give fewer or shorter roles, a shorter tenant, or use the opaque format", ErrFormat, len(key), MaxSignedKeyLen)
		}
	}
	return key, rec, nil
}

// IsSigned reports whether key has the signed form (its prefix); Parse
// still decides whether it is well formed.
func IsSigned(key string) bool { return strings.HasPrefix(key, SignedKeyPrefix) }

// SignerOf returns the signer of st, nil when st issues only opaque keys.
func SignerOf(st Store) *Signer {
	if s, ok := st.(interface{ Signer() *Signer }); ok {
		return s.Signer()
	}
	return nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
