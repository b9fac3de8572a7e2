package jwt

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// newB64URL returns the strict unpadded base64url of RFC 7515: no
// padding, no line breaks, no non-zero trailing bits, so a token has one
// encoding only.
func newB64URL() *base64.Encoding { return base64.RawURLEncoding.Strict() }

// token is a compact JWS split and decoded but not verified: nothing in it
// may be trusted before the signature is checked.
type token struct {
	raw    string
	alg    string
	kid    string // "" when the header has none
	iss    string
	claims claimSet
}

// parseToken splits and decodes a compact JWS and enforces the header
// rules that do not depend on the provider: "alg" present and not "none",
// no "crit" or "b64", no embedded or referenced key. The payload must be a
// JSON object with a string "iss".
func parseToken(raw string, b64 *base64.Encoding) (*token, *Error) {
	if raw == "" || raw[0] == '{' {
		// '{' is JWS JSON serialization: compact only.
		return nil, rejectf(ReasonMalformed, errors.New("not a compact JWS"))
	}
	if strings.Count(raw, ".") != 2 {
		return nil, rejectf(ReasonMalformed, errors.New("a compact JWS has exactly three segments"))
	}
	hdrEnc, rest, _ := strings.Cut(raw, ".")
	payloadEnc, _, _ := strings.Cut(rest, ".")
	t := &token{raw: raw}
	if err := t.parseHeader(hdrEnc, b64); err != nil {
		return nil, err
	}
	claims, err := decodeObject(payloadEnc, b64)
	if err != nil {
		return nil, rejectf(ReasonMalformed, fmt.Errorf("payload: %w", err))
	}
	t.claims = claims
	iss, ok, err := claims.str("iss")
	switch {
	case err != nil:
		return nil, rejectf(ReasonMalformed, err)
	case !ok || iss == "":
		return nil, rejectf(ReasonUnknownIssuer, errors.New("no iss claim"))
	}
	t.iss = iss
	return t, nil
}

func (t *token) parseHeader(enc string, b64 *base64.Encoding) *Error {
	hdr, err := decodeObject(enc, b64)
	if err != nil {
		return rejectf(ReasonMalformed, fmt.Errorf("header: %w", err))
	}
	alg, ok, err := hdr.str("alg")
	switch {
	case err != nil:
		return rejectf(ReasonMalformed, err)
	case !ok || alg == "":
		return rejectf(ReasonMalformed, errors.New("header has no alg"))
	case strings.EqualFold(alg, "none"):
		return rejectf(ReasonAlgNotAllowed, errors.New("alg none"))
	}
	if _, ok := hdr["crit"]; ok {
		return rejectf(ReasonCritUnsupported, errors.New("crit header"))
	}
	if _, ok := hdr["b64"]; ok {
		return rejectf(ReasonCritUnsupported, errors.New("b64 header (RFC 7797) is not supported"))
	}
	// Keys come from the provider's configuration only: a header that
	// carries or points at a key is refused whatever the value.
	for _, p := range [...]string{"jwk", "jku", "x5u", "x5c"} {
		if _, ok := hdr[p]; ok {
			return rejectf(ReasonEmbeddedKey, fmt.Errorf("%s header", p))
		}
	}
	kid, _, err := hdr.str("kid")
	if err != nil {
		return rejectf(ReasonMalformed, err)
	}
	t.alg, t.kid = alg, kid
	return nil
}

// decodeObject decodes one base64url segment holding a JSON object.
func decodeObject(enc string, b64 *base64.Encoding) (claimSet, error) {
	if enc == "" {
		return nil, errors.New("empty segment")
	}
	b, err := b64.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("base64url: %w", err)
	}
	var m claimSet
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}
