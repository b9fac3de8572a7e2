package envoy

import (
	"fmt"
	"time"

	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tracingtypev3 "github.com/envoyproxy/go-control-plane/envoy/type/tracing/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// OpenTelemetryTracerName is the label of Envoy's OpenTelemetry tracer.
const OpenTelemetryTracerName = "envoy.tracers.opentelemetry"

// otlpExportTimeout bounds one OTLP export call.
const otlpExportTimeout = 2 * time.Second

// OpenTelemetryTracing returns an HCM tracing setup that exports spans with
// Envoy's OpenTelemetry tracer over OTLP/gRPC through the cluster named
// cluster, as service serviceName, sampling samplePercent (0-100) of the
// requests that arrive without a sampling decision. The tracer propagates
// W3C traceparent/tracestate, creating them at the edge when missing.
func OpenTelemetryTracing(cluster, serviceName string, samplePercent float64) (*hcmv3.HttpConnectionManager_Tracing, error) {
	a, err := Any(&tracev3.OpenTelemetryConfig{
		GrpcService: GRPCService(cluster, otlpExportTimeout),
		ServiceName: serviceName,
	})
	if err != nil {
		return nil, fmt.Errorf("opentelemetry tracer: %w", err)
	}
	return &hcmv3.HttpConnectionManager_Tracing{
		Provider: &tracev3.Tracing_Http{
			Name:       OpenTelemetryTracerName,
			ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: a},
		},
		RandomSampling: &typev3.Percent{Value: samplePercent},
	}, nil
}

// LiteralTag is a span tag with a fixed value.
func LiteralTag(tag, value string) *tracingtypev3.CustomTag {
	return &tracingtypev3.CustomTag{Tag: tag, Type: &tracingtypev3.CustomTag_Literal_{
		Literal: &tracingtypev3.CustomTag_Literal{Value: value},
	}}
}

// FractionalPercent returns percent (0-100, to a millionth) as a
// FractionalPercent over a million.
func FractionalPercent(percent float64) *typev3.FractionalPercent {
	return &typev3.FractionalPercent{Numerator: uint32(percent*10000 + 0.5), Denominator: typev3.FractionalPercent_MILLION}
}
