package jwt

import (
	"context"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v4/jwa"
	"github.com/lestrrat-go/jwx/v4/jws"
)

// verifySignature checks t's signature with the keys p allows for t.alg:
// the configured secret for HS*, JWKS keys of the algorithm's key type and
// curve otherwise. A token with a kid is tried with that kid's keys only;
// one without, with every key that fits its algorithm.
func (v *Verifier) verifySignature(ctx context.Context, p *provider, t *token) *Error {
	alg := p.algs[t.alg]
	buf := []byte(t.raw)
	if req, _ := algorithmKey(t.alg); req.hmac {
		if v.check(buf, alg, p.secret) {
			return nil
		}
		return reject(ReasonBadSignature)
	}
	keys, err := v.keysFor(ctx, p, t)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.fits(t.alg) && v.check(buf, alg, k.key) {
			return nil
		}
	}
	return reject(ReasonBadSignature)
}

// keysFor returns the candidate keys of t (see keySet.candidates). When
// the cached keys do not know t's key and p's JWKS is remote, it refreshes
// the JWKS once (single-flight, rate-limited) and looks again. A kid still
// unknown after a refresh, or while refreshes are rate-limited, is
// unknown_kid; when the refresh failed, jwks_unavailable.
func (v *Verifier) keysFor(ctx context.Context, p *provider, t *token) ([]*pubKey, *Error) {
	ks := p.keys.Load()
	if ks != nil {
		if keys, known := ks.candidates(t.kid, t.alg); known {
			return keys, nil
		}
	}
	var refreshErr error
	if p.remote != nil {
		refreshErr = v.refresh(ctx, p, false)
		ks = p.keys.Load()
	}
	if ks == nil {
		return nil, rejectf(ReasonJWKSUnavailable, refreshErr)
	}
	keys, known := ks.candidates(t.kid, t.alg)
	switch {
	case known:
		return keys, nil
	case t.kid == "":
		return nil, rejectf(ReasonBadSignature, errors.New("no key fits the token's alg"))
	case refreshErr != nil && !errors.Is(refreshErr, errRefreshRateLimited):
		// The JWKS could not be fetched (or the caller gave up waiting):
		// the kid may well be valid.
		return nil, rejectf(ReasonJWKSUnavailable, refreshErr)
	}
	return nil, rejectf(ReasonUnknownKID, fmt.Errorf("kid not in the JWKS of provider %s", p.name))
}

// check verifies the compact JWS buf with key under alg. jws's fast path
// handles the usual header (alg, typ, kid, cty); any other header goes
// through jws.Verify, which is stricter about its JSON. Both re-check that
// the header's alg is alg and that key suits alg.
func (v *Verifier) check(buf []byte, alg jwa.SignatureAlgorithm, key any) bool {
	v.sigChecks.Add(1)
	_, err := jws.VerifyCompactFast(key, buf, alg)
	if errors.Is(err, jws.ErrNonMinimalHeader()) {
		_, err = jws.Verify(buf, jws.WithKey(alg, key), jws.WithCompact())
	}
	return err == nil
}
