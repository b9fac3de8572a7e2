package policy

// Observability is the top-level observability section: Envoy's access log
// and tracing. Nil means the defaults: a JSON access-log line per request on
// Envoy's stdout, no tracing.
type Observability struct {
	// AccessLog nil means the defaults (on, stdout, every request).
	AccessLog *AccessLog
	// Tracing nil means tracing is off.
	Tracing *Tracing
	// RouteStats nil means on: every route has Envoy stats of its own
	// (vhost.<vhost>.route.<route>.*). Envoy rebuilds them for every route
	// on each push that changes a route, so policies of thousands of
	// routes may turn them off (written `routeStats: false`).
	RouteStats *bool
}

// AccessLog configures Envoy's JSON access log. Off turns it off
// everywhere (written `accessLog: off`).
type AccessLog struct {
	Off bool
	// Path is the file Envoy appends to; empty means stdout.
	Path string
	// Sample is the share of requests logged, "10%"; empty means 100%.
	Sample string
	// GRPC is host:port of a gRPC AccessLogService that also receives
	// every logged request; empty means none.
	GRPC string
}

// Tracing configures Envoy's OpenTelemetry tracer.
type Tracing struct {
	// OTLP is the collector's OTLP/gRPC address, host:port.
	OTLP string
	// Sampling is the share of new traces sampled at the edge, "10%";
	// empty means 100%.
	Sampling string
	// ServiceName is the service.name of the edge spans; empty means
	// "tollgate-<gateway>".
	ServiceName string
}

// RouteAccessLog is a route's access-log override: Off (written
// `accessLog: off`) or a sampling share of its own.
type RouteAccessLog struct {
	Off    bool
	Sample string
}
