package admin

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/xds"
)

// EndpointsRequest sets a backend's endpoints ("ip:port" each).
type EndpointsRequest struct {
	Endpoints []string `json:"endpoints"`
	Source    string   `json:"source,omitempty"`
}

// endpointRoutes registers the endpoint override API on mux.
func (s *Server) endpointRoutes(mux *routeMux) {
	mux.Handle("GET /v1/endpoints/{backend}", s.auth(http.HandlerFunc(s.getEndpoints)))
	mux.Handle("PUT /v1/endpoints/{backend}", s.auth(http.HandlerFunc(s.setEndpoints)))
	mux.Handle("DELETE /v1/endpoints/{backend}", s.auth(http.HandlerFunc(s.resetEndpoints)))
}

func (s *Server) getEndpoints(w http.ResponseWriter, r *http.Request) {
	v, err := s.ctl.Endpoints(r.PathValue("backend"))
	s.answerEndpoints(w, v, err)
}

func (s *Server) setEndpoints(w http.ResponseWriter, r *http.Request) {
	var req EndpointsRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Endpoints == nil {
		req.Endpoints = []string{} // refused: use DELETE to go back to the policy's
	}
	v, err := s.ctl.SetEndpoints(r.Context(), r.PathValue("backend"), req.Endpoints, req.Source)
	s.answerEndpoints(w, v, err)
}

func (s *Server) resetEndpoints(w http.ResponseWriter, r *http.Request) {
	v, err := s.ctl.SetEndpoints(r.Context(), r.PathValue("backend"), nil, r.URL.Query().Get("source"))
	s.answerEndpoints(w, v, err)
}

// answerEndpoints maps an endpoint change's outcome: 404 for an unknown
// backend, 422 for a refused change, 409 when a proxy rejected it or
// another replica's change held the store's lock too long.
func (s *Server) answerEndpoints(w http.ResponseWriter, v *controlplane.EndpointsView, err error) {
	var epErr *controlplane.EndpointsError
	var nack *xds.NackError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, controlplane.ErrUnknownBackend):
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: err.Error()})
	case errors.As(err, &epErr):
		writeJSON(w, http.StatusUnprocessableEntity, ErrorResponse{Error: err.Error()})
	case errors.As(err, &nack), errors.Is(err, store.ErrConflict):
		writeJSON(w, http.StatusConflict, ErrorResponse{Error: err.Error()})
	default:
		s.log.Error("endpoints request failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: err.Error()})
	}
}

// Endpoints returns a backend's served endpoints.
func (c *Client) Endpoints(ctx context.Context, backend string) (*controlplane.EndpointsView, error) {
	var out controlplane.EndpointsView
	return &out, c.do(ctx, http.MethodGet, "/v1/endpoints/"+url.PathEscape(backend), nil, &out)
}

// SetEndpoints replaces a backend's endpoints (an EDS-only change).
func (c *Client) SetEndpoints(ctx context.Context, backend string, req EndpointsRequest) (*controlplane.EndpointsView, error) {
	var out controlplane.EndpointsView
	return &out, c.do(ctx, http.MethodPut, "/v1/endpoints/"+url.PathEscape(backend), req, &out)
}

// ResetEndpoints drops a backend's override: the policy's endpoints again.
func (c *Client) ResetEndpoints(ctx context.Context, backend, source string) (*controlplane.EndpointsView, error) {
	var out controlplane.EndpointsView
	return &out, c.do(ctx, http.MethodDelete, "/v1/endpoints/"+url.PathEscape(backend)+"?source="+url.QueryEscape(source), nil, &out)
}
