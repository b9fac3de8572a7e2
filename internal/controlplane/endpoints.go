package controlplane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/policy"
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/xds"
)

// overridesLockWait bounds how long an endpoint change waits for another
// replica's push or endpoint change to release the store's lock.
const overridesLockWait = 10 * time.Second

// ErrUnknownBackend is returned for a backend the served policy lacks.
var ErrUnknownBackend = errors.New("unknown backend")

// EndpointsError is a refused endpoint change: bad addresses, or a backend
// whose endpoints Envoy resolves itself. Nothing changed.
type EndpointsError struct{ Msg string }

func (e *EndpointsError) Error() string { return e.Msg }

// EndpointsView is a backend's served endpoints.
type EndpointsView struct {
	Backend string `json:"backend"`
	// Endpoints are the served ones: the override's, or the policy's.
	Endpoints       []string            `json:"endpoints"`
	Overridden      bool                `json:"overridden"`
	PolicyEndpoints []string            `json:"policyEndpoints"`
	Version         string              `json:"version"`
	Gateways        []xds.GatewayResult `json:"gateways,omitempty"`
}

// Endpoints returns the served endpoints of backend.
func (c *Controller) Endpoints(backend string) (*EndpointsView, error) {
	s := c.cur.Load()
	if s == nil {
		return nil, fmt.Errorf("backend %q: %w (no policy served yet)", backend, ErrUnknownBackend)
	}
	b, err := edsBackend(s.cfg, backend)
	if err != nil {
		return nil, err
	}
	overrides, err := c.store.EndpointOverrides()
	if err != nil {
		return nil, err
	}
	return view(s, b, effective(s.cfg, overrides)), nil
}

// SetEndpoints replaces the endpoints of backend ("ip:port" each) without a
// policy push: only the backend's ClusterLoadAssignment changes, so Envoy
// gets an EDS update and nothing else. The override is stored before Envoy
// sees it and lasts until a push changes the backend's endpoints in the
// policy (or ResetEndpoints). eps nil removes the override.
//
// The change runs under the store's lock, after catching up with the
// store (as a push does), so it serialises with pushes and with endpoint
// changes through other replicas: none is lost, and the history stays
// linear.
func (c *Controller) SetEndpoints(ctx context.Context, backend string, eps []string, source string) (*EndpointsView, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	unlock, current, err := c.lockStore(ctx, overridesLockWait) // ha.go
	if err != nil {
		return nil, err
	}
	defer unlock()
	s := c.cur.Load()
	if s == nil {
		return nil, fmt.Errorf("backend %q: %w (no policy served yet)", backend, ErrUnknownBackend)
	}
	if s.version.ID != current {
		return nil, &store.ConflictError{Expected: s.version.ID, Current: current,
			Reason: "this replica could not serve the store's current version (see its log), so its endpoints cannot be changed through it; push a fixed policy or use another replica"}
	}
	b, err := edsBackend(s.cfg, backend)
	if err != nil {
		return nil, err
	}
	old, err := c.store.EndpointOverrides()
	if err != nil {
		return nil, err
	}
	next := maps.Clone(effective(s.cfg, old))
	if eps == nil {
		delete(next, backend)
	} else {
		canon, err := canonicalEndpoints(eps)
		if err != nil {
			return nil, err
		}
		next[backend] = store.EndpointOverride{Backend: backend, Endpoints: canon, PolicyEndpoints: fingerprint(b.Endpoints),
			Source: source, SetAt: c.now().UTC()}
	}
	return c.applyOverrides(ctx, s, b, old, next, source)
}

// applyOverrides stores next, serves the current policy with it and
// records the change; on failure the old overrides come back.
func (c *Controller) applyOverrides(ctx context.Context, s *served, b ir.Backend, old, next map[string]store.EndpointOverride, source string) (*EndpointsView, error) {
	res, err := c.translateAll(withOverrides(s.cfg, next), s)
	if err != nil {
		return nil, fmt.Errorf("translate with endpoint overrides (a bug in tollgate, please report it): %w", err)
	}
	if err := c.store.SetEndpointOverrides(next); err != nil {
		return nil, err
	}
	gws, err := c.xds.Apply(ctx, res)
	if err != nil {
		return nil, errors.Join(err, c.store.SetEndpointOverrides(old))
	}
	ns := &served{version: s.version, cfg: s.cfg, resources: res}
	c.cur.Store(ns)
	v := view(ns, b, next)
	msg := fmt.Sprintf("endpoints of %s: %s", b.Name, strings.Join(v.Endpoints, " "))
	if !v.Overridden {
		msg = fmt.Sprintf("endpoints of %s: back to the policy's", b.Name)
	}
	_, err = c.store.Append(store.Event{Version: s.version.ID, Action: "endpoints", Outcome: store.Applied, Message: msg, Source: source, At: c.now().UTC()})
	v.Gateways = gws
	c.log.Info("endpoints changed", "backend", b.Name, "endpoints", v.Endpoints, "overridden", v.Overridden)
	return v, err
}

// edsBackend returns the backend named name if its endpoints can be
// overridden (it does not use DNS).
func edsBackend(cfg *ir.Config, name string) (ir.Backend, error) {
	b, ok := cfg.Backend(name)
	if !ok {
		return b, fmt.Errorf("backend %q: %w", name, ErrUnknownBackend)
	}
	if b.UsesDNS() {
		return b, &EndpointsError{Msg: fmt.Sprintf("backend %q names the DNS host %s: Envoy resolves its endpoints, so they cannot be set; change the DNS records or the policy", name, b.DNS.Host)}
	}
	return b, nil
}

// canonicalEndpoints parses eps and returns them canonical, sorted and
// distinct.
func canonicalEndpoints(eps []string) ([]string, error) {
	if len(eps) == 0 {
		return nil, &EndpointsError{Msg: "give at least one endpoint ip:port"}
	}
	parsed := make([]ir.Endpoint, 0, len(eps))
	for _, s := range eps {
		e, ok := policy.ParseEndpoint(s)
		if !ok {
			return nil, &EndpointsError{Msg: fmt.Sprintf("endpoint %q is not ip:port (e.g. 10.0.0.1:8080 or [2001:db8::1]:8080; DNS names are not allowed here)", s)}
		}
		parsed = append(parsed, e)
	}
	policy.SortEndpoints(parsed)
	parsed = slices.Compact(parsed)
	out := make([]string, len(parsed))
	for i, e := range parsed {
		out[i] = endpointString(e)
	}
	return out, nil
}

func endpointString(e ir.Endpoint) string {
	if strings.Contains(e.Host, ":") {
		return "[" + e.Host + "]:" + strconv.FormatUint(uint64(e.Port), 10)
	}
	return e.Host + ":" + strconv.FormatUint(uint64(e.Port), 10)
}

// fingerprint identifies a backend's endpoints in the policy, weights and
// zones included.
func fingerprint(eps []ir.Endpoint) string {
	parts := make([]string, len(eps))
	for i, e := range eps {
		parts[i] = fmt.Sprintf("%s/%d/%s", endpointString(e), e.Weight, e.Zone)
	}
	return strings.Join(parts, ",")
}

// effective returns the overrides that apply to cfg: those of backends it
// still has, without DNS, whose policy endpoints are what they were when
// the override was set.
func effective(cfg *ir.Config, overrides map[string]store.EndpointOverride) map[string]store.EndpointOverride {
	out := make(map[string]store.EndpointOverride, len(overrides))
	for name, o := range overrides {
		if b, ok := cfg.Backend(name); ok && !b.UsesDNS() && fingerprint(b.Endpoints) == o.PolicyEndpoints {
			out[name] = o
		}
	}
	return out
}

// withOverrides returns cfg with the endpoints of the overridden backends
// replaced; cfg itself when none applies. cfg is not modified.
func withOverrides(cfg *ir.Config, overrides map[string]store.EndpointOverride) *ir.Config {
	eff := effective(cfg, overrides)
	if len(eff) == 0 {
		return cfg
	}
	out := *cfg
	out.Backends = slices.Clone(cfg.Backends)
	for i, b := range out.Backends {
		o, ok := eff[b.Name]
		if !ok {
			continue
		}
		eps := make([]ir.Endpoint, 0, len(o.Endpoints))
		for _, s := range o.Endpoints {
			if e, ok := policy.ParseEndpoint(s); ok {
				eps = append(eps, e)
			}
		}
		out.Backends[i].Endpoints = eps
	}
	return &out
}

// view describes backend b as s serves it with the overrides eff.
func view(s *served, b ir.Backend, eff map[string]store.EndpointOverride) *EndpointsView {
	v := &EndpointsView{Backend: b.Name, Version: s.version.ID, PolicyEndpoints: make([]string, 0, len(b.Endpoints))}
	for _, e := range b.Endpoints {
		v.PolicyEndpoints = append(v.PolicyEndpoints, endpointString(e))
	}
	v.Endpoints = v.PolicyEndpoints
	if o, ok := eff[b.Name]; ok && fingerprint(b.Endpoints) == o.PolicyEndpoints {
		v.Endpoints, v.Overridden = o.Endpoints, true
	}
	return v
}

// pruneOverrides forgets stored overrides that no longer apply to cfg
// (a push changed their backend's endpoints, or removed the backend).
func (c *Controller) pruneOverrides(cfg *ir.Config) error {
	all, err := c.store.EndpointOverrides()
	if err != nil {
		return err
	}
	eff := effective(cfg, all)
	if len(eff) == len(all) {
		return nil
	}
	for name := range all {
		if _, ok := eff[name]; !ok {
			c.log.Info("endpoint override ended: the pushed policy changed the backend's endpoints", "backend", name)
		}
	}
	return c.store.SetEndpointOverrides(eff)
}
