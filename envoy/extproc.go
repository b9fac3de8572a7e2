package envoy

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ExtProcName is the conventional name of the external processing HTTP
// filter, and so the key of its per-route config (ExtProcPerRoute*).
const ExtProcName = "envoy.filters.http.ext_proc"

// ExtProc defaults.
const (
	// DefaultExtProcMessageTimeout limits the answer to each message sent
	// to the service when no timeout is given.
	DefaultExtProcMessageTimeout = time.Second
	// DefaultExtProcStatusOnError is returned when the service fails or
	// cannot be reached and the route does not fail open.
	DefaultExtProcStatusOnError = 503
)

// ExtProcOptions configure the ext_proc filter.
type ExtProcOptions struct {
	// Cluster is the HTTP/2 cluster of the gRPC processing service (see
	// GRPCCluster). Required.
	Cluster string
	// MessageTimeout limits each message's answer; 0 means
	// DefaultExtProcMessageTimeout.
	MessageTimeout time.Duration
	// StatusOnError is the status of a request whose processing failed
	// (the service unreachable or erring); 0 means
	// DefaultExtProcStatusOnError. A message timeout answers 504 whatever
	// this is (measured with Envoy 1.40).
	StatusOnError int
	// MutableHeaders are the only headers the service may set or remove;
	// any other mutation fails the request. Empty allows none.
	MutableHeaders []string
}

// ExtProc returns an ext_proc filter config that does nothing unless a
// route's ExtProcPerRouteOverrides asks for something: every header and
// trailer SKIP, every body NONE. It fails closed (failure_mode_allow
// false: an unreachable or failing service answers StatusOnError), lets the
// service mutate only o.MutableHeaders, keeps the content-length header
// the service sets with a body it replaces (allow_content_length_header),
// lets the service's header answers change the processing mode (so it can
// skip a body it will not convert: allow_mode_override), and never clears
// the route cache.
func ExtProc(o ExtProcOptions) *extprocv3.ExternalProcessor {
	timeout := o.MessageTimeout
	if timeout <= 0 {
		timeout = DefaultExtProcMessageTimeout
	}
	status := o.StatusOnError
	if status == 0 {
		status = DefaultExtProcStatusOnError
	}
	return &extprocv3.ExternalProcessor{
		GrpcService:              GRPCService(o.Cluster, 0),
		FailureModeAllow:         false,
		ProcessingMode:           ExtProcMode(false, false),
		MessageTimeout:           durationpb.New(timeout),
		MutationRules:            onlyHeaders(o.MutableHeaders),
		StatusOnError:            &typev3.HttpStatus{Code: typev3.StatusCode(status)},
		AllowContentLengthHeader: true,
		AllowModeOverride:        true,
		RouteCacheAction:         extprocv3.ExternalProcessor_RETAIN,
	}
}

// ExtProcFilter wraps ExtProc(o) as the HTTP filter named ExtProcName.
func ExtProcFilter(o ExtProcOptions) (*hcmv3.HttpFilter, error) {
	a, err := Any(ExtProc(o))
	if err != nil {
		return nil, fmt.Errorf("ext_proc filter: %w", err)
	}
	return &hcmv3.HttpFilter{Name: ExtProcName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// ExtProcMode returns a processing mode that sends the request headers and
// the whole (BUFFERED) request body when request is true, the response
// headers and body when response is true, and skips everything else
// (trailers always).
func ExtProcMode(request, response bool) *extprocv3.ProcessingMode {
	m := &extprocv3.ProcessingMode{
		RequestHeaderMode:   extprocv3.ProcessingMode_SKIP,
		ResponseHeaderMode:  extprocv3.ProcessingMode_SKIP,
		RequestTrailerMode:  extprocv3.ProcessingMode_SKIP,
		ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
	}
	if request {
		m.RequestBodyMode = extprocv3.ProcessingMode_BUFFERED
		m.RequestHeaderMode = extprocv3.ProcessingMode_SEND
	}
	if response {
		m.ResponseBodyMode = extprocv3.ProcessingMode_BUFFERED
		m.ResponseHeaderMode = extprocv3.ProcessingMode_SEND
	}
	return m
}

// ExtProcPerRouteDisabled returns the per-route config that turns the
// ext_proc filter off on a route (no stream is ever opened).
func ExtProcPerRouteDisabled() *extprocv3.ExtProcPerRoute {
	return &extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Disabled{Disabled: true}}
}

// ExtProcPerRouteOverrides returns the per-route config that processes a
// route with mode, sends the gRPC initial metadata key: value on each
// stream, and fails open when failOpen (bodies then pass unprocessed when
// the service cannot be reached).
func ExtProcPerRouteOverrides(mode *extprocv3.ProcessingMode, key, value string, failOpen bool) *extprocv3.ExtProcPerRoute {
	return &extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Overrides{Overrides: &extprocv3.ExtProcOverrides{
		ProcessingMode:      mode,
		GrpcInitialMetadata: []*corev3.HeaderValue{{Key: key, Value: value}},
		FailureModeAllow:    wrapperspb.Bool(failOpen),
	}}}
}
