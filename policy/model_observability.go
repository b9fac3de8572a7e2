package policy

// Observability is the top-level observability section: Envoy's access log
// and tracing. Nil means the defaults: a JSON access-log line per request on
// Envoy's stdout, no tracing.
type Observability struct {
	// AccessLog nil means the defaults (on, stdout, every request).
	AccessLog *AccessLog
	// Tracing nil means tracing is off.
	Tracing *Tracing
	// RouteStats nil means the default: every route has Envoy stats of its
	// own (vhost.<vhost>.route.<route>.*) when the policy has at most
	// RouteStatsDefaultMaxRoutes routes, none above. Envoy rebuilds them for
	// every route on each push that changes a route (about 25 µs of Envoy
	// CPU per route), so large policies go without unless they set
	// `routeStats: true`.
	RouteStats *bool
}

// RouteStatsDefaultMaxRoutes is the largest number of routes for which
// per-route stats are on by default. Above it a push would cost Envoy more
// than about 50 ms of rebuilding stats (bench/README.md, "Push at scale").
const RouteStatsDefaultMaxRoutes = 2000

// routeStatsOn reports whether routes get stats of their own: as o says,
// or by default when the policy has at most RouteStatsDefaultMaxRoutes
// routes.
func routeStatsOn(o *Observability, routes int) bool {
	if o != nil && o.RouteStats != nil {
		return *o.RouteStats
	}
	return routes <= RouteStatsDefaultMaxRoutes
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
