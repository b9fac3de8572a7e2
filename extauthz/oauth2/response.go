package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// maxExp is the largest exp accepted (well past year 9999, and exactly
// representable as a float64).
const maxExp = 1 << 40

// Result describes an active token.
type Result struct {
	Provider  string
	Subject   string // "sub"; may be empty (client-credentials tokens)
	ClientID  string // "client_id"
	Username  string
	Scopes    []string
	Audiences []string
	// Roles, Tenant and Tier come from the optional non-standard members
	// "roles" (array or space-separated string), "tenant" and "tier".
	Roles  []string
	Tenant string
	Tier   string
	// ExpiresAt is "exp"; zero when the server gave none.
	ExpiresAt time.Time
}

// HasScopes reports whether result grants every required scope. A nil
// result grants nothing; no required scope is always satisfied.
func HasScopes(result *Result, required []string) bool {
	if result == nil {
		return false
	}
	for _, s := range required {
		if !slices.Contains(result.Scopes, s) {
			return false
		}
	}
	return true
}

func (r *Result) expired(now time.Time) bool {
	return !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt)
}

func (r *Result) hasAudience(want []string) bool {
	for _, a := range r.Audiences {
		if slices.Contains(want, a) {
			return true
		}
	}
	return false
}

func (r *Result) clone() *Result {
	out := *r
	out.Scopes = slices.Clone(r.Scopes)
	out.Audiences = slices.Clone(r.Audiences)
	out.Roles = slices.Clone(r.Roles)
	return &out
}

// call POSTs the introspection request. It returns nil, nil for an
// inactive token.
func (in *Introspector) call(ctx context.Context, token string) (*Result, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(in.user, in.password)
	resp, err := in.client.Do(req)
	if err != nil {
		return nil, err // a *url.Error: the URL without credentials
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("endpoint answered %s", resp.Status)
	}
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("response exceeds %d bytes", maxResponseBytes)
	}
	return in.parse(body)
}

// wireResponse is the introspection response (RFC 7662 §2.2).
type wireResponse struct {
	Active   *bool        `json:"active"`
	Exp      *json.Number `json:"exp"`
	Scope    spaceList    `json:"scope"`
	Aud      audience     `json:"aud"`
	Sub      string       `json:"sub"`
	ClientID string       `json:"client_id"`
	Username string       `json:"username"`
	Roles    spaceList    `json:"roles"`
	Tenant   string       `json:"tenant"`
	Tier     string       `json:"tier"`
}

// parse decodes a response body; nil, nil for an inactive token.
func (in *Introspector) parse(body []byte) (*Result, error) {
	var w wireResponse
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	if w.Active == nil {
		return nil, errors.New("response without \"active\"")
	}
	if !*w.Active {
		return nil, nil
	}
	res := &Result{Provider: in.name, Subject: w.Sub, ClientID: w.ClientID, Username: w.Username,
		Scopes: w.Scope, Audiences: w.Aud, Roles: w.Roles, Tenant: w.Tenant, Tier: w.Tier}
	if w.Exp != nil {
		exp, err := parseNumericDate(*w.Exp)
		if err != nil {
			return nil, fmt.Errorf("decode exp: %w", err)
		}
		res.ExpiresAt = exp
	}
	return res, nil
}

// parseNumericDate parses seconds since the epoch, fractions allowed.
func parseNumericDate(n json.Number) (time.Time, error) {
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, err
	}
	if math.IsNaN(f) || f < 0 || f > maxExp {
		return time.Time{}, fmt.Errorf("%s is out of range", n)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// spaceList is a JSON string of space-separated values, or an array of
// strings.
type spaceList []string

func (l *spaceList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = nonEmpty(strings.Fields(s))
		return nil
	}
	var a []string
	if err := json.Unmarshal(b, &a); err != nil {
		return errors.New("want a string or an array of strings")
	}
	*l = nonEmpty(a)
	return nil
}

// audience is "aud": one string, or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s != "" {
			*a = []string{s}
		}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("want a string or an array of strings")
	}
	*a = nonEmpty(l)
	return nil
}

// nonEmpty returns l, or nil when l is empty.
func nonEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}
