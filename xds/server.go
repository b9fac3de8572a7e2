// Package xds serves Envoy its configuration over ADS (state-of-the-world
// and delta) from go-control-plane's snapshot cache.
//
// Contract:
//   - Each gateway has one immutable snapshot object, shared by every proxy
//     of that gateway (node.cluster); snapshots are keyed by node.id so the
//     cache tracks each proxy, and a node's snapshot is dropped when its last
//     stream closes.
//   - Every type has its own content-hash version: an unchanged policy, or an
//     unchanged type, never makes Envoy reload.
//   - Apply changes configuration make-before-break (clusters first, then
//     listeners and routes, then removals), waits for the proxies' ACKs, and
//     restores the previous configuration if any proxy NACKs.
package xds

import (
	"context"
	"log/slog"
	"sync"
	"time"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	server "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"

	"github.com/tollgate/tollgate/xds/translator"
)

// Options configure a Server.
type Options struct {
	Logger *slog.Logger
	// AckTimeout bounds each wait for proxies' ACKs during Apply; a proxy
	// that neither ACKs nor NACKs by then is reported as pending.
	AckTimeout time.Duration
	Metrics    *Metrics
	// OnStep, when set, is called after each make-before-break step of an
	// Apply (the step's snapshots set on every gateway it moves and their
	// ACKs awaited) with the step's index from 0 and how long it took.
	OnStep func(step int, elapsed time.Duration)
}

// Server is the xDS control plane for every gateway of the policy.
type Server struct {
	log     *slog.Logger
	opts    Options
	cache   cache.SnapshotCache
	tracker *tracker
	xds     server.Server

	// snapMu guards gateways and serialises every SetSnapshot, so a proxy
	// that connects during an Apply gets either the old or the new snapshot,
	// never a stale one after the new.
	snapMu   sync.Mutex
	gateways map[string]*typeSet
	// keys is the API-key exceptions table every gateway with native key
	// routes enforces (SetKeyExceptions); guarded by snapMu.
	keys translator.KeyExceptions
	// keysRejected holds, per gateway, the version of the key identity's
	// ECDS resource (the exceptions table's) a proxy refused: that table
	// is not served again; the gateway refuses every signed key instead
	// (fail closed).
	keysRejected map[string]string
	// jwksEpoch is the JWKS epoch of every gateway whose jwt_authn is
	// served over ECDS (BumpJWKSEpoch); guarded by snapMu.
	jwksEpoch uint64

	// applyMu serialises Apply.
	applyMu sync.Mutex

	// prepMu guards prepared, the hashing the latest Prepare started.
	prepMu   sync.Mutex
	prepared *prepared
}

// New returns a Server. ctx bounds the lifetime of its xDS streams.
func New(ctx context.Context, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 5 * time.Second
	}
	sds := newSDSCache(cacheLogger{opts.Logger})
	s := &Server{
		log:      opts.Logger,
		opts:     opts,
		cache:    sds,
		tracker:  newTracker(time.Now),
		gateways: map[string]*typeSet{},
	}
	s.xds = server.NewServer(ctx, sds.mux(), &callbacks{s: s}, sotw.WithOrderedADS())
	return s
}

// Register adds the aggregated and per-type discovery services to g.
func (s *Server) Register(g *grpc.Server) {
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, s.xds)
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, s.xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, s.xds)
	routeservice.RegisterRouteDiscoveryServiceServer(g, s.xds)
	secretservice.RegisterSecretDiscoveryServiceServer(g, s.xds)
}

// Status returns the connected proxies.
func (s *Server) Status() []NodeStatus {
	s.snapMu.Lock()
	targets := make(map[string]*typeSet, len(s.gateways))
	for g, ts := range s.gateways {
		targets[g] = ts
	}
	s.snapMu.Unlock()
	return s.tracker.status(targets)
}

// GatewayVersions returns the current snapshot version of each gateway.
func (s *Server) GatewayVersions() map[string]string {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	out := make(map[string]string, len(s.gateways))
	for g, ts := range s.gateways {
		out[g] = ts.version()
	}
	return out
}

// assign gives a newly connected node its gateway's snapshot. A node of an
// unknown gateway gets nothing: it waits (and status says why) rather than
// receiving an empty configuration.
func (s *Server) assign(nodeID, gateway string) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	ts, ok := s.gateways[gateway]
	if !ok {
		s.log.Warn("proxy asks for a gateway the policy does not define", "node", nodeID, "gateway", gateway)
		return
	}
	s.setNode(nodeID, ts)
}

// setNode sets ts as node's snapshot. Callers hold snapMu.
func (s *Server) setNode(nodeID string, ts *typeSet) {
	snap, err := ts.snapshot()
	if err == nil {
		err = s.cache.SetSnapshot(context.Background(), nodeID, snap)
	}
	if err != nil {
		s.log.Error("set snapshot", "node", nodeID, "err", err)
	}
}

// forget drops a node's snapshot after its last stream closed.
func (s *Server) forget(streamID int64) {
	if id := s.tracker.close(streamID); id != "" {
		s.snapMu.Lock()
		s.cache.ClearSnapshot(id)
		s.snapMu.Unlock()
	}
	s.opts.Metrics.setConnected(s.tracker.gatewayCounts())
}
