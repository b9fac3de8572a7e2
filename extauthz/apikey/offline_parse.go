package apikey

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tollgate/tollgate/extauthz/contract"
)

// offlineToken is a signed key as jwt_authn parses it: its signing input
// and signature, the claims jwt_authn types, and the claims the key
// identity script reads, each as JSON decoded it (typed by record).
type offlineToken struct {
	input string // "header.payload"
	sig   []byte
	ep    string // "" when absent or not a string: unknown, not malformed

	jti, sub         string
	iat, nbf, exp    int64 // 0: absent
	tier, tnt, roles any
}

// parseOffline parses key (signed form, length checked) as jwt_authn
// does before it verifies anything: see step 1 of the Offline order.
// Errors never contain the key or its claims.
func parseOffline(key string) (*offlineToken, error) {
	parts := strings.Split(key[len(SignedKeyPrefix):], ".")
	if len(parts) != 3 {
		return nil, errors.New("a signed key has three dot-separated parts")
	}
	for i, part := range parts {
		if !isBase64URL(part) {
			return nil, fmt.Errorf("part %d of the signed key is not unpadded base64url", i+1)
		}
	}
	header, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	payload, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, errors.New("the signed key's parts do not decode")
	}
	if err := checkOfflineHeader(header); err != nil {
		return nil, err
	}
	tok, err := decodeOfflinePayload(payload)
	if err != nil {
		return nil, err
	}
	tok.input, tok.sig = parts[0]+"."+parts[1], sig
	return tok, nil
}

// checkOfflineHeader checks a JWS header as jwt_authn does for this
// provider: a JSON object, alg "EdDSA", kid a string when present.
func checkOfflineHeader(header []byte) error {
	var h map[string]any
	if err := strictJSON(header, &h); err != nil {
		return errors.New("the signed key's header is not a JSON object")
	}
	if alg, _ := h["alg"].(string); alg != "EdDSA" {
		return errors.New("the signed key's header is not an EdDSA JWS header")
	}
	if kid, ok := h["kid"]; ok {
		if _, isString := kid.(string); !isString {
			return errors.New("the signed key's kid is not a string")
		}
	}
	return nil
}

// decodeOfflinePayload decodes the claims: the ones jwt_authn types
// (iss, sub, jti, aud strings; iat, nbf, exp integers), iss
// SignedKeyIssuer, and the ones the key identity script reads.
func decodeOfflinePayload(payload []byte) (*offlineToken, error) {
	var c map[string]any
	if err := strictJSON(payload, &c); err != nil {
		return nil, errors.New("the signed key's claims are not a JSON object in UTF-8")
	}
	tok := &offlineToken{tier: c["tier"], tnt: c["tnt"], roles: c["roles"]}
	tok.ep, _ = c["ep"].(string)
	var iss string
	for name, dst := range map[string]*string{"iss": &iss, "sub": &tok.sub, "jti": &tok.jti} {
		v, ok := c[name].(string)
		if _, present := c[name]; present && !ok {
			return nil, fmt.Errorf("claim %s is not a string", name)
		}
		*dst = v
	}
	for name, dst := range map[string]*int64{"iat": &tok.iat, "nbf": &tok.nbf, "exp": &tok.exp} {
		v, err := seconds(c[name])
		if err != nil {
			return nil, fmt.Errorf("claim %s: %w", name, err)
		}
		*dst = v
	}
	if !validAudience(c["aud"]) {
		return nil, errors.New("claim aud is neither a string nor strings")
	}
	if iss != SignedKeyIssuer {
		return nil, fmt.Errorf("the signed key's iss is not %q", SignedKeyIssuer)
	}
	return tok, nil
}

// strictJSON decodes data into v (numbers as json.Number) after the
// checks Envoy's JSON parser makes and Go's does not: valid UTF-8, no
// lone surrogate escape (Go would turn both into U+FFFD).
func strictJSON(data []byte, v any) error {
	if !utf8.Valid(data) || hasLoneSurrogate(data) {
		return errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// hasLoneSurrogate reports whether a JSON text holds a \u escape of a
// UTF-16 surrogate that is not a high one followed by a low one.
func hasLoneSurrogate(data []byte) bool {
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' || i+1 >= len(data) {
			continue
		}
		i++ // the escaped character: never the start of another escape
		r, ok := escapedRune(data, i)
		switch {
		case !ok || r < 0xd800 || r > 0xdfff:
			continue
		case r >= 0xdc00: // a low surrogate first
			return true
		}
		low, ok := escapedRune(data, i+6)
		if !ok || i+5 >= len(data) || data[i+5] != '\\' || low < 0xdc00 || low > 0xdfff {
			return true
		}
		i += 6
	}
	return false
}

// escapedRune reads "uXXXX" at data[i:]; ok false when it is not one.
func escapedRune(data []byte, i int) (rune, bool) {
	if i+5 > len(data) || data[i] != 'u' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(data[i+1:i+5]), 16, 16)
	return rune(v), err == nil
}

// seconds reads a NumericDate claim (absent: 0): a non-negative integral
// number, as jwt_authn reads it.
func seconds(claim any) (int64, error) {
	if claim == nil {
		return 0, nil
	}
	n, ok := claim.(json.Number)
	if !ok {
		return 0, errors.New("not a number")
	}
	v, err := strconv.ParseFloat(string(n), 64)
	if err != nil || v < 0 || v != math.Trunc(v) || v > math.MaxInt64/4 {
		return 0, errors.New("not a non-negative integer")
	}
	return int64(v), nil
}

// validAudience: aud absent, a string, or a list of strings.
func validAudience(aud any) bool {
	switch a := aud.(type) {
	case nil, string:
		return true
	case []any:
		for _, item := range a {
			if _, ok := item.(string); !ok {
				return false
			}
		}
		return true
	}
	return false
}

// record checks the claims as the key identity script does and returns
// the key's record.
func (tok *offlineToken) record() (*Record, error) {
	if !validID(tok.jti) {
		return nil, errors.New("jti is not a key id")
	}
	if !contract.ValidConsumer(tok.sub) {
		return nil, fmt.Errorf("key %s: sub is not a valid consumer", tok.jti)
	}
	tier, ok1 := claimString(tok.tier)
	tenant, ok2 := claimString(tok.tnt)
	roles, ok3 := claimRoles(tok.roles)
	if !ok1 || !ok2 || !ok3 || !validTierName(tier) {
		return nil, fmt.Errorf("key %s: tier, tnt or roles of the wrong type or form", tok.jti)
	}
	rec := &Record{ID: tok.jti, Consumer: tok.sub, Tenant: tenant, Tier: tier, Roles: roles, Format: FormatSigned,
		CreatedAt: time.Unix(tok.iat, 0).UTC()}
	if tok.exp != 0 {
		rec.ExpiresAt = time.Unix(tok.exp, 0).UTC()
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
