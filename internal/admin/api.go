// Package admin is the control plane's HTTP+JSON admin API and its client.
//
// Every /v1 endpoint and /metrics needs "Authorization: Bearer <token>":
// there is no unauthenticated mode (tollgate serve generates a token when
// none is configured). Every request, /healthz and /readyz included, must
// name an allowed Host, must not come from a web page unless its origin is
// allowed, and must send a body as application/json (see Access).
package admin

import (
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/policy"
)

// PolicyRequest carries policy files to push, validate or diff.
type PolicyRequest struct {
	Files []store.File `json:"files"`
	// Source says who pushes (user@host, a CI job); it lands in the history.
	Source string `json:"source,omitempty"`
	// ExpectVersion, when set, makes the push fail with 409 (conflict)
	// unless it is the current version (compare-and-set).
	ExpectVersion string `json:"expectVersion,omitempty"`
	// Message says why (push -m); it is stored with the history event.
	Message string `json:"message,omitempty"`
}

// RollbackRequest names the stored version to serve again.
type RollbackRequest struct {
	Version string `json:"version"`
	Source  string `json:"source,omitempty"`
	// Message says why (rollback -m); it is stored with the history event.
	Message string `json:"message,omitempty"`
}

// ValidateResponse is the answer to a valid policy.
type ValidateResponse struct {
	Version     string             `json:"version"`
	Diagnostics policy.Diagnostics `json:"diagnostics,omitempty"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error       string             `json:"error"`
	Diagnostics policy.Diagnostics `json:"diagnostics,omitempty"`
	// Result is set when a push reached the proxies and was rolled back.
	Result any `json:"result,omitempty"`
}
