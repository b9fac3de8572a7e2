package apikey

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/extauthz/contract"
)

// Offline verification of signed keys.
//
// An Offline verifier decides a signed key without the store: with the
// Signer's public key, the store's epoch, its exceptions table and that
// table's freshness, as the gateway's Envoy decides it on routes whose
// keys it verifies itself (jwt_authn, its refusals rewritten to
// ext_authz's reasons, then the key identity script of xds/translator; or
// Tollgate's Envoy module). It refuses and accepts exactly the cases that
// filter path does, in its order:
//
//  1. jwt_authn's parse (parseOffline): three base64url parts, a JSON
//     header with alg EdDSA (kid a string), a JSON object payload in
//     valid UTF-8 without lone surrogate escapes, iss, sub and jti
//     strings, aud a string or strings, iat, nbf and exp non-negative
//     integers, iss SignedKeyIssuer: else ErrMalformed; a key longer than
//     MaxSignedKeyLen is ErrMalformed first;
//  2. jwt_authn's times, with its clock skew (OfflineClockSkew): a future
//     nbf (now + skew < nbf) ErrNotFound ("Jwt_not_yet_valid", rewritten
//     to unknown_key), an exp passed (now > exp + skew, whole seconds)
//     ErrExpired;
//  3. the Ed25519 signature over "header.payload" with the public key:
//     ErrNotFound when it does not verify (the store finds no record for
//     an altered or foreign key either);
//  4. the claims the control plane never signs (the key identity
//     script): a jti that is not a key id, sub outside
//     contract.ValidConsumer, a tier that is not a tier name, tnt or tier
//     holding a control character other than tab, claims of the wrong
//     type (roles a list with a non-string, a number...): ErrMalformed;
//     invalid roles are dropped, a roles string is split on spaces and
//     commas;
//  5. a table that is not fresh: an error wrapping ErrUnavailable (503
//     key_store_unavailable), never a verdict on the key;
//  6. an ep claim that is not the epoch (or an empty epoch): ErrNotFound;
//  7. the key's exception: revoked, ErrRevoked; a tier with a control
//     character, ErrMalformed; its expiry passed, ErrExpired; else its
//     tier and roles replace the signed ones.
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
	// ID; a later duplicate replaces an earlier one). The verifier keeps
	// the slice (sorted by ID in place, if it is not already, and without
	// the IDs no key can name): the caller must not use it afterwards.
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
	exc   []Exception // sorted by ID, one per ID (exception)
	now   func() time.Time
}

// NewOffline returns the verifier of cfg; it fails when the public key is
// not 32 bytes of unpadded base64url.
func NewOffline(cfg OfflineConfig) (*Offline, error) {
	pub, err := base64.RawURLEncoding.DecodeString(cfg.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("apikey: the signed keys' public key is not %d bytes of unpadded base64url", ed25519.PublicKeySize)
	}
	o := &Offline{pub: pub, epoch: cfg.Epoch, fresh: cfg.Fresh, exc: sortExceptionTable(cfg.Exceptions), now: cfg.Now}
	if o.now == nil {
		o.now = time.Now
	}
	return o, nil
}

// sortExceptionTable returns xs (reused) without the IDs holding a control
// character (no key id holds one: no key can name them), sorted by ID, the
// last of duplicates kept. A table already sorted without duplicates (the
// control plane's) is only checked: no map, no copy, at the key store's
// bound of 200,000 exceptions (TestLocalKeysLargeTableCost).
func sortExceptionTable(xs []Exception) []Exception {
	xs = slices.DeleteFunc(xs, func(x Exception) bool { return hasControlByte(x.ID) })
	if slices.IsSortedFunc(xs, func(a, b Exception) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), -1) // an equal neighbour is not sorted: a duplicate
	}) {
		return xs
	}
	slices.SortStableFunc(xs, func(a, b Exception) int { return strings.Compare(a.ID, b.ID) })
	out := xs[:0]
	for i, x := range xs {
		if i+1 < len(xs) && xs[i+1].ID == x.ID {
			continue // a later duplicate replaces it
		}
		out = append(out, x)
	}
	return out
}

// exception returns the exception of key id id.
func (o *Offline) exception(id string) (Exception, bool) {
	i, ok := slices.BinarySearchFunc(o.exc, id, func(x Exception, id string) int { return strings.Compare(x.ID, id) })
	if !ok {
		return Exception{}, false
	}
	return o.exc[i], true
}

// hasControlByte is hasControl, byte by byte: a control character is one
// byte in UTF-8, and no byte of a longer sequence is below 0x80.
func hasControlByte(s string) bool {
	for i := range len(s) {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
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
	if len(key) > MaxSignedKeyLen {
		return nil, fmt.Errorf("%w: signed key longer than %d bytes", ErrMalformed, MaxSignedKeyLen)
	}
	tok, err := parseOffline(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	now := o.now().Unix()
	skew := int64(OfflineClockSkew / time.Second)
	switch {
	case tok.nbf != 0 && now+skew < tok.nbf:
		return nil, fmt.Errorf("%w (a signed key not valid yet)", ErrNotFound)
	case tok.exp != 0 && now > tok.exp+skew:
		return nil, fmt.Errorf("%w (a signed key past its exp)", ErrExpired)
	case !ed25519.Verify(o.pub, []byte(tok.input), tok.sig):
		return nil, fmt.Errorf("%w (the signed key's signature does not verify)", ErrNotFound)
	}
	rec, err := tok.record()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !o.fresh {
		return nil, fmt.Errorf("%w: the signed keys' exceptions table is not fresh", ErrUnavailable)
	}
	if err := checkEpoch(rec.ID, tok.ep, o.epoch); err != nil {
		return nil, err
	}
	return o.except(rec, now)
}

// except applies the key's exception, if any, to rec at now (Unix
// seconds).
func (o *Offline) except(rec *Record, now int64) (*Record, error) {
	x, ok := o.exception(rec.ID)
	if !ok {
		return rec, nil
	}
	switch {
	case x.Revoked:
		return nil, fmt.Errorf("%w (id %s)", ErrRevoked, rec.ID)
	case hasControl(x.Tier):
		return nil, fmt.Errorf("%w (id %s): its exception's tier", ErrMalformed, rec.ID)
	case !x.ExpiresAt.IsZero() && now >= x.ExpiresAt.Unix():
		return nil, fmt.Errorf("%w (id %s)", ErrExpired, rec.ID)
	}
	rec.Tier, rec.Roles = x.Tier, validRoles(x.Roles)
	if !x.ExpiresAt.IsZero() && (rec.ExpiresAt.IsZero() || x.ExpiresAt.Before(rec.ExpiresAt)) {
		rec.ExpiresAt = x.ExpiresAt.UTC()
	}
	return rec, nil
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
