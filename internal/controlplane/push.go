package controlplane

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/policy"
	"github.com/tollgate/tollgate/xds"
	"github.com/tollgate/tollgate/xds/translator"
)

// PushResult tells what a push, rollback or dry run did.
type PushResult struct {
	Version     string              `json:"version"`
	Previous    string              `json:"previous,omitempty"`
	Unchanged   bool                `json:"unchanged"`
	Applied     bool                `json:"applied"`
	Event       *store.Event        `json:"event,omitempty"`
	Diagnostics policy.Diagnostics  `json:"diagnostics,omitempty"`
	Changes     []Change            `json:"changes"`
	Gateways    []xds.GatewayResult `json:"gateways,omitempty"`
}

// Push validates files and, if they are valid and differ from the served
// policy, serves them. action is "push", "rollback" or "seed"; source says
// who pushed. A validation failure returns a *RejectedError; a proxy's
// rejection returns an *xds.NackError after restoring the previous version.
func (c *Controller) Push(ctx context.Context, files []store.File, action, source string) (*PushResult, error) {
	return c.PushExpect(ctx, files, action, source, "")
}

// PushExpect is Push that, when expect is not empty, refuses with a
// *store.ConflictError unless expect is the current version (see ha.go).
func (c *Controller) PushExpect(ctx context.Context, files []store.File, action, source, expect string) (*PushResult, error) {
	return c.PushWith(ctx, files, Origin{Action: action, Source: source}, expect)
}

// Origin says how a policy change came about; it lands in the history.
type Origin struct {
	Action string // push, rollback, seed, restore
	Source string // who: user@host, a CI job
	// Reason says why, as the pusher wrote it (push -m); "" for none.
	Reason string
}

// event returns the history event of o for version, at now.
func (o Origin) event(version, outcome, message string, now time.Time) store.Event {
	return store.Event{Version: version, Action: o.Action, Outcome: outcome, Message: message,
		Reason: o.Reason, Source: o.Source, At: now.UTC()}
}

// PushWith is PushExpect with the origin's reason recorded in the history.
func (c *Controller) PushWith(ctx context.Context, files []store.File, o Origin, expect string) (*PushResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	unlock, current, err := c.lockStore(ctx, 0) // ha.go
	if err != nil {
		return nil, err
	}
	defer unlock()
	c.mem.enter()
	defer c.mem.done()
	cp, translated, err := c.startCompile(files)
	if err != nil {
		return nil, err
	}
	prev := c.cur.Load()
	if err := checkExpected(prev, expect); err != nil {
		return nil, cmp.Or(translated(), err)
	}
	res := &PushResult{Version: cp.version.ID, Diagnostics: cp.diags}
	if prev != nil {
		res.Previous = prev.version.ID
		res.Unchanged = prev.version.ID == cp.version.ID && current == cp.version.ID
	}
	base := casBase(expect, current)
	var staged store.StagedBegin
	if !res.Unchanged {
		staged, err = c.storeAhead(cp.version, base, o)
		defer staged.Discard()
	}
	if err := cmp.Or(translated(), err); err != nil {
		return nil, err
	}
	defer c.prepare(cp.resources)() // hashed for Apply while the push is stored
	// Describing the changes only informs the pusher: it starts once the
	// proxies are sent the update, runs while they take it, and is waited
	// for before returning.
	startDescribe, changes := describe(prev, cp)
	defer func() { res.Changes = changes() }()
	if res.Unchanged {
		return res, nil
	}
	restore, err := c.swapTables(cp.cfg)
	if err != nil {
		return nil, unservable(err)
	}
	// The version becomes current with a pending event in one step, so a
	// crash during the ACK wait leaves a history that explains it.
	pending, err := staged.Commit()
	if err != nil {
		restore()
		return nil, err
	}
	res.Gateways, err = c.applyThen(ctx, cp.resources, startDescribe)
	if err != nil {
		restore()
		return res, c.failed(base, pending, err)
	}
	c.cur.Store(&served{version: cp.version, cfg: cp.cfg, resources: cp.resources})
	c.refused = ""
	if err := c.pruneOverrides(cp.cfg); err != nil {
		c.log.Warn("could not forget ended endpoint overrides", "err", err)
	}
	ev, err := c.store.Resolve(store.Resolution{Seq: pending.Seq, Outcome: store.Applied})
	res.Applied, res.Event = true, &ev
	c.log.Info("policy applied", "version", cp.version.ID, "previous", res.Previous, "action", o.Action, "changes", len(changes()))
	return res, err
}

// storeAhead stores v and stages the Begin that makes it current with a
// pending event (Store.StageBegin; a directory store writes the stage
// while it stores v), while the policy is translated: a version stored
// for a push that fails is not current and is never served, and a stage
// is discarded without a trace. The push commits the stage once the
// translation and the tables succeeded.
func (c *Controller) storeAhead(v *store.Version, base string, o Origin) (store.StagedBegin, error) {
	staged := c.store.StageBegin(base, o.event(v.ID, store.Pending, "", c.now()))
	return staged, c.store.Put(v)
}

// preparer is an Applier that can hash resources ahead of Apply
// (*xds.Server).
type preparer interface {
	Prepare(desired map[string]*translator.Resources) (discard func())
}

// prepare starts hashing res for the Apply that follows (xds.Server's
// Prepare) and returns the function that drops the result if no Apply
// took it.
func (c *Controller) prepare(res map[string]*translator.Resources) (discard func()) {
	if p, ok := c.xds.(preparer); ok {
		return p.Prepare(res)
	}
	return func() {}
}

// failed settles the pending event of a push the proxies rejected (or that
// failed otherwise) and, in the same store step, makes base, the store's
// previous current version, current again if nobody moved on meanwhile
// (the xDS server already serves this replica's previous version again).
func (c *Controller) failed(base string, pending store.Event, cause error) error {
	var nack *xds.NackError
	outcome := store.Failed
	if errors.As(cause, &nack) {
		outcome = store.Rejected
	}
	_, err := c.store.Resolve(store.Resolution{Seq: pending.Seq, Outcome: outcome, Message: cause.Error(),
		Revert: true, Previous: base})
	c.log.Warn("policy push failed; previous version kept", "version", pending.Version, "err", cause)
	return errors.Join(cause, err)
}

// describe returns start, which starts diffServed(prev, cp) on a goroutine
// of its own (once; later calls do nothing), and wait, which starts it if
// start was not called and waits for its result.
func describe(prev *served, cp *compiled) (start func(), wait func() []Change) {
	done := make(chan []Change, 1)
	start = sync.OnceFunc(func() { go func() { done <- diffServed(prev, cp) }() })
	wait = sync.OnceValue(func() []Change {
		start()
		return <-done
	})
	return start, wait
}

// setNotifier is an Applier that tells when the proxies are being sent
// the update (*xds.Server).
type setNotifier interface {
	ApplyThen(ctx context.Context, desired map[string]*translator.Resources, set func()) ([]xds.GatewayResult, error)
}

// applyThen applies res and calls set once the first snapshots are set
// (xds.Server's ApplyThen), or before Apply when the Applier cannot tell;
// set may not be called if Apply fails early.
func (c *Controller) applyThen(ctx context.Context, res map[string]*translator.Resources, set func()) ([]xds.GatewayResult, error) {
	if a, ok := c.xds.(setNotifier); ok {
		return a.ApplyThen(ctx, res, set)
	}
	set()
	return c.xds.Apply(ctx, res)
}

// DryRun validates files and returns what pushing them would change.
func (c *Controller) DryRun(files []store.File) (*PushResult, error) {
	cp, err := c.compile(files)
	if err != nil {
		return nil, err
	}
	prev := c.cur.Load()
	res := &PushResult{Version: cp.version.ID, Diagnostics: cp.diags, Changes: diffServed(prev, cp)}
	if prev != nil {
		res.Previous = prev.version.ID
		res.Unchanged = prev.version.ID == cp.version.ID
	}
	return res, nil
}

// Rollback serves the stored version id again.
func (c *Controller) Rollback(ctx context.Context, id, source string) (*PushResult, error) {
	return c.RollbackWith(ctx, id, Origin{Source: source})
}

// RollbackWith is Rollback recording o's source and reason (its action is
// always "rollback").
func (c *Controller) RollbackWith(ctx context.Context, id string, o Origin) (*PushResult, error) {
	v, err := c.store.Get(id)
	if err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	o.Action = "rollback"
	return c.PushWith(ctx, v.Files, o, "")
}

// Status is the control plane's view of the fleet.
type Status struct {
	Version  string           `json:"version,omitempty"`
	Gateways []GatewayStatus  `json:"gateways"`
	Nodes    []xds.NodeStatus `json:"nodes"`
}

// GatewayStatus is one gateway of the served policy.
type GatewayStatus struct {
	Name    string `json:"name"`
	Proxies int    `json:"proxies"`
	Synced  int    `json:"synced"`
}

// Status returns the served version and the connected proxies.
func (c *Controller) Status() Status {
	st := Status{Nodes: c.xds.Status()}
	s := c.cur.Load()
	if s == nil {
		return st
	}
	st.Version = s.version.ID
	for _, g := range s.cfg.Gateways {
		gs := GatewayStatus{Name: g.Name}
		for _, n := range st.Nodes {
			if n.Gateway == g.Name {
				gs.Proxies++
				if n.Synced {
					gs.Synced++
				}
			}
		}
		st.Gateways = append(st.Gateways, gs)
	}
	return st
}

// Version returns a stored version.
func (c *Controller) Version(id string) (*store.Version, error) { return c.store.Get(id) }

// unservable turns a service's refusal of a valid policy (an inline JWKS
// that does not parse, a secret missing from the environment) into a
// rejection: nothing changed, and the operator sees why.
func unservable(err error) error {
	return &RejectedError{Diagnostics: policy.Diagnostics{{
		Severity: policy.SeverityError,
		Summary:  "the policy cannot be served: " + err.Error(),
		Detail:   "fix the provider configuration or the service's environment, then push again",
		Path:     "auth",
	}}}
}
