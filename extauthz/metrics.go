package extauthz

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/extauthz/jwt"
)

// Metrics are the authz service's metrics; a nil *Metrics records nothing.
type Metrics struct {
	checks   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	jwks     *prometheus.CounterVec
	jwtCache *prometheus.CounterVec
	refused  *prometheus.CounterVec
	dropped  *prometheus.CounterVec
}

// NewMetrics registers the authz metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_authz_checks_total",
			Help: "ext_authz decisions by policy route, decision (allow, deny), HTTP status, reason and method."},
			[]string{"route", "decision", "status", "reason", "method"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tollgate_authz_check_duration_seconds",
			Help: "Time to decide one Check.", Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25}},
			[]string{"decision"}),
		jwks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_authz_jwks_refreshes_total",
			Help: "JWKS fetches by provider and outcome (ok, error)."}, []string{"provider", "outcome"}),
		jwtCache: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_authz_jwt_cache_total",
			Help: "JWT verification cache lookups by result (hit, miss)."}, []string{"result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_authz_introspection_refused_total",
			Help: "Tokens refused (503) because the OAuth2 provider had maxConcurrent introspections in flight."},
			[]string{"provider"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_authz_roles_dropped_total",
			Help: "Role values dropped because they hold a comma, whitespace or a control character, by provider."},
			[]string{"provider"}),
	}
	reg.MustRegister(m.checks, m.latency, m.jwks, m.jwtCache, m.refused, m.dropped)
	return m
}

func (m *Metrics) check(v verdict, d time.Duration) {
	if m == nil {
		return
	}
	decision, method := "allow", ""
	if v.status != 0 {
		decision = "deny"
	}
	if v.id != nil {
		method = v.id.method
	}
	status := "200"
	if v.status != 0 {
		status = strconv.Itoa(v.status)
	}
	m.checks.WithLabelValues(v.req.route, decision, status, v.reason, method).Inc()
	m.latency.WithLabelValues(decision).Observe(d.Seconds())
}

func (m *Metrics) introspectionRefused(provider string) {
	if m != nil {
		m.refused.WithLabelValues(provider).Inc()
	}
}

func (m *Metrics) rolesDropped(provider string, n int) {
	if m != nil {
		m.dropped.WithLabelValues(provider).Add(float64(n))
	}
}

// jwtHooks adapts the metrics to the JWT verifier's hooks.
func (m *Metrics) jwtHooks() jwt.Metrics {
	if m == nil {
		return nil
	}
	return jwtMetrics{m}
}

type jwtMetrics struct{ m *Metrics }

func (j jwtMetrics) JWKSRefresh(provider string, ok bool) {
	outcome := "ok"
	if !ok {
		outcome = "error"
	}
	j.m.jwks.WithLabelValues(provider, outcome).Inc()
}

func (j jwtMetrics) CacheHit(hit bool) {
	result := "miss"
	if hit {
		result = "hit"
	}
	j.m.jwtCache.WithLabelValues(result).Inc()
}
