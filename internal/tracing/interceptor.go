package tracing

import (
	"context"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// intercept continues the caller's trace: a server span named after the
// gRPC method, a child of the traceparent in the call's metadata, with the
// outcome as attributes. Calls without a sampled parent run untraced.
func (t *Tracer) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok || len(md.Get("traceparent")) == 0 {
		return handler(ctx, req)
	}
	parent := t.prop.Extract(ctx, carrier(md))
	if !trace.SpanContextFromContext(parent).IsSampled() {
		return handler(ctx, req)
	}
	ctx, span := t.tracer.Start(parent, info.FullMethod, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("rpc.system", "grpc"), attribute.String("rpc.method", info.FullMethod)))
	defer span.End()
	resp, err := handler(ctx, req)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return resp, err
	}
	span.SetAttributes(outcome(req, resp)...)
	return resp, nil
}

// outcome describes an ext_authz or rate-limit answer as span attributes.
func outcome(req, resp any) []attribute.KeyValue {
	switch r := resp.(type) {
	case *authv3.CheckResponse:
		attrs := []attribute.KeyValue{attribute.Bool("tollgate.authz.allowed", r.GetStatus().GetCode() == 0)}
		if d := r.GetDeniedResponse(); d != nil {
			attrs = append(attrs, attribute.Int("http.response.status_code", int(d.GetStatus().GetCode())))
		}
		if q, ok := req.(*authv3.CheckRequest); ok {
			if route := q.GetAttributes().GetContextExtensions()["route"]; route != "" {
				attrs = append(attrs, attribute.String("tollgate.route", route))
			}
		}
		return attrs
	case *rlsv3.RateLimitResponse:
		return []attribute.KeyValue{attribute.String("tollgate.ratelimit.code", r.GetOverallCode().String())}
	}
	return nil
}

// carrier reads gRPC metadata as a propagation.TextMapCarrier.
type carrier metadata.MD

func (c carrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c carrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c carrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
