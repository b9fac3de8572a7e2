package policy

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// trafficSchema holds the allowed fields of the traffic mappings: a
// backend's endpoint, load balancing, hashOn, health check, outlier
// detection and circuit breakers; a route's split targets, retries,
// back-off and mirror.
type trafficSchema struct {
	endpoint []field[endpointEntry]
	lb       []field[Backend]
	hashOn   []field[HashOn]
	cookie   []field[HashCookie]
	health   []field[HealthCheck]
	outlier  []field[OutlierDetection]
	breakers []field[CircuitBreakers]
	weighted []field[WeightedBackend]
	retries  []field[Retries]
	backoff  []field[Backoff]
	mirror   []field[Mirror]
}

func newTrafficSchema() trafficSchema {
	return trafficSchema{
		endpoint: endpointFields(), lb: lbFields(), hashOn: hashOnFields(), cookie: cookieFields(),
		health: healthFields(), outlier: outlierFields(), breakers: breakerFields(),
		weighted: weightedFields(), retries: retriesFields(), backoff: backoffFields(), mirror: mirrorFields(),
	}
}

// backendTrafficFields are the backend fields besides name, endpoints,
// loadBalancing and connectTimeout.
func backendTrafficFields() []field[Backend] {
	return []field[Backend]{
		stringField("dns", func(b *Backend) *string { return &b.DNS }),
		{name: "healthCheck", load: func(l *loader, b *Backend, path string, n *yaml.Node) {
			b.HealthCheck = &HealthCheck{}
			mapping(l, path, n, b.HealthCheck, l.schema.traffic.health)
		}},
		{name: "outlierDetection", load: func(l *loader, b *Backend, path string, n *yaml.Node) {
			b.OutlierDetection = &OutlierDetection{}
			mapping(l, path, n, b.OutlierDetection, l.schema.traffic.outlier)
		}},
		{name: "circuitBreakers", load: func(l *loader, b *Backend, path string, n *yaml.Node) {
			b.CircuitBreakers = &CircuitBreakers{}
			mapping(l, path, n, b.CircuitBreakers, l.schema.traffic.breakers)
		}},
	}
}

// routeTrafficFields are the route fields of traffic management.
func routeTrafficFields() []field[Route] {
	return []field[Route]{
		{name: "backends", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.Backends = appendList(l, path, n, []WeightedBackend{}, l.schema.traffic.weighted)
		}},
		{name: "retries", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.Retries = &Retries{}
			mapping(l, path, n, r.Retries, l.schema.traffic.retries)
		}},
		stringField("idleTimeout", func(r *Route) *string { return &r.IdleTimeout }),
		{name: "mirror", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.Mirror = &Mirror{}
			mapping(l, path, n, r.Mirror, l.schema.traffic.mirror)
		}},
	}
}

// endpointEntry is one endpoint in its mapping form.
type endpointEntry struct {
	Address string
	Meta    EndpointMeta
}

// loadEndpoints loads a backend's endpoints: each a "host:port" string or
// a mapping {address, weight, zone}. EndpointMeta stays nil when every
// entry is a string.
func loadEndpoints(l *loader, b *Backend, path string, n *yaml.Node) {
	seq, ok := l.sequence(path, n)
	if !ok {
		return
	}
	b.Endpoints = make([]string, 0, len(seq.Content))
	meta := make([]EndpointMeta, 0, len(seq.Content))
	mapped := false
	for i, item := range seq.Content {
		ip := indexPath(path, i)
		l.record(ip, item)
		v, ok := l.resolve(ip, item)
		if !ok {
			b.Endpoints, meta = append(b.Endpoints, ""), append(meta, EndpointMeta{})
			continue
		}
		var e endpointEntry
		if isMap(v) {
			mapped = true
			mapping(l, ip, v, &e, l.schema.traffic.endpoint)
		} else {
			e.Address = l.str(ip, v)
		}
		b.Endpoints, meta = append(b.Endpoints, e.Address), append(meta, e.Meta)
	}
	if mapped {
		b.EndpointMeta = meta
	}
}

func endpointFields() []field[endpointEntry] {
	return []field[endpointEntry]{
		requiredString("address", "add `address: 10.0.0.1:8080`", func(e *endpointEntry) *string { return &e.Address }),
		positiveInt("weight", func(e *endpointEntry) *int { return &e.Meta.Weight }),
		stringField("zone", func(e *endpointEntry) *string { return &e.Meta.Zone }),
	}
}

// lbForm is the fix for a loadBalancing that is neither a string nor a
// mapping.
const lbForm = "write `loadBalancing: round_robin` (or least_request, random, ring_hash, maglev), or a mapping such as " +
	"`loadBalancing: {policy: ring_hash, hashOn: {header: x-user-id}}`"

// loadLoadBalancing loads a backend's loadBalancing: a policy name, or a
// mapping {policy, hashOn}.
func loadLoadBalancing(l *loader, b *Backend, path string, n *yaml.Node) {
	v, ok := l.resolve(path, n)
	if !ok {
		return
	}
	switch kindOfNode(v) {
	case kindMapping:
		mapping(l, path, v, b, l.schema.traffic.lb)
	case kindString:
		b.LoadBalancing = l.str(path, v)
	default:
		l.fail(path, v, "expected a policy name or a mapping, got "+kindOf(v), lbForm)
	}
}

func lbFields() []field[Backend] {
	return []field[Backend]{
		requiredString("policy", "add `policy: ring_hash` (or maglev, round_robin, least_request, random)",
			func(b *Backend) *string { return &b.LoadBalancing }),
		{name: "hashOn", load: func(l *loader, b *Backend, path string, n *yaml.Node) {
			b.HashOn = &HashOn{}
			mapping(l, path, n, b.HashOn, l.schema.traffic.hashOn)
		}},
	}
}

func hashOnFields() []field[HashOn] {
	return []field[HashOn]{
		stringField("header", func(h *HashOn) *string { return &h.Header }),
		{name: "cookie", load: func(l *loader, h *HashOn, path string, n *yaml.Node) {
			h.Cookie = &HashCookie{}
			mapping(l, path, n, h.Cookie, l.schema.traffic.cookie)
		}},
		{name: "clientIP", load: func(l *loader, h *HashOn, path string, n *yaml.Node) {
			h.ClientIP = l.boolean(path, n)
		}},
	}
}

func cookieFields() []field[HashCookie] {
	return []field[HashCookie]{
		requiredString("name", "add `name: <cookie name>`", func(c *HashCookie) *string { return &c.Name }),
		stringField("ttl", func(c *HashCookie) *string { return &c.TTL }),
	}
}

func healthFields() []field[HealthCheck] {
	return []field[HealthCheck]{
		requiredString("path", "add `path: /healthz`", func(h *HealthCheck) *string { return &h.Path }),
		stringField("interval", func(h *HealthCheck) *string { return &h.Interval }),
		stringField("timeout", func(h *HealthCheck) *string { return &h.Timeout }),
		positiveInt("healthyThreshold", func(h *HealthCheck) *int { return &h.HealthyThreshold }),
		positiveInt("unhealthyThreshold", func(h *HealthCheck) *int { return &h.UnhealthyThreshold }),
		{name: "expectedStatuses", load: func(l *loader, h *HealthCheck, path string, n *yaml.Node) {
			h.ExpectedStatuses = l.integers(path, n)
		}},
	}
}

func outlierFields() []field[OutlierDetection] {
	return []field[OutlierDetection]{
		positiveInt("consecutive5xx", func(o *OutlierDetection) *int { return &o.Consecutive5xx }),
		stringField("interval", func(o *OutlierDetection) *string { return &o.Interval }),
		stringField("baseEjectionTime", func(o *OutlierDetection) *string { return &o.BaseEjectionTime }),
		positiveInt("maxEjectionPercent", func(o *OutlierDetection) *int { return &o.MaxEjectionPercent }),
	}
}

func breakerFields() []field[CircuitBreakers] {
	return []field[CircuitBreakers]{
		positiveInt("maxConnections", func(c *CircuitBreakers) *int { return &c.MaxConnections }),
		positiveInt("maxPendingRequests", func(c *CircuitBreakers) *int { return &c.MaxPendingRequests }),
		positiveInt("maxRequests", func(c *CircuitBreakers) *int { return &c.MaxRequests }),
		positiveInt("maxRetries", func(c *CircuitBreakers) *int { return &c.MaxRetries }),
	}
}

func weightedFields() []field[WeightedBackend] {
	return []field[WeightedBackend]{
		requiredString("name", "add `name: <backend name>`", func(w *WeightedBackend) *string { return &w.Name }),
		{name: "weight", required: true, hint: "add `weight: <share of the requests>`", load: func(l *loader, w *WeightedBackend, path string, n *yaml.Node) {
			w.Weight, _ = l.integer(path, n)
		}},
	}
}

func retriesFields() []field[Retries] {
	return []field[Retries]{
		positiveInt("attempts", func(r *Retries) *int { return &r.Attempts }),
		{name: "on", load: func(l *loader, r *Retries, path string, n *yaml.Node) {
			r.On = l.strings(path, n)
		}},
		stringField("perTryTimeout", func(r *Retries) *string { return &r.PerTryTimeout }),
		{name: "backoff", load: func(l *loader, r *Retries, path string, n *yaml.Node) {
			r.Backoff = &Backoff{}
			mapping(l, path, n, r.Backoff, l.schema.traffic.backoff)
		}},
	}
}

func backoffFields() []field[Backoff] {
	return []field[Backoff]{
		requiredString("base", "add `base: 25ms`", func(b *Backoff) *string { return &b.Base }),
		stringField("max", func(b *Backoff) *string { return &b.Max }),
	}
}

func mirrorFields() []field[Mirror] {
	return []field[Mirror]{
		requiredString("backend", "add `backend: <backend name>`", func(m *Mirror) *string { return &m.Backend }),
		positiveInt("percent", func(m *Mirror) *int { return &m.Percent }),
	}
}

// positiveInt is an optional integer field that must be at least 1; 0 is
// rejected here, as Validate reads 0 as "left out".
func positiveInt[T any](name string, dst func(*T) *int) field[T] {
	return field[T]{name: name, load: func(l *loader, t *T, path string, n *yaml.Node) {
		v, ok := l.integer(path, n)
		if !ok {
			return
		}
		if v < 1 {
			l.fail(path, n, fmt.Sprintf("%s must be at least 1, got %d", name, v), "use a positive number, or remove the field for the default")
			return
		}
		*dst(t) = v
	}}
}

// integers loads a list of integers.
func (l *loader) integers(path string, n *yaml.Node) []int {
	seq, ok := l.sequence(path, n)
	if !ok {
		return nil
	}
	out := make([]int, 0, len(seq.Content))
	for i, item := range seq.Content {
		ip := indexPath(path, i)
		l.record(ip, item)
		v, _ := l.integer(ip, item)
		out = append(out, v)
	}
	return out
}
