package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/policy"
	"github.com/tollgate/tollgate/xds"
)

// maxBody bounds a request body: policies are text, 8 MiB is plenty.
const maxBody = 8 << 20

// Server serves the admin API for one Controller.
type Server struct {
	log    *slog.Logger
	ctl    *controlplane.Controller
	keys   apikey.Store
	access Access
	gath   prometheus.Gatherer
	ready  atomic.Bool
}

// NewServer returns the admin API, guarded as access says (an empty token
// refuses every authenticated call). keys may be nil: no key endpoints.
func NewServer(log *slog.Logger, ctl *controlplane.Controller, keys apikey.Store, access Access, gath prometheus.Gatherer) *Server {
	return &Server{log: log, ctl: ctl, keys: keys, access: access, gath: gath}
}

// SetReady marks the control plane ready (its policy restored).
func (s *Server) SetReady() { s.ready.Store(true) }

// Handler returns the API's routes behind the checks of Access.
func (s *Server) Handler() http.Handler {
	return s.access.guard(s.routes())
}

// routes registers every route of the API on a new mux.
func (s *Server) routes() *routeMux {
	mux := &routeMux{ServeMux: http.NewServeMux()}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.auth(promhttp.HandlerFor(s.gath, promhttp.HandlerOpts{})))
	mux.Handle("POST /v1/policy", s.auth(http.HandlerFunc(s.push)))
	mux.Handle("POST /v1/policy/validate", s.auth(http.HandlerFunc(s.validate)))
	mux.Handle("POST /v1/policy/diff", s.auth(http.HandlerFunc(s.diff)))
	mux.Handle("GET /v1/policy", s.auth(http.HandlerFunc(s.current)))
	mux.Handle("GET /v1/policy/versions/{id}", s.auth(http.HandlerFunc(s.version)))
	mux.Handle("GET /v1/history", s.auth(http.HandlerFunc(s.history)))
	mux.Handle("POST /v1/rollback", s.auth(http.HandlerFunc(s.rollback)))
	mux.Handle("GET /v1/status", s.auth(http.HandlerFunc(s.status)))
	mux.Handle("POST /v1/keys", s.keysOrUnavailable(s.createKey))
	mux.Handle("GET /v1/keys", s.keysOrUnavailable(s.listKeys))
	mux.Handle("DELETE /v1/keys/{id}", s.keysOrUnavailable(s.revokeKey))
	mux.Handle("PATCH /v1/keys/{id}", s.keysOrUnavailable(s.updateKey)) // keys_update.go
	s.endpointRoutes(mux)
	return mux
}

// routeMux is a ServeMux that remembers the patterns registered on it.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

// Handle registers h for pattern ("METHOD /path") and records pattern.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	m.patterns = append(m.patterns, pattern)
}

// HandleFunc registers h for pattern and records pattern.
func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// Routes returns the "METHOD /path" patterns the API serves, in
// registration order (docs/reference/admin-api.yaml documents each).
func Routes() []string {
	s := NewServer(nil, nil, nil, Access{}, prometheus.NewRegistry())
	return s.routes().patterns
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "restoring policy"})
		return
	}
	fmt.Fprintln(w, "ready")
}

func (s *Server) push(w http.ResponseWriter, r *http.Request) {
	var req PolicyRequest
	if !decode(w, r, &req) {
		return
	}
	o := controlplane.Origin{Action: "push", Source: req.Source, Reason: req.Message}
	res, err := s.ctl.PushWith(r.Context(), req.Files, o, req.ExpectVersion)
	s.answer(w, res, err)
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request) {
	var req PolicyRequest
	if !decode(w, r, &req) {
		return
	}
	res, err := s.ctl.DryRun(req.Files)
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, ValidateResponse{Version: res.Version, Diagnostics: res.Diagnostics})
}

func (s *Server) diff(w http.ResponseWriter, r *http.Request) {
	var req PolicyRequest
	if !decode(w, r, &req) {
		return
	}
	res, err := s.ctl.DryRun(req.Files)
	s.answer(w, res, err)
}

func (s *Server) current(w http.ResponseWriter, _ *http.Request) {
	v := s.ctl.Current()
	if v == nil {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "no policy has been pushed yet"})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	v, err := s.ctl.Version(r.PathValue("id"))
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) history(w http.ResponseWriter, _ *http.Request) {
	h, err := s.ctl.History()
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	if h == nil {
		h = []store.Event{}
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	var req RollbackRequest
	if !decode(w, r, &req) {
		return
	}
	res, err := s.ctl.RollbackWith(r.Context(), req.Version, controlplane.Origin{Source: req.Source, Reason: req.Message})
	s.answer(w, res, err)
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.ctl.Status())
}

// answer maps a controller outcome to a status code: 422 for an invalid
// policy, 409 for a push the proxies rejected or a conflict with another
// replica's push, 404 for an unknown version.
func (s *Server) answer(w http.ResponseWriter, res *controlplane.PushResult, err error) {
	var rej *controlplane.RejectedError
	var nack *xds.NackError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.As(err, &rej):
		writeJSON(w, http.StatusUnprocessableEntity, ErrorResponse{Error: err.Error(), Diagnostics: rej.Diagnostics})
	case errors.Is(err, store.ErrConflict):
		writeJSON(w, http.StatusConflict, ErrorResponse{Error: err.Error()})
	case errors.As(err, &nack):
		writeJSON(w, http.StatusConflict, ErrorResponse{Error: err.Error(), Result: res})
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: err.Error()})
	default:
		s.log.Error("admin request failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: err.Error()})
	}
}

// decode reads a JSON body holding exactly one value, answering itself on
// failure: 413 when the body is larger than maxBody, 400 when it is not
// UTF-8 (JSON decoding would silently turn a bad byte into U+FFFD) or not
// one JSON value of v's shape (trailing data included: a request must mean
// exactly what it says).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.ContentLength > maxBody {
		tooLarge(w)
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var big *http.MaxBytesError
	switch {
	case errors.As(err, &big):
		tooLarge(w)
		return false
	case err != nil:
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "read request body: " + err.Error()})
		return false
	case !utf8.Valid(body):
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "bad request body: not valid UTF-8"})
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		err = expectEOF(dec)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "bad request body: " + err.Error()})
		return false
	}
	return true
}

// expectEOF returns an error if anything but white space follows the
// decoded value.
func expectEOF(dec *json.Decoder) error {
	_, err := dec.Token()
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return fmt.Errorf("after the JSON value: %w", err)
	}
	return errors.New("data after the JSON value")
}

func tooLarge(w http.ResponseWriter) {
	writeJSON(w, http.StatusRequestEntityTooLarge, ErrorResponse{
		Error: fmt.Sprintf("request body larger than %d bytes; a policy is limited to %d bytes (see policy.DefaultLimits)",
			maxBody, policy.DefaultLimits().MaxBytes),
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// IsLoopback reports whether addr (host:port) binds only loopback.
func IsLoopback(addr string) bool {
	host := addr
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		host = addr[:i]
	}
	host = strings.Trim(host, "[]")
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}
