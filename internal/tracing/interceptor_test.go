package tracing

import (
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

func TestNewWithoutEndpointTracesNothing(t *testing.T) {
	tr, err := New(context.Background(), "", "x")
	if err != nil || tr != nil || tr.ServerOptions() != nil || tr.Shutdown(context.Background()) != nil {
		t.Fatalf("New(\"\") = %v, %v: want a nil tracer with no server options", tr, err)
	}
}

func TestIntercept(t *testing.T) {
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct {
		name        string
		traceparent string // "" for no metadata
		wantSpan    bool
	}{
		{"sampled parent", "00-" + traceID + "-00f067aa0ba902b7-01", true},
		{"unsampled parent", "00-" + traceID + "-00f067aa0ba902b7-00", false},
		{"malformed", "garbage", false},
		{"no trace", "", false},
	}
	for _, tt := range tests {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
		tr := &Tracer{provider: tp, tracer: tp.Tracer("test")}
		ctx := context.Background()
		if tt.traceparent != "" {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("traceparent", tt.traceparent))
		}
		req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{ContextExtensions: map[string]string{"route": "users"}}}
		_, err := tr.intercept(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/envoy.service.auth.v3.Authorization/Check"},
			func(context.Context, any) (any, error) { return &authv3.CheckResponse{}, nil })
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		spans := exp.GetSpans()
		if got := len(spans) == 1; got != tt.wantSpan {
			t.Fatalf("%s: %d spans, want span=%v", tt.name, len(spans), tt.wantSpan)
		}
		if !tt.wantSpan {
			continue
		}
		s := spans[0]
		if s.SpanContext.TraceID().String() != traceID || s.Parent.SpanID().String() != "00f067aa0ba902b7" {
			t.Errorf("%s: span in trace %s under %s, want the caller's", tt.name, s.SpanContext.TraceID(), s.Parent.SpanID())
		}
		attrs := map[string]string{}
		for _, kv := range s.Attributes {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		if attrs["tollgate.route"] != "users" || attrs["tollgate.authz.allowed"] != "true" {
			t.Errorf("%s: attributes %v", tt.name, attrs)
		}
	}
}

// BenchmarkIntercept measures what the interceptor adds to a call: with
// no trace context, with an unsampled one, and with a sampled one (span
// recorded, exported to a no-op batcher-less provider).
func BenchmarkIntercept(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	tr := &Tracer{provider: tp, tracer: tp.Tracer("bench")}
	info := &grpc.UnaryServerInfo{FullMethod: "/envoy.service.auth.v3.Authorization/Check"}
	handler := func(context.Context, any) (any, error) { return &authv3.CheckResponse{}, nil }
	for _, c := range []struct{ name, traceparent string }{
		{"no-trace", ""},
		{"unsampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
		{"sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	} {
		ctx := context.Background()
		if c.traceparent != "" {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("traceparent", c.traceparent))
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = tr.intercept(ctx, &authv3.CheckRequest{}, info, handler)
			}
		})
	}
}
