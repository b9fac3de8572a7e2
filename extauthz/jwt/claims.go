package jwt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// maxNumericDate bounds the NumericDate claims (seconds since the epoch,
// about year 36812) so that converting them to time.Time cannot overflow.
const maxNumericDate = 1 << 40

// claimSet holds the members of a decoded JSON object (a token's header or
// payload), their values still undecoded.
type claimSet map[string]json.RawMessage

// raw returns the member name, treating a JSON null like a missing member.
func (c claimSet) raw(name string) (json.RawMessage, bool) {
	r, ok := c[name]
	if !ok || len(r) == 0 || string(r) == "null" {
		return nil, false
	}
	return r, true
}

// str returns the string member name; ok is false when it is absent.
func (c claimSet) str(name string) (s string, ok bool, err error) {
	r, ok := c.raw(name)
	if !ok {
		return "", false, nil
	}
	if s, err = jsonString(r); err != nil {
		return "", false, fmt.Errorf("%s: %w", name, err)
	}
	return s, true, nil
}

// jsonString decodes the JSON value r, which must be a string. r comes
// from a document the JSON decoder accepted, so a string without
// backslashes is its bytes between the quotes: that common case costs
// one allocation.
func jsonString(r json.RawMessage) (string, error) {
	if len(r) < 2 || r[0] != '"' {
		return "", errors.New("not a string")
	}
	if body := r[1 : len(r)-1]; bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return string(body), nil
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		return "", fmt.Errorf("bad string: %w", err)
	}
	return s, nil
}

// numericDate returns the NumericDate member name (RFC 7519 §2: seconds
// since the epoch, possibly fractional).
func (c claimSet) numericDate(name string) (time.Time, bool, error) {
	r, ok := c.raw(name)
	if !ok {
		return time.Time{}, false, nil
	}
	var f float64
	if err := json.Unmarshal(r, &f); err != nil {
		return time.Time{}, false, fmt.Errorf("%s is not a number", name)
	}
	if math.Abs(f) > maxNumericDate {
		return time.Time{}, false, fmt.Errorf("%s is out of range", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// list returns the member name as a list of strings: a JSON array of
// strings, or a string split at any of the bytes in seps. Empty items are
// dropped.
func (c claimSet) list(name, seps string) ([]string, bool, error) {
	r, ok := c.raw(name)
	if !ok {
		return nil, false, nil
	}
	if r[0] == '"' {
		s, err := jsonString(r)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", name, err)
		}
		return strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(seps, r) }), true, nil
	}
	var items []string
	if err := json.Unmarshal(r, &items); err != nil {
		return nil, false, fmt.Errorf("%s is neither a string nor an array of strings", name)
	}
	return slices.DeleteFunc(items, func(s string) bool { return s == "" }), true, nil
}

// validateTimes checks exp (required), nbf and iat against now with the
// provider's clock skew, and the token's lifetime against MaxLifetime. It
// returns exp.
func (p *provider) validateTimes(c claimSet, now time.Time) (time.Time, *Error) {
	exp, ok, err := c.numericDate("exp")
	if err != nil {
		return time.Time{}, rejectf(ReasonBadClaim, err)
	}
	if !ok {
		return time.Time{}, reject(ReasonNoExp)
	}
	if !now.Before(exp.Add(p.skew)) {
		return time.Time{}, reject(ReasonExpired)
	}
	nbf, ok, err := c.numericDate("nbf")
	if err != nil {
		return time.Time{}, rejectf(ReasonBadClaim, err)
	}
	if ok && now.Add(p.skew).Before(nbf) {
		return time.Time{}, reject(ReasonNotYetValid)
	}
	iat, ok, err := c.numericDate("iat")
	if err != nil {
		return time.Time{}, rejectf(ReasonBadClaim, err)
	}
	start := now
	if ok {
		if now.Add(p.skew).Before(iat) {
			return time.Time{}, rejectf(ReasonNotYetValid, errors.New("iat is in the future"))
		}
		start = iat
	}
	if exp.Sub(start) > p.maxLifetime {
		return time.Time{}, reject(ReasonLifetimeTooLong)
	}
	return exp, nil
}

// validateAudience checks that "aud" (a string or an array of strings)
// names one of the provider's audiences; without audiences configured,
// "aud" is not looked at.
func (p *provider) validateAudience(c claimSet) *Error {
	if len(p.audiences) == 0 {
		return nil
	}
	r, ok := c.raw("aud")
	if !ok {
		return rejectf(ReasonBadAudience, errors.New("no aud claim"))
	}
	if r[0] == '"' {
		aud, err := jsonString(r)
		if err != nil || !slices.Contains(p.audiences, aud) {
			return reject(ReasonBadAudience)
		}
		return nil
	}
	var auds []string
	if err := json.Unmarshal(r, &auds); err != nil {
		return rejectf(ReasonBadAudience, errors.New("aud is neither a string nor an array of strings"))
	}
	if slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(p.audiences, a) }) {
		return nil
	}
	return reject(ReasonBadAudience)
}

// identity maps the verified claims to an Identity.
func (p *provider) identity(c claimSet, exp time.Time) (*Identity, *Error) {
	id := &Identity{Provider: p.name, Namespace: p.namespace, Expiry: exp}
	var ok bool
	var err error
	if id.Subject, _, err = c.str("sub"); err != nil {
		return nil, rejectf(ReasonBadClaim, err)
	}
	if id.UserID, ok, err = c.str(p.claims.UserID); err != nil || !ok || id.UserID == "" {
		return nil, rejectf(ReasonBadClaim, fmt.Errorf("user id claim %q must be a non-empty string", p.claims.UserID))
	}
	if p.claims.Roles != "" {
		if id.Roles, _, err = c.list(p.claims.Roles, " ,"); err != nil {
			return nil, rejectf(ReasonBadClaim, err)
		}
	}
	if id.Scopes, ok, err = c.list("scope", " "); err == nil && !ok {
		id.Scopes, _, err = c.list("scp", " ")
	}
	if err != nil {
		return nil, rejectf(ReasonBadClaim, err)
	}
	if id.Tenant, err = p.optionalString(c, p.claims.Tenant); err != nil {
		return nil, rejectf(ReasonBadClaim, err)
	}
	if id.Tier, err = p.optionalString(c, p.claims.Tier); err != nil {
		return nil, rejectf(ReasonBadClaim, err)
	}
	if err := headerSafe(map[string]string{p.claims.UserID: id.UserID, p.claims.Tenant: id.Tenant, p.claims.Tier: id.Tier}); err != nil {
		return nil, rejectf(ReasonBadClaim, err)
	}
	return id, nil
}

// headerSafe refuses claim values (claim name → value) that cannot travel
// in a header: a control character other than tab (NUL, CR, LF, DEL...).
// Envoy would refuse such a header (an opaque 500) or, on the native path,
// cut a value at NUL; both paths answer 401 bad_claim instead.
func headerSafe(values map[string]string) error {
	for name, v := range values {
		if i := strings.IndexFunc(v, func(r rune) bool { return r != '\t' && (r < 0x20 || r == 0x7f) }); i >= 0 {
			return fmt.Errorf("claim %q holds a control character at byte %d", name, i)
		}
	}
	return nil
}

// optionalString returns the string claim name, "" when name is "" (not
// configured) or the claim is absent.
func (p *provider) optionalString(c claimSet, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	s, _, err := c.str(name)
	return s, err
}
