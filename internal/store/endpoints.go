package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// endpointsFile holds the endpoint overrides, next to current.
const endpointsFile = "endpoints.json"

// EndpointOverride replaces the endpoints of one backend (set with
// `tollgate endpoints set`). It stays in effect, across pushes and
// restarts, while the policy's own endpoints of the backend are still
// PolicyEndpoints; a push that changes them ends it.
type EndpointOverride struct {
	Backend string `json:"backend"`
	// Endpoints are "ip:port" ("[ipv6]:port").
	Endpoints []string `json:"endpoints"`
	// PolicyEndpoints is the fingerprint of the backend's endpoints in the
	// policy when the override was set.
	PolicyEndpoints string    `json:"policyEndpoints"`
	Source          string    `json:"source,omitempty"`
	SetAt           time.Time `json:"setAt"`
}

// EndpointOverrides returns the stored overrides by backend (empty, not
// nil, when there are none).
func (d *Dir) EndpointOverrides() (map[string]EndpointOverride, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]EndpointOverride{}
	b, err := os.ReadFile(filepath.Join(d.path, endpointsFile))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read endpoint overrides: %w", err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode endpoint overrides: %w", err)
	}
	return out, nil
}

// SetEndpointOverrides replaces the stored overrides atomically.
func (d *Dir) SetEndpointOverrides(m map[string]EndpointOverride) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m == nil {
		m = map[string]EndpointOverride{}
	}
	if err := writeJSON(filepath.Join(d.path, endpointsFile), m); err != nil {
		return fmt.Errorf("store endpoint overrides: %w", err)
	}
	return nil
}
