package xds

import (
	"context"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// callbacks feeds go-control-plane's stream events into the tracker. They
// run synchronously on stream goroutines, so each one is short.
type callbacks struct{ s *Server }

func (c *callbacks) OnStreamOpen(_ context.Context, id int64, _ string) error {
	c.s.tracker.open(id, "sotw")
	return nil
}

func (c *callbacks) OnDeltaStreamOpen(_ context.Context, id int64, _ string) error {
	c.s.tracker.open(id, "delta")
	return nil
}

func (c *callbacks) OnStreamClosed(id int64, _ *core.Node)      { c.s.forget(id) }
func (c *callbacks) OnDeltaStreamClosed(id int64, _ *core.Node) { c.s.forget(id) }

// OnStreamRequest records ACKs and NACKs. A state-of-the-world NACK carries
// the last accepted version, which differs from the snapshot's, so the cache
// would answer it at once with the same rejected resources, thousands of
// times a second. Setting the request's version to the rejected one (the
// server hands this request to the cache right after this callback) parks
// the watch until the snapshot changes: a rollback or a fixed push.
func (c *callbacks) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	nack := req.GetErrorDetail() != nil
	node, gw, first := c.s.tracker.request(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), nack, req.GetErrorDetail().GetMessage())
	if nack {
		if v := c.s.tracker.rejectedVersion(node, req.GetTypeUrl()); v != "" {
			req.VersionInfo = v
		}
		c.s.onNack(node, gw, req.GetTypeUrl(), req.GetErrorDetail().GetMessage())
	}
	c.s.onRequest(node, gw, first)
	if req.GetResponseNonce() == "" {
		// A reconnecting proxy names the version it has; if that is current
		// the cache stays silent and there will be no ACK to wait for.
		c.s.tracker.claim(node, req.GetTypeUrl(), req.GetVersionInfo())
	}
	return nil
}

func (c *callbacks) OnStreamResponse(_ context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	c.s.tracker.response(id, resp.GetTypeUrl(), resp.GetNonce(), resp.GetVersionInfo())
}

func (c *callbacks) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	nack := req.GetErrorDetail() != nil
	node, gw, first := c.s.tracker.request(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), nack, req.GetErrorDetail().GetMessage())
	if nack {
		c.s.onNack(node, gw, req.GetTypeUrl(), req.GetErrorDetail().GetMessage())
	}
	c.s.onRequest(node, gw, first)
	if req.GetResponseNonce() == "" && len(req.GetInitialResourceVersions()) > 0 {
		c.s.claimDelta(node, gw, req.GetTypeUrl(), req.GetInitialResourceVersions())
	}
	return nil
}

func (c *callbacks) OnStreamDeltaResponse(id int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
	c.s.tracker.response(id, resp.GetTypeUrl(), resp.GetNonce(), resp.GetSystemVersionInfo())
}

func (c *callbacks) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error         { return nil }
func (c *callbacks) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}

// onRequest gives a node its snapshot on its first request.
func (s *Server) onRequest(node, gateway string, first bool) {
	if !first {
		return
	}
	s.log.Info("proxy connected", "node", node, "gateway", gateway)
	s.assign(node, gateway)
	s.opts.Metrics.setConnected(s.tracker.gatewayCounts())
}

// claimDelta records a reconnecting delta proxy as holding a type when the
// resource versions it announces are exactly the current ones.
func (s *Server) claimDelta(node, gateway, typeURL string, initial map[string]string) {
	s.snapMu.Lock()
	ts := s.gateways[gateway]
	s.snapMu.Unlock()
	if ts != nil && ts.holds(typeURL, initial) {
		s.tracker.claim(node, typeURL, ts.of[typeURL].version)
	}
}

// onNack logs and counts a rejection. Envoy's message names the resource.
func (s *Server) onNack(node, gateway, typeURL, msg string) {
	s.log.Warn("proxy rejected configuration", "node", node, "gateway", gateway, "type", shortType(typeURL), "error", msg)
	s.opts.Metrics.nack(gateway, shortType(typeURL))
	if typeURL == resource.ExtensionConfigType {
		go s.keyTableRejected(gateway) // not on the stream goroutine: it sets snapshots
	}
}
