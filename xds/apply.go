package xds

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tollgate/tollgate/xds/translator"
)

// GatewayResult is how one gateway's proxies took an Apply.
type GatewayResult struct {
	Gateway string        `json:"gateway"`
	Version string        `json:"version"`
	Nodes   []string      `json:"nodes"`             // connected when the push ended
	Pending []string      `json:"pending,omitempty"` // did not ACK within the timeout
	Elapsed time.Duration `json:"elapsed"`
}

// plan is the sequence of snapshots that moves one gateway from its old
// configuration to the new one without a request meeting a missing cluster.
type plan struct {
	gateway string
	steps   []step
}

// step is one snapshot and the types whose ACK it waits for.
type step struct {
	set  *typeSet
	wait []resource.Type
}

// Apply makes desired (resources by gateway) the served configuration.
// Gateways missing from desired get an empty configuration. Each gateway
// moves in up to three steps: (1) old listeners and routes with old and new
// clusters, (2) new listeners and routes with both cluster sets, (3) the new
// configuration alone; each step waits (at most AckTimeout) for the ACKs of
// the gateway's connected proxies. If a proxy NACKs, every gateway returns
// to its previous configuration and Apply returns a *NackError.
func (s *Server) Apply(ctx context.Context, desired map[string]*translator.Resources) ([]GatewayResult, error) {
	return s.ApplyThen(ctx, desired, nil)
}

// ApplyThen is Apply that calls set, unless it is nil, once the first
// step's snapshots are set on every gateway it changes (the proxies are
// being sent the update), before that step's ACK wait: a caller starts
// work that should not compete with the push for the CPU until then. set
// is called at most once, and not at all when Apply has nothing to change
// or fails before the first step is set on every gateway (a caller that
// needs the work anyway starts it itself).
func (s *Server) ApplyThen(ctx context.Context, desired map[string]*translator.Resources, set func()) ([]GatewayResult, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	start := time.Now()
	plans, err := s.plan(desired)
	if err != nil {
		return nil, err
	}
	old := s.current()
	results, err := s.run(ctx, plans, start, set)
	var nack *NackError
	if errors.As(err, &nack) {
		s.restore(old, desired)
		s.opts.Metrics.push("nacked", time.Since(start))
		return results, err
	}
	if err == nil {
		s.dropRemoved(desired)
	}
	s.opts.Metrics.push(outcome(err), time.Since(start))
	return results, err
}

// dropRemoved forgets gateways the policy no longer has, after their
// proxies were given an empty configuration, so status reports them.
func (s *Server) dropRemoved(desired map[string]*translator.Resources) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	for g := range s.gateways {
		if _, ok := desired[g]; !ok {
			delete(s.gateways, g)
		}
	}
}

func outcome(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// current returns a copy of the gateway map.
func (s *Server) current() map[string]*typeSet {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	out := make(map[string]*typeSet, len(s.gateways))
	for g, ts := range s.gateways {
		out[g] = ts
	}
	return out
}

// plan builds the steps for every gateway, old or new, sorted by name.
func (s *Server) plan(desired map[string]*translator.Resources) ([]plan, error) {
	old := s.current()
	in := s.extInputs()
	prep := s.takePrepared()
	names := map[string]bool{}
	for g := range desired {
		names[g] = true
	}
	for g := range old {
		names[g] = true
	}
	var plans []plan
	for _, g := range sortedKeys(names) {
		r := desired[g]
		if r == nil {
			r = &translator.Resources{}
		}
		h, err := prep.hashGateway(r)
		if err != nil {
			return nil, fmt.Errorf("gateway %s: %w", g, err)
		}
		next, err := h.typeSet(r, in, old[g])
		if err != nil {
			return nil, fmt.Errorf("gateway %s: %w", g, err)
		}
		p, err := planGateway(g, old[g], next)
		if err != nil {
			return nil, fmt.Errorf("gateway %s: %w", g, err)
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// planGateway returns the make-before-break steps from prev to next,
// leaving out steps that would not change what the proxies have.
func planGateway(g string, prev, next *typeSet) (plan, error) {
	p := plan{gateway: g}
	if prev == nil {
		p.steps = []step{{set: next, wait: ackTypes(allTypes())}}
		return p, nil
	}
	both, err := unionClusters(next, prev)
	if err != nil {
		return p, err
	}
	candidates := []step{
		{set: both.mix(prev, listenerTypes), wait: clusterTypes},
		{set: both, wait: ackTypes(listenerTypes)},
		{set: next, wait: ackTypes(allTypes())},
	}
	last := prev.version()
	for _, c := range candidates {
		if v := c.set.version(); v != last {
			p.steps = append(p.steps, c)
			last = v
		}
	}
	return p, nil
}

// unionClusters returns next's configuration plus prev's clusters that next
// lacks, with exactly the endpoints those clusters reference.
func unionClusters(next, prev *typeSet) (*typeSet, error) {
	out := next.mix(next, nil)
	clusters := mergeByName(next.of[resource.ClusterType].items, prev.of[resource.ClusterType].items)
	cla := mergeByName(next.of[resource.EndpointType].items, prev.of[resource.EndpointType].items)
	cla = referenced(clusters, cla)
	for t, items := range map[resource.Type][]types.Resource{resource.ClusterType: clusters, resource.EndpointType: cla} {
		if err := out.set(t, items); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// referenced keeps the load assignments that clusters name, as the cache's
// consistency check demands (no orphans).
func referenced(clusters, cla []types.Resource) []types.Resource {
	names := map[string]bool{}
	for _, r := range clusters {
		c := r.(*clusterv3.Cluster)
		n := c.GetEdsClusterConfig().GetServiceName()
		if n == "" {
			n = c.GetName()
		}
		names[n] = true
	}
	var out []types.Resource
	for _, r := range cla {
		if names[cache.GetResourceName(r)] {
			out = append(out, r)
		}
	}
	return out
}

// run executes the plans step by step: step i of every gateway, then wait
// (one AckTimeout in all) for all of them, then step i+1.
func (s *Server) run(ctx context.Context, plans []plan, start time.Time, set func()) ([]GatewayResult, error) {
	results := make([]GatewayResult, len(plans))
	for i, p := range plans {
		results[i] = GatewayResult{Gateway: p.gateway}
	}
	for i := 0; ; i++ {
		stepStart := time.Now()
		var active []int
		for j, p := range plans {
			if i >= len(p.steps) {
				continue
			}
			active = append(active, j)
			if err := s.setGateway(p.gateway, p.steps[i].set); err != nil {
				return results, err
			}
		}
		if len(active) == 0 {
			return results, nil
		}
		if i == 0 && set != nil {
			set()
		}
		if err := s.awaitStep(ctx, plans, active, i, start, results); err != nil {
			return results, err
		}
		if s.opts.OnStep != nil {
			s.opts.OnStep(i, time.Since(stepStart))
		}
	}
}

// awaitStep waits for the proxies of the active plans to ACK step i.
func (s *Server) awaitStep(ctx context.Context, plans []plan, active []int, i int, start time.Time, results []GatewayResult) error {
	wctx, cancel := context.WithTimeout(ctx, s.opts.AckTimeout)
	defer cancel()
	for _, j := range active {
		p, st, res := plans[j], plans[j].steps[i], &results[j]
		pending, err := s.tracker.waitSynced(wctx, p.gateway, st.set, st.wait, start)
		res.Version = st.set.version()
		res.Nodes = s.tracker.nodesOf(p.gateway)
		res.Pending = pending
		res.Elapsed = time.Since(start)
		if err != nil {
			return err
		}
		if i == len(p.steps)-1 && len(pending) == 0 && len(res.Nodes) > 0 {
			s.opts.Metrics.ackLatency(p.gateway, res.Elapsed)
		}
	}
	return nil
}

// setGateway makes ts, with the current API-key exceptions table and JWKS
// epoch, the gateway's snapshot for every connected node.
func (s *Server) setGateway(gateway string, ts *typeSet) error {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	ts, err := s.withCurrentExtensions(gateway, ts)
	if err == nil {
		_, err = ts.snapshot()
	}
	if err != nil {
		return fmt.Errorf("gateway %s: %w", gateway, err)
	}
	s.gateways[gateway] = ts
	for _, id := range s.tracker.nodesOf(gateway) {
		s.setNode(id, ts)
	}
	return nil
}

// restore puts back the configuration held before a failed Apply. Gateways
// the failed Apply introduced get an empty configuration.
func (s *Server) restore(old map[string]*typeSet, desired map[string]*translator.Resources) {
	for g := range desired {
		if _, ok := old[g]; !ok {
			empty, _ := newTypeSet(&translator.Resources{}, translator.KeyExceptions{})
			old[g] = empty
		}
	}
	for _, g := range sortedKeys(old) {
		if err := s.setGateway(g, old[g]); err != nil {
			s.log.Error("restore previous configuration", "gateway", g, "err", err)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
