// Package tracing continues Envoy's W3C traces in Tollgate's gRPC services
// (ext_authz, rate limit) with OpenTelemetry spans exported over OTLP/gRPC.
//
// Envoy's gRPC client puts the request's trace context (traceparent,
// tracestate) into the metadata of each Check and ShouldRateLimit call. The
// server interceptor reads it and, when Envoy sampled the trace, records a
// child span; unsampled calls and calls without a trace cost one metadata
// lookup. With tracing off (no collector) no interceptor is installed at
// all, so the services pay nothing.
package tracing

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// batchTimeout is how long finished spans wait before export.
const batchTimeout = time.Second

// Tracer exports the services' spans; the zero value (nil) traces nothing.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TraceContext
}

// New returns a tracer exporting to the OTLP/gRPC collector at endpoint
// (host:port, plaintext) as service serviceName, or nil when endpoint is
// empty. Spans are recorded only for traces Envoy sampled (parent-based,
// never a new root), so the policy's sampling share applies end to end.
func New(ctx context.Context, endpoint, serviceName string) (*Tracer, error) {
	if endpoint == "" {
		return nil, nil
	}
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		return nil, fmt.Errorf("otlp exporter for %s: %w", endpoint, err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", serviceName)))
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(batchTimeout)),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())),
	)
	return &Tracer{provider: tp, tracer: tp.Tracer("github.com/tollgate/tollgate")}, nil
}

// ServerOptions returns the gRPC server options that trace each unary call:
// none for a nil tracer.
func (t *Tracer) ServerOptions() []grpc.ServerOption {
	if t == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(t.intercept)}
}

// Shutdown flushes pending spans, waiting at most until ctx ends.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}
