package apikey

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tollgate/tollgate/extauthz/contract"
)

// Offline verification of signed keys.
//
// An Offline verifier decides a signed key without the store: with the
// Signer's public key, the store's epoch, its exceptions table and that
// table's freshness, as the gateway's Envoy decides it on routes whose
// keys it verifies itself (jwt_authn, then the key identity script of
// xds/translator, or Tollgate's Envoy module). It refuses and accepts
// exactly the cases that filter path does, in its order:
//
//  1. the syntax (parseSigned): ErrMalformed;
//  2. the Ed25519 signature over "header.payload" with the public key:
//     ErrNotFound when it does not verify (the store finds no record for
//     an altered or foreign key either);
//  3. the exp claim, with jwt_authn's clock skew (OfflineClockSkew):
//     ErrExpired once now > exp + skew (whole seconds);
//  4. the claims the control plane never signs: sub outside
//     contract.ValidConsumer, a tier that is not a tier name, tnt or tier
//     holding a control character, claims of the wrong type (roles a
//     list with a non-string, a number...): ErrMalformed; invalid roles
//     are dropped, a roles string is split on spaces and commas;
//  5. a table that is not fresh: an error wrapping ErrUnavailable (503
//     key_store_unavailable), never a verdict on the key;
//  6. an ep claim that is not the epoch (or an empty epoch): ErrNotFound;
//  7. the key's exception: revoked, ErrRevoked; a tier with a control
//     character, ErrMalformed; its expiry passed, ErrExpired; else its
//     tier and roles replace the signed ones.
//
// An nbf or iat claim is not checked (the signer never writes nbf).
const OfflineClockSkew = time.Second

// ErrNotSigned is Offline.Lookup's answer to a key that is not in signed
// form (an opaque key): the verifier cannot decide it, the key store must.
var ErrNotSigned = errors.New("apikey: not a signed key")

// OfflineConfig configures an Offline verifier.
type OfflineConfig struct {
	// PublicKey is the Signer's Ed25519 public key, unpadded base64url
	// (the "x" of its JWKS).
	PublicKey string
	// Epoch is the store's epoch; "" refuses every signed key (unknown).
	Epoch string
	// Fresh is false while the exceptions table is not known to be
	// current: every signed key is then refused as unavailable.
	Fresh bool
	// Exceptions are the signed keys whose claims no longer hold (one per
	// ID; a later duplicate replaces an earlier one).
	Exceptions []Exception
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Offline verifies signed keys without the store (see OfflineConfig). It
// is immutable and safe for concurrent use.
type Offline struct {
	pub   ed25519.PublicKey
	epoch string
	fresh bool
	exc   map[string]Exception
	now   func() time.Time
}

// NewOffline returns the verifier of cfg; it fails when the public key is
// not 32 bytes of unpadded base64url.
func NewOffline(cfg OfflineConfig) (*Offline, error) {
	pub, err := base64.RawURLEncoding.DecodeString(cfg.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("apikey: the signed keys' public key is not %d bytes of unpadded base64url", ed25519.PublicKeySize)
	}
	o := &Offline{pub: pub, epoch: cfg.Epoch, fresh: cfg.Fresh, exc: make(map[string]Exception, len(cfg.Exceptions)),
		now: cfg.Now}
	if o.now == nil {
		o.now = time.Now
	}
	for _, x := range cfg.Exceptions {
		if !hasControl(x.ID) { // no key id holds one: no key can name it
			o.exc[x.ID] = cloneException(x)
		}
	}
	return o, nil
}

// Lookup decides key (see the order above). It returns ErrNotSigned for a
// key not in signed form, an error wrapping ErrMalformed, ErrNotFound,
// ErrExpired or ErrRevoked, or one wrapping ErrUnavailable when the table
// is not fresh. The record's ExpiresAt is the earliest of the exp claim
// and the exception's expiry (zero: none), its TokenExpiresAt the exp
// claim. Errors never contain the key or its claims.
func (o *Offline) Lookup(_ context.Context, key string) (*Record, error) {
	if !IsSigned(key) {
		return nil, ErrNotSigned
	}
	id, ep, err := parseSigned(key)
	if err != nil {
		return nil, err
	}
	payload, err := o.verify(key, id)
	if err != nil {
		return nil, err
	}
	now := o.now()
	c, err := decodeOfflineClaims(payload)
	if err != nil {
		return nil, fmt.Errorf("%w (id %s): %w", ErrMalformed, id, err)
	}
	if c.exp != 0 && now.Unix() > c.exp+int64(OfflineClockSkew/time.Second) {
		return nil, fmt.Errorf("%w (id %s)", ErrExpired, id)
	}
	rec, err := c.record(id)
	if err != nil {
		return nil, fmt.Errorf("%w (id %s): %w", ErrMalformed, id, err)
	}
	if !o.fresh {
		return nil, fmt.Errorf("%w: the signed keys' exceptions table is not fresh", ErrUnavailable)
	}
	if err := checkEpoch(id, ep, o.epoch); err != nil {
		return nil, err
	}
	return o.except(rec, now)
}

// verify checks the signature of key (parsed) and returns its decoded
// payload.
func (o *Offline) verify(key, id string) ([]byte, error) {
	input := key[len(SignedKeyPrefix):strings.LastIndexByte(key, '.')]
	sig, err := base64.RawURLEncoding.DecodeString(key[strings.LastIndexByte(key, '.')+1:])
	if err != nil || !ed25519.Verify(o.pub, []byte(input), sig) {
		return nil, fmt.Errorf("%w (id %s: the signature does not verify)", ErrNotFound, id)
	}
	payload, err := base64.RawURLEncoding.DecodeString(input[strings.IndexByte(input, '.')+1:])
	if err != nil { // parseSigned decoded it already
		return nil, fmt.Errorf("%w (id %s): claims", ErrMalformed, id)
	}
	return payload, nil
}

// except applies the key's exception, if any, to rec.
func (o *Offline) except(rec *Record, now time.Time) (*Record, error) {
	x, ok := o.exc[rec.ID]
	if !ok {
		return rec, nil
	}
	switch {
	case x.Revoked:
		return nil, fmt.Errorf("%w (id %s)", ErrRevoked, rec.ID)
	case hasControl(x.Tier):
		return nil, fmt.Errorf("%w (id %s): its exception's tier", ErrMalformed, rec.ID)
	case !x.ExpiresAt.IsZero() && now.Unix() >= x.ExpiresAt.Unix():
		return nil, fmt.Errorf("%w (id %s)", ErrExpired, rec.ID)
	}
	rec.Tier, rec.Roles = x.Tier, validRoles(x.Roles)
	if !x.ExpiresAt.IsZero() && (rec.ExpiresAt.IsZero() || x.ExpiresAt.Before(rec.ExpiresAt)) {
		rec.ExpiresAt = x.ExpiresAt.UTC()
	}
	return rec, nil
}

// offlineClaims are a signed key's claims as the key identity script
// reads them: each as JSON decoded it, typed later.
type offlineClaims struct {
	sub              string
	iat, exp         int64
	tier, tnt, roles any
}

// decodeOfflineClaims decodes payload; exp and iat must be integers when
// present (jwt_authn refuses another exp).
func decodeOfflineClaims(payload []byte) (offlineClaims, error) {
	var raw struct {
		Sub   string `json:"sub"`
		Iat   any    `json:"iat"`
		Exp   any    `json:"exp"`
		Tier  any    `json:"tier"`
		Tnt   any    `json:"tnt"`
		Roles any    `json:"roles"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return offlineClaims{}, errors.New("claims of the wrong type")
	}
	c := offlineClaims{sub: raw.Sub, tier: raw.Tier, tnt: raw.Tnt, roles: raw.Roles}
	var err error
	if c.exp, err = seconds(raw.Exp); err != nil {
		return offlineClaims{}, fmt.Errorf("exp: %w", err)
	}
	if c.iat, err = seconds(raw.Iat); err != nil {
		return offlineClaims{}, fmt.Errorf("iat: %w", err)
	}
	return c, nil
}

// seconds reads a NumericDate claim (absent or null: 0), decoded with
// UseNumber.
func seconds(claim any) (int64, error) {
	if claim == nil {
		return 0, nil
	}
	n, ok := claim.(json.Number)
	if !ok {
		return 0, errors.New("not a number")
	}
	v, err := n.Int64()
	if err != nil || v < 0 || v > math.MaxInt64/2 {
		return 0, errors.New("not a non-negative integer")
	}
	return v, nil
}

// record checks the claims as the key identity script does and returns
// the key's record.
func (c offlineClaims) record(id string) (*Record, error) {
	if !contract.ValidConsumer(c.sub) {
		return nil, errors.New("sub is not a valid consumer")
	}
	tier, ok1 := claimString(c.tier)
	tenant, ok2 := claimString(c.tnt)
	roles, ok3 := claimRoles(c.roles)
	if !ok1 || !ok2 || !ok3 || !validTierName(tier) {
		return nil, errors.New("tier, tnt or roles of the wrong type or form")
	}
	rec := &Record{ID: id, Consumer: c.sub, Tenant: tenant, Tier: tier, Roles: roles, Format: FormatSigned,
		CreatedAt: time.Unix(c.iat, 0).UTC()}
	if c.exp != 0 {
		rec.ExpiresAt = time.Unix(c.exp, 0).UTC()
		rec.TokenExpiresAt = rec.ExpiresAt
	}
	return rec, nil
}

// claimString is a string claim: absent (or null) is "", a string holding
// a control character other than tab, or another type, is refused.
func claimString(v any) (string, bool) {
	if v == nil {
		return "", true
	}
	s, ok := v.(string)
	return s, ok && contract.HeaderSafe(s)
}

// claimRoles is the roles claim: absent is none; a string is split on
// spaces and commas; a list must hold strings only; the invalid ones
// (contract.ValidRole) are dropped. A JSON object gives no roles: the key
// identity script reads it as a Lua table without list items.
func claimRoles(v any) ([]string, bool) {
	switch r := v.(type) {
	case nil, map[string]any:
		return nil, true
	case string:
		return validRoles(strings.FieldsFunc(r, func(c rune) bool { return c == ' ' || c == ',' })), true
	case []any:
		out := make([]string, 0, len(r))
		for _, item := range r {
			s, ok := item.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return validRoles(out), true
	}
	return nil, false
}

// validRoles returns the valid roles of roles (nil for none).
func validRoles(roles []string) []string {
	var out []string
	for _, r := range roles {
		if contract.ValidRole(r) {
			out = append(out, r)
		}
	}
	return out
}

// validTierName reports whether s is "" or a tier name: 1-63 lower-case
// letters, digits and '-', starting with a letter or digit, not ending
// with '-' (the policy's name rule, as the key identity script checks it).
func validTierName(s string) bool {
	if s == "" {
		return true
	}
	if len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// hasControl reports whether s holds a control character (tab and newline
// included).
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func cloneException(x Exception) Exception {
	x.Roles = append([]string(nil), x.Roles...)
	return x
}
