package apikey

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// ed25519SigB64Len is the length of an Ed25519 signature (64 bytes) in
// unpadded base64url.
const ed25519SigB64Len = 86

// parseSigned checks the syntax of a signed key and returns its id (the
// jti claim) and its epoch (the ep claim, "" when absent or not a string:
// such a key is refused as unknown by checkEpoch, not as malformed). It does not verify the signature: the store finds the key
// by its HMAC, which no altered key matches, and Envoy verifies the
// signature itself. Errors wrap ErrMalformed and never contain the key or
// its claims.
func parseSigned(key string) (id, ep string, err error) {
	if len(key) > MaxSignedKeyLen {
		return "", "", fmt.Errorf("%w: signed key longer than %d bytes", ErrMalformed, MaxSignedKeyLen)
	}
	rest := key[len(SignedKeyPrefix):]
	header, rest, ok1 := strings.Cut(rest, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return "", "", fmt.Errorf("%w: a signed key has three dot-separated parts after %q", ErrMalformed, SignedKeyPrefix)
	}
	for i, part := range [3]string{header, payload, sig} {
		if !isBase64URL(part) {
			return "", "", fmt.Errorf("%w: part %d of the signed key is not unpadded base64url", ErrMalformed, i+1)
		}
	}
	if len(sig) != ed25519SigB64Len {
		return "", "", fmt.Errorf("%w: signature of length %d, want %d", ErrMalformed, len(sig), ed25519SigB64Len)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(header, &h); err != nil || h.Alg != "EdDSA" {
		return "", "", fmt.Errorf("%w: the signed key's header is not an EdDSA JWS header", ErrMalformed)
	}
	var c struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Jti string `json:"jti"`
		Ep  any    `json:"ep"`
	}
	if err := decodeSegment(payload, &c); err != nil {
		return "", "", fmt.Errorf("%w: the signed key's claims are not a JSON object", ErrMalformed)
	}
	if c.Iss != SignedKeyIssuer || c.Sub == "" || !validID(c.Jti) {
		return "", "", fmt.Errorf("%w: the signed key's claims lack iss %q, sub or a valid jti", ErrMalformed, SignedKeyIssuer)
	}
	ep, _ = c.Ep.(string)
	return c.Jti, ep, nil
}

// decodeSegment decodes one base64url JWS segment as JSON into v.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// isBase64URL reports whether s is non-empty unpadded base64url text.
func isBase64URL(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !isBase62(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
