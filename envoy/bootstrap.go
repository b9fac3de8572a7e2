package envoy

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// APIType selects the xDS protocol variant of the ADS stream.
type APIType string

// The ADS protocol variants.
const (
	// APIDelta is incremental xDS (api_type DELTA_GRPC), the default.
	APIDelta APIType = "delta"
	// APISotW is state-of-the-world xDS (api_type GRPC).
	APISotW APIType = "sotw"
)

// Bootstrap defaults and fixed names.
const (
	// XDSClusterName is the static cluster that points at the control plane.
	XDSClusterName      = "xds_cluster"
	DefaultAdminAddress = "127.0.0.1"
	DefaultAdminPort    = 9901
	xdsConnectTimeout   = time.Second
	// xdsRetryBaseBackOff and xdsRetryMaxBackOff bound the wait before an
	// ADS stream to a list of replicas is re-established (Envoy's jittered
	// exponential back-off; its default is 500 ms up to 30 s).
	xdsRetryBaseBackOff = 100 * time.Millisecond
	xdsRetryMaxBackOff  = 2 * time.Second
)

// BootstrapOptions describes one Envoy instance of a gateway.
type BootstrapOptions struct {
	// NodeID is node.id, unique per Envoy instance (e.g. the pod name).
	// Required.
	NodeID string
	// Gateway is node.cluster: the gateway whose configuration this Envoy
	// serves. Required.
	Gateway string
	// XDSAddress is the control plane's gRPC address, host:port. An IP host
	// gives a STATIC xds_cluster, a host name a STRICT_DNS one. A
	// comma-separated list ("h1:p1,h2:p2,h3:p3") names several control-plane
	// replicas: the cluster holds all of them (round robin) and a broken ADS
	// stream is re-established within xdsRetryMaxBackOff, on the next replica
	// (xdsReplicaCluster). Required.
	XDSAddress string
	// AdminAddress is the admin listener's IP address, default 127.0.0.1.
	// It must be a loopback address: Envoy's admin API has no
	// authentication.
	AdminAddress string
	// AdminPort is the admin listener's port; 0 means DefaultAdminPort.
	AdminPort uint32
	// APIType is the ADS variant, default APIDelta.
	APIType APIType
	// StatsPort, when not 0, adds a listener on 0.0.0.0:StatsPort serving
	// only GET /ready and /stats/prometheus from the admin interface
	// (bootstrap_stats.go).
	StatsPort uint32
	// MaxHeapBytes, when > 0, adds an overload manager (OverloadManager)
	// with this heap limit and MaxDownstreamConnections.
	MaxHeapBytes             uint64
	MaxDownstreamConnections int64
	// XDSTLS, when set, secures the xDS connection (bootstrap_xdstls.go).
	XDSTLS *XDSTLS
}

// Bootstrap returns the bootstrap configuration of an Envoy that receives
// all of its listeners and clusters (and through them routes and endpoints)
// over one ADS stream to the control plane at opts.XDSAddress.
//
// CDS and LDS wait for the control plane forever (initial_fetch_timeout 0s),
// so the admin /ready endpoint answers 200 only once Envoy is configured.
// The runtime is RuntimeLayers: a static layer raising the RE2 program-size
// limits and an admin layer.
func Bootstrap(opts BootstrapOptions) (*bootstrapv3.Bootstrap, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	apiType, err := opts.APIType.apiConfigSourceType()
	if err != nil {
		return nil, err
	}
	xds, err := xdsCluster(opts.XDSAddress)
	if err != nil {
		return nil, err
	}
	if err := withXDSTLS(xds, opts.XDSTLS, opts.XDSAddress); err != nil {
		return nil, err
	}
	b := &bootstrapv3.Bootstrap{
		Node:  &corev3.Node{Id: opts.NodeID, Cluster: opts.Gateway},
		Admin: &bootstrapv3.Admin{Address: SocketAddress(opts.AdminAddress, opts.AdminPort)},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: adsConfig(apiType, opts.XDSAddress),
			CdsConfig: ConfigSourceADSWaitForever(),
			LdsConfig: ConfigSourceADSWaitForever(),
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Clusters: []*clusterv3.Cluster{xds},
		},
		LayeredRuntime: RuntimeLayers(),
		StatsConfig:    StatsConfig(), // stats.go: latency buckets
	}
	if opts.MaxHeapBytes > 0 {
		b.OverloadManager = OverloadManager(opts.MaxHeapBytes, opts.MaxDownstreamConnections)
	}
	return withStats(b, opts)
}

// withDefaults fills the defaults and checks the required options.
func (o BootstrapOptions) withDefaults() (BootstrapOptions, error) {
	if o.NodeID == "" {
		return o, errors.New("bootstrap: node ID is required")
	}
	if o.Gateway == "" {
		return o, errors.New("bootstrap: gateway (node cluster) is required")
	}
	if o.XDSAddress == "" {
		return o, errors.New("bootstrap: xDS address is required")
	}
	if o.AdminAddress == "" {
		o.AdminAddress = DefaultAdminAddress
	}
	if o.AdminPort == 0 {
		o.AdminPort = DefaultAdminPort
	}
	if o.APIType == "" {
		o.APIType = APIDelta
	}
	addr, err := netip.ParseAddr(o.AdminAddress)
	if err != nil || !addr.IsLoopback() {
		return o, fmt.Errorf("bootstrap: admin address %q is not a loopback IP address", o.AdminAddress)
	}
	return o, nil
}

// apiConfigSourceType maps t to the ADS api_type.
func (t APIType) apiConfigSourceType() (corev3.ApiConfigSource_ApiType, error) {
	switch t {
	case APIDelta:
		return corev3.ApiConfigSource_DELTA_GRPC, nil
	case APISotW:
		return corev3.ApiConfigSource_GRPC, nil
	}
	return 0, fmt.Errorf("bootstrap: unknown xDS API type %q (want %q or %q)", t, APIDelta, APISotW)
}

// xdsCluster returns the HTTP/2 cluster of the control plane at hostport,
// or of every replica of a comma-separated list (round robin).
func xdsCluster(hostport string) (*clusterv3.Cluster, error) {
	c, err := GRPCClusterAddrs(XDSClusterName, hostport, xdsConnectTimeout)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: xDS %w", err)
	}
	if IsAddrList(hostport) {
		c.CircuitBreakers = nil // the ADS stream is one call: no retry budget
	}
	return c, nil
}

// adsConfig is the ADS config source on the xds cluster. For a list of
// replicas, the stream's re-establishment back-off is shortened to
// xdsRetryBaseBackOff–xdsRetryMaxBackOff: when the replica an Envoy is
// connected to dies, the next attempt goes to the next replica (round
// robin), and one that picks a dead replica is retried soon after.
func adsConfig(apiType corev3.ApiConfigSource_ApiType, hostport string) *corev3.ApiConfigSource {
	src := APIConfigSourceADS(apiType, XDSClusterName)
	if IsAddrList(hostport) {
		src.GetGrpcServices()[0].GetEnvoyGrpc().RetryPolicy = &corev3.RetryPolicy{
			RetryBackOff: &corev3.BackoffStrategy{
				BaseInterval: durationpb.New(xdsRetryBaseBackOff),
				MaxInterval:  durationpb.New(xdsRetryMaxBackOff),
			},
		}
	}
	return src
}
