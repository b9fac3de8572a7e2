package ir

// Observability is the compiled observability section. Its zero value is
// the default: an access-log line per request on stdout, no tracing.
type Observability struct {
	// AccessLogOff turns Envoy's access log off on every route.
	AccessLogOff bool `json:"accessLogOff,omitempty"`
	// AccessLogPath is the file Envoy appends JSON lines to; empty means
	// stdout.
	AccessLogPath string `json:"accessLogPath,omitempty"`
	// AccessLogPercent is the share of requests logged, in (0, 100]; 0
	// means 100 (every request).
	AccessLogPercent float64 `json:"accessLogPercent,omitempty"`
	// AccessLogGRPC is host:port of a gRPC AccessLogService that also
	// receives the logged requests; empty means none.
	AccessLogGRPC string `json:"accessLogGrpc,omitempty"`
	// Tracing is nil when tracing is off.
	Tracing *Tracing `json:"tracing,omitempty"`
	// RouteStatsOff leaves routes without stats of their own (no
	// stat_prefix): Envoy then has no per-route stats to rebuild on a push.
	RouteStatsOff bool `json:"routeStatsOff,omitempty"`
}

// Tracing is Envoy's OpenTelemetry tracer setup: spans go over OTLP/gRPC to
// Host:Port, new traces are sampled at SamplingPercent.
type Tracing struct {
	Host            string  `json:"host"`
	Port            uint32  `json:"port"`
	SamplingPercent float64 `json:"samplingPercent"`
	// ServiceName is empty for the default, "tollgate-<gateway>".
	ServiceName string `json:"serviceName,omitempty"`
}

// RouteAccessLog is a route's access-log override; nil on a Route means
// the gateway-wide setting.
type RouteAccessLog struct {
	// Off means the route's requests are never logged.
	Off bool `json:"off,omitempty"`
	// Percent is the share of the route's requests logged, in (0, 100].
	Percent float64 `json:"percent,omitempty"`
}

// LogPercent returns the share of r's requests that the access log keeps
// under o: 0 when logging is off for r.
func (o *Observability) LogPercent(r *Route) float64 {
	switch {
	case o.AccessLogOff:
		return 0
	case r.AccessLog != nil && r.AccessLog.Off:
		return 0
	case r.AccessLog != nil && r.AccessLog.Percent > 0:
		return r.AccessLog.Percent
	case o.AccessLogPercent > 0:
		return o.AccessLogPercent
	}
	return 100
}
