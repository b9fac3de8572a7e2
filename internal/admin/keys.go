package admin

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/contract"
)

// CreateKeyRequest asks for a new API key.
type CreateKeyRequest struct {
	Consumer string   `json:"consumer"`
	Tenant   string   `json:"tenant,omitempty"`
	Tier     string   `json:"tier,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	// ExpiresIn is a Go duration ("720h"); empty means the key never expires.
	ExpiresIn string `json:"expiresIn,omitempty"`
	// Format is "signed" (a token Envoy can verify itself) or "opaque"
	// (tg_<id>_<secret>_<checksum>); empty means signed when the server can
	// sign keys, opaque otherwise.
	Format string `json:"format,omitempty"`
}

// CreateKeyResponse carries the key, shown this once: only its HMAC is stored.
type CreateKeyResponse struct {
	Key    string        `json:"key"`
	Record apikey.Record `json:"record"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var req CreateKeyRequest
	if !decode(w, r, &req) {
		return
	}
	rec, msg := keyRecord(req, time.Now())
	if msg == "" {
		msg = s.checkTier(req.Tier)
	}
	if msg != "" {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: msg})
		return
	}
	key, rec, err := s.keys.Create(r.Context(), rec)
	if errors.Is(err, apikey.ErrFormat) {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "format: " + err.Error()})
		return
	}
	if err != nil {
		s.log.Error("create api key", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "key store: " + err.Error()})
		return
	}
	s.log.Info("api key created", "id", rec.ID, "consumer", rec.Consumer, "tier", rec.Tier)
	writeJSON(w, http.StatusCreated, CreateKeyResponse{Key: key, Record: rec})
}

// keyRecord validates a create request; msg says what is wrong.
func keyRecord(req CreateKeyRequest, now time.Time) (apikey.Record, string) {
	rec := apikey.Record{Consumer: req.Consumer, Tenant: req.Tenant, Tier: req.Tier, Roles: req.Roles, CreatedAt: now.UTC(),
		Format: req.Format}
	if !contract.ValidConsumer(req.Consumer) {
		return rec, "consumer must be 1-128 characters: letters, digits, '.', '_', '@', '-'"
	}
	if !contract.HeaderSafe(req.Tenant) {
		return rec, fmt.Sprintf("tenant %q holds a control character (CR, LF, NUL, DEL...): "+
			"it reaches upstreams in the tenant identity header; remove it", req.Tenant)
	}
	if req.Format != "" && req.Format != apikey.FormatSigned && req.Format != apikey.FormatOpaque {
		return rec, fmt.Sprintf("format %q: want %q or %q", req.Format, apikey.FormatSigned, apikey.FormatOpaque)
	}
	if msg := rolesProblem(req.Roles); msg != "" {
		return rec, msg
	}
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			return rec, "expiresIn must be a positive duration such as 720h"
		}
		rec.ExpiresAt = now.Add(d).UTC()
	}
	return rec, ""
}

// rolesProblem says why roles cannot be a key's roles, "" if they can:
// each reaches upstreams in the comma-joined roles header, so a role with a
// comma, whitespace or a control character would read as other roles.
func rolesProblem(roles []string) string {
	for i, r := range roles {
		if !contract.ValidRole(r) {
			return fmt.Sprintf("roles[%d] %q: a role must be non-empty, without commas, whitespace or control characters "+
				"(roles reach upstreams joined with commas)", i, r)
		}
	}
	return ""
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	consumer := r.URL.Query().Get("consumer")
	if consumer == "" {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "the consumer query parameter is required"})
		return
	}
	recs, err := s.keys.List(r.Context(), consumer)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "key store: " + err.Error()})
		return
	}
	if recs == nil {
		recs = []apikey.Record{}
	}
	writeJSON(w, http.StatusOK, recs)
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := s.keys.Revoke(r.Context(), id)
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "no key with id " + id})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "key store: " + err.Error()})
	default:
		s.log.Info("api key revoked", "id", id)
		writeJSON(w, http.StatusOK, map[string]string{"revoked": id})
	}
}

// keysOrUnavailable wraps the key handlers: without a key store the
// endpoints answer 404 with a hint.
func (s *Server) keysOrUnavailable(h http.HandlerFunc) http.Handler {
	return s.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.keys == nil {
			writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "this server has no API key store"})
			return
		}
		h(w, r)
	}))
}
