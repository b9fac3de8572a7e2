// Package controlplane turns policy pushes into served configuration: it
// validates, compiles and translates a policy, stores it, applies it to the
// xDS server and keeps the history.
//
// Contract: a push is all-or-nothing. A policy that fails validation
// changes nothing; one that a proxy rejects (NACK) is rolled back on every
// gateway and recorded as rejected; the store's current version is always
// the one being served, so a restart never serves an older or empty one.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/policy"
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/xds"
	"github.com/tollgate/tollgate/xds/translator"
)

// Applier serves translated resources to proxies: *xds.Server.
type Applier interface {
	Apply(ctx context.Context, desired map[string]*translator.Resources) ([]xds.GatewayResult, error)
	Status() []xds.NodeStatus
}

// TableSwapper is a service whose table follows the policy, such as the
// ext_authz service. Swap activates the table of cfg and returns a function
// that puts the previous one back.
type TableSwapper interface {
	Swap(cfg *ir.Config) (restore func(), err error)
}

// Options configure a Controller.
type Options struct {
	// Translate is passed to the translator (the ext_authz address).
	Translate translator.Options
	// Services get the new policy's tables before Envoy gets its snapshot,
	// so a route never reaches a service that does not know it yet.
	Services []TableSwapper
	// Metrics records snapshot build times; nil records nothing.
	Metrics *Metrics
}

// Controller owns the served policy.
type Controller struct {
	log   *slog.Logger
	store store.Store
	xds   Applier
	opts  Options
	now   func() time.Time

	mu  sync.Mutex // serialises changes
	cur atomic.Pointer[served]
	// refused is a version another replica made current that this replica
	// could not serve (ha.go); it is not retried until it changes.
	refused string
	// overridesSeen is the endpoint overrides (JSON) last served (ha.go).
	overridesSeen string
	// mem sets the collector's target during pushes and returns their
	// memory to the system after them (gc.go).
	mem pushMemory
	// parse keeps the YAML trees of the last compiled policy's parts, so
	// that a push re-parses only the text it changed. Compiles may run
	// concurrently (DryRun takes no lock); the cache is safe for that.
	parse *policy.ParseCache
	// anyTypes is what validating the resources learnt about their message
	// types (envoy.AnyTypes), kept so each push does not analyse them again.
	anyTypes *envoy.AnyTypes
}

// served is the policy version being served, with what it compiled to.
type served struct {
	version   *store.Version
	cfg       *ir.Config
	resources map[string]*translator.Resources
}

// New returns a Controller serving nothing yet; call Restore first.
func New(log *slog.Logger, st store.Store, applier Applier, opts Options) *Controller {
	return &Controller{log: log, store: st, xds: applier, opts: opts, now: time.Now, parse: policy.NewParseCache(),
		anyTypes: &envoy.AnyTypes{}}
}

// RejectedError is a policy that failed validation; nothing changed.
type RejectedError struct{ Diagnostics policy.Diagnostics }

func (e *RejectedError) Error() string {
	return fmt.Sprintf("policy rejected: %d error(s)", len(e.Diagnostics.Errors()))
}

// compiled is a validated policy ready to apply.
type compiled struct {
	version   *store.Version
	cfg       *ir.Config
	resources map[string]*translator.Resources
	diags     policy.Diagnostics
}

// compile validates files and translates them for every gateway.
func (c *Controller) compile(files []store.File) (*compiled, error) {
	c.mem.enter()
	defer c.mem.done()
	cp, translated, err := c.startCompile(files)
	if err != nil {
		return nil, err
	}
	if err := translated(); err != nil {
		return nil, err
	}
	return cp, nil
}

// startCompile validates files and computes their version id while it
// translates them on another goroutine: cp.resources is set once
// translated returns nil (it waits for the translation; call it before
// reading cp.resources, and before returning, so that no translation
// outlives its push). A policy that does not validate gives a
// *RejectedError and no translation.
func (c *Controller) startCompile(files []store.File) (cp *compiled, translated func() error, err error) {
	start := time.Now()
	defer func() {
		if err != nil {
			c.opts.Metrics.timeBuild(start, &err)
		}
	}()
	pf := make([]policy.File, len(files))
	for i, f := range files {
		pf[i] = policy.File{Name: f.Name, Content: []byte(f.Content)}
	}
	cfg, diags := policy.BuildCached(pf, c.parse)
	if diags.HasErrors() {
		return nil, nil, &RejectedError{Diagnostics: diags}
	}
	overrides, err := c.store.EndpointOverrides()
	if err != nil {
		return nil, nil, err
	}
	cp = &compiled{cfg: cfg, diags: diags}
	prev := c.cur.Load()
	done := make(chan error, 1)
	go func() { // cfg is immutable: the hash below reads it meanwhile
		res, err := c.translateAll(withOverrides(cfg, overrides), prev) // endpoints.go
		cp.resources = res
		done <- err
	}()
	cp.version = &store.Version{ID: cfg.Hash(), Files: files, CreatedAt: c.now().UTC()}
	translated = sync.OnceValue(func() (err error) {
		defer c.opts.Metrics.timeBuild(start, &err)
		if err := <-done; err != nil {
			// The policy validated, so Envoy must accept it: this is our bug.
			return fmt.Errorf("translate policy (a bug in tollgate, please report it): %w", err)
		}
		return nil
	})
	return cp, translated, nil
}

// translateAll translates and validates every gateway of cfg, sharing the
// unchanged route messages of prev, the served version (nil for none):
// translator.TranslateValidated.
func (c *Controller) translateAll(cfg *ir.Config, prev *served) (map[string]*translator.Resources, error) {
	out := make(map[string]*translator.Resources, len(cfg.Gateways))
	for _, g := range cfg.Gateways {
		var before *translator.Resources
		if prev != nil {
			before = prev.resources[g.Name]
		}
		r, err := translator.TranslateValidated(cfg, g.Name, c.opts.Translate, before, c.anyTypes)
		if err != nil {
			return nil, fmt.Errorf("gateway %s: %w", g.Name, err)
		}
		out[g.Name] = r
	}
	return out, nil
}

// Current returns the served version, or nil before the first policy.
func (c *Controller) Current() *store.Version {
	if s := c.cur.Load(); s != nil {
		return s.version
	}
	return nil
}

// Config returns the served IR, or nil before the first policy. The
// ext_authz and rate-limit tables are built from it.
func (c *Controller) Config() *ir.Config {
	if s := c.cur.Load(); s != nil {
		return s.cfg
	}
	return nil
}

// History returns the stored history, oldest first.
func (c *Controller) History() ([]store.Event, error) { return c.store.History() }

// Restore serves the store's current version, or, when the store is empty
// and seed is not, pushes seed. It runs before the xDS server listens, so
// proxies never see an empty configuration after a restart.
func (c *Controller) Restore(ctx context.Context, seed []store.File, source string) error {
	v, err := c.store.Current()
	if err != nil {
		return err
	}
	if v == nil {
		if len(seed) == 0 {
			c.log.Warn("no policy yet: proxies wait until the first push")
			c.SettleOrphans(ctx) // a first push that stopped before its version became current
			return nil
		}
		return c.seed(ctx, seed, source) // ha.go
	}
	if len(seed) > 0 {
		c.warnIfDiffers(seed, v)
	}
	cp, err := c.compile(v.Files)
	if err != nil {
		return fmt.Errorf("stored policy %s no longer compiles: %w", v.ID, err)
	}
	if _, err := c.swapTables(cp.cfg); err != nil {
		return fmt.Errorf("serve stored policy %s: %w", v.ID, err)
	}
	if _, err := c.xds.Apply(ctx, cp.resources); err != nil {
		return fmt.Errorf("serve stored policy %s: %w", v.ID, err)
	}
	c.cur.Store(&served{version: v, cfg: cp.cfg, resources: cp.resources})
	c.log.Info("serving stored policy", "version", v.ID)
	c.SettleOrphans(ctx) // recover.go
	return nil
}

// warnIfDiffers tells the operator that --policy is ignored in favour of
// the stored, later-pushed version.
func (c *Controller) warnIfDiffers(seed []store.File, v *store.Version) {
	cp, err := c.compile(seed)
	var rej *RejectedError
	switch {
	case errors.As(err, &rej):
		c.log.Warn("the --policy file does not validate; serving the stored policy", "stored", v.ID)
	case err == nil && cp.version.ID != v.ID:
		c.log.Warn("the --policy file differs from the stored policy, which was pushed later and is served; use 'tollgate push' to change it",
			"stored", v.ID, "file", cp.version.ID)
	}
}

// swapTables gives every service the tables of cfg. If one fails, the ones
// already swapped go back and the error says what could not be served.
func (c *Controller) swapTables(cfg *ir.Config) (restore func(), err error) {
	var undo []func()
	restore = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	for _, svc := range c.opts.Services {
		u, err := svc.Swap(cfg)
		if err != nil {
			restore()
			return nil, err
		}
		undo = append(undo, u)
	}
	return restore, nil
}
