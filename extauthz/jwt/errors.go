package jwt

import "errors"

// Reasons a token is rejected: the Reason of every *Error that Verify
// returns. They are short, stable and safe to use as metric labels and in
// responses; they never carry token material.
const (
	// ReasonMalformed: not a compact JWS, bad base64url, bad JSON, or a
	// header or claim of the wrong JSON type.
	ReasonMalformed = "malformed"
	// ReasonTooLarge: the token is longer than Options.MaxTokenBytes.
	ReasonTooLarge = "too_large"
	// ReasonUnknownIssuer: "iss" is missing or names no configured provider.
	ReasonUnknownIssuer = "unknown_issuer"
	// ReasonBadSignature: no candidate key verifies the signature, or the
	// token's key cannot be used with its algorithm.
	ReasonBadSignature = "bad_signature"
	// ReasonAlgNotAllowed: "alg" is "none" (in any case) or outside the
	// provider's allow-list.
	ReasonAlgNotAllowed = "alg_not_allowed"
	// ReasonUnknownKID: no key of the provider has the token's "kid", even
	// after the on-demand JWKS refresh (or that refresh was rate-limited).
	ReasonUnknownKID = "unknown_kid"
	// ReasonExpired: now > exp + ClockSkew.
	ReasonExpired = "expired"
	// ReasonNotYetValid: now < nbf - ClockSkew, or iat lies more than
	// ClockSkew in the future.
	ReasonNotYetValid = "not_yet_valid"
	// ReasonBadAudience: the provider has audiences and "aud" names none of
	// them (or is missing or not a string or array of strings).
	ReasonBadAudience = "bad_audience"
	// ReasonNoExp: the token has no "exp" claim.
	ReasonNoExp = "no_exp"
	// ReasonLifetimeTooLong: exp - iat (or exp - now without iat) exceeds
	// the provider's MaxLifetime.
	ReasonLifetimeTooLong = "lifetime_too_long"
	// ReasonCritUnsupported: the header has "crit" (or "b64"): no JWS
	// extension is supported.
	ReasonCritUnsupported = "crit_unsupported"
	// ReasonEmbeddedKey: the header carries or points at a key ("jwk",
	// "jku", "x5u", "x5c"); keys come from the configuration only.
	ReasonEmbeddedKey = "embedded_key"
	// ReasonJWKSUnavailable: the provider's JWKS is needed but cannot be
	// had: it was never fetched successfully, or the on-demand refresh for
	// an unknown kid failed (or the caller's context ended during it).
	ReasonJWKSUnavailable = "jwks_unavailable"
	// ReasonBadClaim: a verified token lacks the user-id claim, or an
	// identity or time claim has the wrong JSON type or range.
	ReasonBadClaim = "bad_claim"
)

// Error is the error Verify returns for every rejected token. Reason is one
// of the Reason* constants. Err, when set, says more for logs; it never
// contains the token, a claim value or a secret.
type Error struct {
	Reason string
	Err    error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err == nil {
		return "jwt: " + e.Reason
	}
	return "jwt: " + e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Reason, so that
// errors.Is(err, &jwt.Error{Reason: jwt.ReasonExpired}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

// Reason returns the reason of err when it is (or wraps) an *Error, and ""
// otherwise.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func reject(reason string) *Error { return &Error{Reason: reason} }

func rejectf(reason string, err error) *Error { return &Error{Reason: reason, Err: err} }
