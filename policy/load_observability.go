package policy

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// accessLogOff is the scalar that turns an access log off.
const accessLogOff = "off"

// The fixes shown for a malformed accessLog.
const (
	accessLogForm      = "write `accessLog: off` or `accessLog: {path: /var/log/envoy/access.log, sample: 10%}`"
	routeAccessLogForm = "write `accessLog: off` or `accessLog: {sample: 10%}`"
)

// observabilitySchema holds the allowed fields of the observability
// mappings.
type observabilitySchema struct {
	section   []field[Observability]
	accessLog []field[AccessLog]
	tracing   []field[Tracing]
	route     []field[RouteAccessLog]
}

func newObservabilitySchema() observabilitySchema {
	return observabilitySchema{
		section:   observabilityFields(),
		accessLog: accessLogFields(),
		tracing:   tracingFields(),
		route:     []field[RouteAccessLog]{{name: "sample", load: func(l *loader, r *RouteAccessLog, path string, n *yaml.Node) { r.Sample = l.str(path, n) }}},
	}
}

// loadObservability loads the top-level observability section; its
// accessLog and tracing may each be set in one file only.
func loadObservability(l *loader, p *Policy, path string, n *yaml.Node) {
	if p.Observability == nil {
		p.Observability = &Observability{}
	}
	mapping(l, path, n, p.Observability, l.schema.obs.section)
}

func observabilityFields() []field[Observability] {
	return []field[Observability]{
		{name: "accessLog", load: func(l *loader, o *Observability, path string, n *yaml.Node) {
			if l.setTwice(path, n, o.AccessLog != nil) {
				return
			}
			o.AccessLog = &AccessLog{}
			if off, isMap := offOrMapping(l, path, n, accessLogForm); off {
				o.AccessLog.Off = true
			} else if isMap {
				mapping(l, path, n, o.AccessLog, l.schema.obs.accessLog)
			}
		}},
		{name: "routeStats", load: func(l *loader, o *Observability, path string, n *yaml.Node) {
			if !l.setTwice(path, n, o.RouteStats != nil) {
				on := l.boolean(path, n)
				o.RouteStats = &on
			}
		}},
		{name: "tracing", load: func(l *loader, o *Observability, path string, n *yaml.Node) {
			if !l.setTwice(path, n, o.Tracing != nil) {
				o.Tracing = &Tracing{}
				mapping(l, path, n, o.Tracing, l.schema.obs.tracing)
			}
		}},
	}
}

func accessLogFields() []field[AccessLog] {
	return []field[AccessLog]{
		{name: "path", load: func(l *loader, a *AccessLog, path string, n *yaml.Node) { a.Path = l.str(path, n) }},
		{name: "sample", load: func(l *loader, a *AccessLog, path string, n *yaml.Node) { a.Sample = l.str(path, n) }},
		{name: "grpc", load: func(l *loader, a *AccessLog, path string, n *yaml.Node) { a.GRPC = l.str(path, n) }},
	}
}

func tracingFields() []field[Tracing] {
	return []field[Tracing]{
		{name: "otlp", required: true, hint: "add `otlp: <collector host:port>` (OTLP over gRPC, usually port 4317)",
			load: func(l *loader, t *Tracing, path string, n *yaml.Node) { t.OTLP = l.str(path, n) }},
		{name: "sampling", load: func(l *loader, t *Tracing, path string, n *yaml.Node) { t.Sampling = l.str(path, n) }},
		{name: "serviceName", load: func(l *loader, t *Tracing, path string, n *yaml.Node) { t.ServiceName = l.str(path, n) }},
	}
}

// loadRouteAccessLog loads a route's accessLog: `off` or a mapping.
func loadRouteAccessLog(l *loader, r *Route, path string, n *yaml.Node) {
	r.AccessLog = &RouteAccessLog{}
	if off, isMap := offOrMapping(l, path, n, routeAccessLogForm); off {
		r.AccessLog.Off = true
	} else if isMap {
		mapping(l, path, n, r.AccessLog, l.schema.obs.route)
	}
}

// offOrMapping tells whether n is the scalar `off` (or `false`) or a
// mapping. Anything else is reported as an error with the fix form.
func offOrMapping(l *loader, path string, n *yaml.Node, form string) (off, isMap bool) {
	v, ok := l.resolve(path, n)
	if !ok {
		return false, false
	}
	switch kindOfNode(v) {
	case kindMapping:
		return false, true
	case kindString:
		if v.Value == accessLogOff {
			return true, false
		}
	case kindBool:
		if v.Value[0] == 'f' || v.Value[0] == 'F' {
			return true, false
		}
	}
	summary := fmt.Sprintf("expected %q or a mapping, got %s", accessLogOff, kindOf(v))
	l.fail(path, v, summary+didYouMeanWord(v, accessLogOff), form)
	return false, false
}
