package envoy

import (
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// HTTPProtocolOptionsName is the key of upstream HTTP protocol options in a
// cluster's typed_extension_protocol_options.
const HTTPProtocolOptionsName = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// Keepalive of HTTP/2 connections to gRPC services: a PING every
// http2KeepaliveInterval, the connection is closed if none is answered
// within http2KeepaliveTimeout.
const (
	http2KeepaliveInterval = 30 * time.Second
	http2KeepaliveTimeout  = 5 * time.Second
)

// HTTP2ProtocolOptions returns typed_extension_protocol_options that make a
// cluster speak HTTP/2 (prior knowledge) to its endpoints, with connection
// keepalive (PING every 30s, 5s timeout). gRPC clusters need it: the xDS
// control plane, ext_authz, the rate-limit service, OTLP collectors.
func HTTP2ProtocolOptions() map[string]*anypb.Any {
	opts := &httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{
						ConnectionKeepalive: &corev3.KeepaliveSettings{
							Interval: durationpb.New(http2KeepaliveInterval),
							Timeout:  durationpb.New(http2KeepaliveTimeout),
						},
					},
				},
			},
		},
	}
	return map[string]*anypb.Any{HTTPProtocolOptionsName: MustAny(opts)}
}
