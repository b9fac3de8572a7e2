package translator

import (
	"errors"
	"fmt"
	"slices"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/transform/contract"
)

// extProcConnectTimeout is the connect timeout of the ext_proc cluster.
const extProcConnectTimeout = time.Second

// transformHeaders are the only headers the transformation service sets
// (or, for etag, removes).
var transformHeaders = []string{"content-length", "content-type", "etag"}

// transform is how one gateway's Envoys call the body transformation
// service (an external processor).
type transform struct {
	// enabled is false when no route of the gateway has a transform: no
	// ext_proc filter, per-route config or cluster.
	enabled bool
	cluster *clusterv3.Cluster
}

// newTransform derives the gateway's transformation settings.
func newTransform(gw *ir.Gateway, opts Options) (*transform, error) {
	if !gw.NeedsTransform() {
		return &transform{}, nil
	}
	if opts.ExtProcAddress == "" {
		return nil, errors.New("routes transform bodies but no ext_proc service address is set: start the control plane with --extproc-addr")
	}
	c, err := envoy.GRPCCluster(contract.ClusterName, opts.ExtProcAddress, extProcConnectTimeout)
	if err != nil {
		return nil, fmt.Errorf("ext_proc service: %w", err)
	}
	if slices.Contains(gw.BackendNames(), contract.ClusterName) {
		return nil, fmt.Errorf("backend %q: the name is reserved for the ext_proc service cluster", contract.ClusterName)
	}
	return &transform{enabled: true, cluster: c}, nil
}

// apply sets the ext_proc per-route config of the routes of out, the
// translation of in, and returns the ext_proc filter when enabled, else
// none. The filter runs last before the router, so the upstream sees the
// converted request body and every other filter the upstream's response as
// the service returns it.
func (t *transform) apply(in []ir.VirtualHost, out []*routev3.VirtualHost) ([]*hcmv3.HttpFilter, error) {
	if !t.enabled {
		return nil, nil
	}
	if err := t.configureVirtualHosts(in, out); err != nil {
		return nil, err
	}
	f, err := envoy.ExtProcFilter(envoy.ExtProcOptions{Cluster: contract.ClusterName, MutableHeaders: transformHeaders})
	if err != nil {
		return nil, err
	}
	return []*hcmv3.HttpFilter{f}, nil
}

// clusters returns the service's cluster when enabled.
func (t *transform) clusters() []*clusterv3.Cluster {
	if !t.enabled {
		return nil
	}
	return []*clusterv3.Cluster{t.cluster}
}

// configureVirtualHosts sets the ext_proc per-route config of every route
// of out, the translation of in (same hosts and routes, same order).
func (t *transform) configureVirtualHosts(in []ir.VirtualHost, out []*routev3.VirtualHost) error {
	for i, vh := range in {
		for j, r := range vh.Routes {
			if err := configureTransformRoute(out[i].GetRoutes()[j], r.Transform); err != nil {
				return fmt.Errorf("virtual host %q: route %q: %w", vh.Name, r.Name, err)
			}
		}
	}
	return nil
}

// configureTransformRoute disables ext_proc on a route without a transform;
// on the others it asks for the headers and the buffered body of each
// direction to convert (and nothing else) and passes the settings as the
// stream's gRPC metadata.
func configureTransformRoute(er *routev3.Route, tr *ir.RouteTransform) error {
	if tr == nil {
		return envoy.SetRouteFilterConfig(er, envoy.ExtProcName, envoy.ExtProcPerRouteDisabled())
	}
	for _, c := range []string{tr.Request, tr.Response} {
		if c != "" && c != contract.JSONToXML && c != contract.XMLToJSON {
			return fmt.Errorf("transform: unknown conversion %q", c)
		}
	}
	if tr.Request == "" && tr.Response == "" {
		return errors.New("transform: converts nothing")
	}
	if tr.MaxBodyBytes <= 0 {
		return fmt.Errorf("transform: max body bytes %d is not positive", tr.MaxBodyBytes)
	}
	if tr.Root != "" && !contract.PlainName(tr.Root) {
		return fmt.Errorf("transform: root element %q is not an XML name", tr.Root)
	}
	settings := contract.Settings{Request: tr.Request, Response: tr.Response, Root: tr.Root, MaxBodyBytes: tr.MaxBodyBytes}
	mode := envoy.ExtProcMode(tr.Request != "", tr.Response != "")
	return envoy.SetRouteFilterConfig(er, envoy.ExtProcName,
		envoy.ExtProcPerRouteOverrides(mode, contract.MetadataKey, settings.Encode(), tr.FailOpen))
}
