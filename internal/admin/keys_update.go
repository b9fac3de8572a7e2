package admin

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/extauthz/apikey"
)

// UpdateKeyRequest changes a key without reissuing it: absent fields keep
// their value.
type UpdateKeyRequest struct {
	// Tier is the new tier; "" clears it (the policy's default tier).
	Tier  *string   `json:"tier,omitempty"`
	Roles *[]string `json:"roles,omitempty"`
	// ExpiresIn is a Go duration from now ("720h"), or "never".
	ExpiresIn *string `json:"expiresIn,omitempty"`
}

// neverExpires is the ExpiresIn of a key that never expires.
const neverExpires = "never"

func (s *Server) updateKey(w http.ResponseWriter, r *http.Request) {
	var req UpdateKeyRequest
	if !decode(w, r, &req) {
		return
	}
	ch, msg := keyChange(req, time.Now())
	if msg == "" && req.Tier != nil {
		msg = s.checkTier(*req.Tier)
	}
	if msg != "" {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: msg})
		return
	}
	id := r.PathValue("id")
	rec, err := s.keys.Update(r.Context(), id, ch)
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "no key with id " + id})
	case errors.Is(err, apikey.ErrRevoked):
		writeJSON(w, http.StatusConflict, ErrorResponse{Error: "key " + id + " is revoked: create a new one"})
	case errors.Is(err, apikey.ErrSignedExpiry):
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "expiresIn: " + err.Error()})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "key store: " + err.Error()})
	default:
		s.log.Info("api key updated", "id", id, "tier", rec.Tier, "roles", rec.Roles, "expires", rec.ExpiresAt)
		writeJSON(w, http.StatusOK, rec)
	}
}

// keyChange validates an update request; msg says what is wrong.
func keyChange(req UpdateKeyRequest, now time.Time) (apikey.Change, string) {
	ch := apikey.Change{Tier: req.Tier, Roles: req.Roles}
	if req.Tier == nil && req.Roles == nil && req.ExpiresIn == nil {
		return ch, "nothing to change: set tier, roles or expiresIn"
	}
	if req.Roles != nil {
		if msg := rolesProblem(*req.Roles); msg != "" {
			return ch, msg
		}
	}
	if req.ExpiresIn != nil {
		at := time.Time{}
		if *req.ExpiresIn != neverExpires {
			d, err := time.ParseDuration(*req.ExpiresIn)
			if err != nil || d <= 0 {
				return ch, `expiresIn must be a positive duration such as 720h, or "never"`
			}
			at = now.Add(d).UTC()
		}
		ch.ExpiresAt = &at
	}
	return ch, ""
}

// checkTier says what is wrong with a key's tier, or "" if nothing: a
// tier must be one of the served policy's rate-limit tiers. When the
// policy defines none (or none is served yet) any tier goes: it only
// reaches the upstream in the identity header.
func (s *Server) checkTier(tier string) string {
	cfg := s.ctl.Config()
	if tier == "" || cfg == nil || len(cfg.RateLimits.Tiers) == 0 {
		return ""
	}
	names := make([]string, 0, len(cfg.RateLimits.Tiers))
	for _, t := range cfg.RateLimits.Tiers {
		names = append(names, t.Name)
	}
	if slices.Contains(names, tier) {
		return ""
	}
	return fmt.Sprintf("unknown tier %q: the served policy's tiers are %s (rateLimits.tiers)", tier, strings.Join(names, ", "))
}
