package translator

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tracingtypev3 "github.com/envoyproxy/go-control-plane/envoy/type/tracing/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/policy/ir"
)

// TracingClusterName is the static HTTP/2 cluster of the OTLP collector.
// Policy names cannot contain '_', so no backend can take it.
const TracingClusterName = "tollgate_otel_collector"

// AccessLogClusterName is the static HTTP/2 cluster of the gRPC
// access-log service.
const AccessLogClusterName = "tollgate_access_log"

// RouteTagName is the span tag (and access-log key) carrying the policy's
// route name.
const RouteTagName = "tollgate.route"

// accessLogSampleRuntimeKey prefixes the runtime keys of the access log's
// sampling filters (one per distinct share): an operator can override a
// share through Envoy's runtime without a push.
const accessLogSampleRuntimeKey = "tollgate.access_log.sample_percent_x10000."

// accessLogPath is the access log's path: the one before any rewrite.
// x-envoy-original-path is the router's own record once a route was
// selected (the edge filter removed a client's copy before that); a
// request Envoy answers before any filter runs (a path-normalisation
// redirect) has no route and may still carry the client's copy, so its
// :path is logged instead.
const accessLogPath = "%CEL(has(xds.route_name) && 'x-envoy-original-path' in request.headers ? " +
	"request.headers['x-envoy-original-path'] : request.path)%"

// rateLimitLog says where a gateway's requests publish their rate-limit
// decision: Envoy's ratelimit filter (the rate-limit service's answer)
// and/or the ext_authz Check on routes that take their limits there
// (ratelimit_check.go). Quota mode publishes none.
type rateLimitLog struct{ filter, check bool }

// Dynamic metadata of the two decisions.
const (
	rateLimitFilterDecision = "%DYNAMIC_METADATA(envoy.filters.http.ratelimit:decision)%"
	rateLimitCheckDecision  = "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:" + contract.MetadataRateLimit + ")%"
	// rateLimitEitherDecision is whichever is set (a request sees one
	// at most), nothing when neither is: two operators in one JSON value
	// would write "" for a request without a decision (omit_empty_values
	// drops only a value that is a single absent operator), and a CEL
	// error leaves the key out.
	rateLimitEitherDecision = "%CEL('envoy.filters.http.ratelimit' in metadata.filter_metadata ? " +
		"metadata.filter_metadata['envoy.filters.http.ratelimit'].decision : " +
		"metadata.filter_metadata['envoy.filters.http.ext_authz']." + contract.MetadataRateLimit + ")%"
)

// operator returns the rate_limit field's operator, "" for no field.
func (l rateLimitLog) operator() string {
	switch {
	case l.filter && l.check:
		return rateLimitEitherDecision
	case l.filter:
		return rateLimitFilterDecision
	case l.check:
		return rateLimitCheckDecision
	}
	return ""
}

// AccessLogFields returns the access log's JSON keys and the Envoy command
// operators that fill them, rate_limit from both decisions (see
// accessLogFields). Durations are milliseconds; empty values are left out
// of the line. docs/reference/access-log.md documents each key.
func AccessLogFields() map[string]string {
	return accessLogFields(rateLimitLog{filter: true, check: true})
}

// accessLogFields is AccessLogFields with the rate_limit field of rl: a
// request without a decision (a route without limits, a request refused
// before them) has no rate_limit key, and a gateway without either source
// no field.
func accessLogFields(rl rateLimitLog) map[string]string {
	f := map[string]string{
		"timestamp":            "%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)%",
		"request_id":           "%REQ(X-REQUEST-ID)%",
		"method":               "%REQ(:METHOD)%",
		"path":                 accessLogPath,
		"authority":            "%REQ(:AUTHORITY)%",
		"protocol":             "%PROTOCOL%",
		"route":                "%ROUTE_NAME%",
		"status":               "%RESPONSE_CODE%",
		"response_flags":       "%RESPONSE_FLAGS%",
		"response_details":     "%RESPONSE_CODE_DETAILS%",
		"duration_ms":          "%DURATION%",
		"upstream_duration_ms": "%COMMON_DURATION(US_TX_BEG:US_RX_END:ms)%",
		"bytes_in":             "%BYTES_RECEIVED%",
		"bytes_out":            "%BYTES_SENT%",
		"upstream_cluster":     "%UPSTREAM_CLUSTER%",
		"upstream_host":        "%UPSTREAM_HOST%",
		"client_ip":            "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
		"user_agent":           "%REQ(USER-AGENT)%",
		"user_id":              "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:user_id)%",
		"consumer":             "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:consumer)%",
		"tenant":               "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:tenant)%",
		"tier":                 "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:tier)%",
		"auth_method":          "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:method)%",
		"trace_id":             "%TRACE_ID%",
	}
	if op := rl.operator(); op != "" {
		f["rate_limit"] = op
	}
	return f
}

// observability holds a gateway's access logs, tracing setup and the
// collector cluster, shared by every HCM of the gateway.
type observability struct {
	accessLogs []*accesslogv3.AccessLog
	tracing    *hcmv3.HttpConnectionManager_Tracing
	clusters   []*clusterv3.Cluster // the collector and access-log service clusters in use
	cfg        ir.Observability
}

// newObservability builds gw's access logs (unless off; see
// jsonAccessLogs) and, when the policy traces, its tracer and collector
// cluster.
func newObservability(cfg *ir.Config, gw *ir.Gateway, a *authz, rl *rateLimit) (*observability, error) {
	o := &observability{cfg: cfg.Observability}
	if !o.cfg.AccessLogOff {
		filter, err := accessLogFilter(&o.cfg, gw)
		if err != nil {
			return nil, err
		}
		rlLog := rateLimitLog{filter: rl.enabled && rl.quota == nil, check: len(a.checkLimitHeaders(gw)) > 0}
		logs, err := jsonAccessLogs(o.cfg.AccessLogPath, accessLogFields(rlLog), identityHeadersOrDefault(cfg.Auth.IdentityHeaders), metadataRoutes(gw, a), filter)
		if err != nil {
			return nil, err
		}
		o.accessLogs = logs
		if err := o.addGRPCAccessLog(gw.Name, filter); err != nil {
			return nil, err
		}
	}
	t := o.cfg.Tracing
	if t == nil {
		return o, nil
	}
	service := t.ServiceName
	if service == "" {
		service = "tollgate-" + gw.Name
	}
	var err error
	if o.tracing, err = envoy.OpenTelemetryTracing(TracingClusterName, service, t.SamplingPercent); err != nil {
		return nil, err
	}
	c, err := envoy.GRPCCluster(TracingClusterName, net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port))), time.Second)
	if err != nil {
		return nil, fmt.Errorf("tracing collector: %w", err)
	}
	o.clusters = append(o.clusters, c)
	return o, nil
}

// addGRPCAccessLog adds the gRPC access-log service sink (same filter as
// the JSON log) and its cluster, when the policy names one.
func (o *observability) addGRPCAccessLog(gateway string, filter *accesslogv3.AccessLogFilter) error {
	if o.cfg.AccessLogGRPC == "" {
		return nil
	}
	al, err := envoy.GRPCAccessLog("tollgate-"+gateway, AccessLogClusterName, filter)
	if err != nil {
		return err
	}
	c, err := envoy.GRPCCluster(AccessLogClusterName, o.cfg.AccessLogGRPC, time.Second)
	if err != nil {
		return fmt.Errorf("access-log service: %w", err)
	}
	o.accessLogs = append(o.accessLogs, al)
	o.clusters = append(o.clusters, c)
	return nil
}

// accessLogFilter returns the filter that applies each route's sampling
// share (nil when every request is logged). Routes whose share differs
// from the policy-wide one are selected by name with CEL; the others, and
// requests that matched no route, get the policy-wide share.
func accessLogFilter(cfg *ir.Observability, gw *ir.Gateway) (*accesslogv3.AccessLogFilter, error) {
	def := cfg.AccessLogPercent
	if def == 0 {
		def = 100
	}
	byShare := map[float64][]string{}
	var overridden []string
	for _, vh := range gw.VirtualHosts {
		for i := range vh.Routes {
			r := &vh.Routes[i]
			p := cfg.LogPercent(r)
			if p == def || slices.Contains(overridden, r.Name) {
				continue
			}
			overridden = append(overridden, r.Name)
			byShare[p] = append(byShare[p], r.Name)
		}
	}
	if len(overridden) == 0 {
		return sampled(nil, def), nil
	}
	slices.Sort(overridden)
	rest, err := envoy.AccessLogCELFilter("!has(xds.route_name) || !(xds.route_name in " + envoy.CELStringList(overridden) + ")")
	if err != nil {
		return nil, err
	}
	groups := []*accesslogv3.AccessLogFilter{sampled(rest, def)}
	shares := slices.Sorted(maps.Keys(byShare))
	for _, p := range shares {
		if p == 0 {
			continue // off: in no group
		}
		names := byShare[p]
		slices.Sort(names)
		sel, err := envoy.AccessLogCELFilter("xds.route_name in " + envoy.CELStringList(names))
		if err != nil {
			return nil, err
		}
		groups = append(groups, sampled(sel, p))
	}
	return envoy.AccessLogOr(groups...), nil
}

// sampled narrows sel (nil: every request) to percent of the requests.
func sampled(sel *accesslogv3.AccessLogFilter, percent float64) *accesslogv3.AccessLogFilter {
	if percent >= 100 {
		return sel
	}
	sample := envoy.AccessLogSampleFilter(accessLogSampleRuntimeKey+strconv.Itoa(int(percent*10000+0.5)), percent)
	if sel == nil {
		return sample
	}
	return envoy.AccessLogAnd(sel, sample)
}

// decorate adds the access logs and the tracer to an HCM.
func (o *observability) decorate(hcm *hcmv3.HttpConnectionManager) {
	hcm.AccessLog = o.accessLogs
	hcm.Tracing = o.tracing
}

// configureRoute gives a route its per-route stats (stat_prefix = the
// policy's route name: vhost.<vhost>.route.<name>.upstream_rq_*) unless the
// policy turned them off and, with tracing, a span named after the route
// with a tollgate.route tag, sampled at the policy's share.
func (o *observability) configureRoute(er *routev3.Route, name string) {
	if !o.cfg.RouteStatsOff {
		er.StatPrefix = name
	}
	t := o.cfg.Tracing
	if t == nil {
		return
	}
	er.Decorator = &routev3.Decorator{Operation: name, Propagate: wrapperspb.Bool(false)}
	er.Tracing = &routev3.Tracing{
		RandomSampling: envoy.FractionalPercent(t.SamplingPercent),
		CustomTags:     []*tracingtypev3.CustomTag{envoy.LiteralTag(RouteTagName, name)},
	}
}

// appendClusters appends the observability clusters in use (collector,
// access-log service) to clusters; their names may not be backend names.
func (o *observability) appendClusters(clusters []*clusterv3.Cluster, gw *ir.Gateway) ([]*clusterv3.Cluster, error) {
	for _, c := range o.clusters {
		if slices.Contains(gw.BackendNames(), c.GetName()) {
			return nil, fmt.Errorf("backend %q: the name is reserved for an observability cluster", c.GetName())
		}
		clusters = append(clusters, c)
	}
	return clusters, nil
}
