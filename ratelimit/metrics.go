package ratelimit

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the rate-limit service's metrics; nil records nothing.
type Metrics struct {
	decisions *prometheus.CounterVec
	errors    prometheus.Counter
}

// NewMetrics registers the rate-limit metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_ratelimit_decisions_total",
			Help: "Rate-limit decisions by route, tier and decision (ok, over_limit, shadow_over_limit, unlimited, not_counted)."},
			[]string{"route", "tier", "decision"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_ratelimit_backend_errors_total",
			Help: "Decisions the counter backend could not make (the failure mode applied)."}),
	}
	reg.MustRegister(m.decisions, m.errors)
	return m
}

func (m *Metrics) backendError() {
	if m != nil {
		m.errors.Inc()
	}
}

func (m *Metrics) decision(d decision) {
	if m == nil || d.err != nil {
		return
	}
	kind := "ok"
	switch {
	case d.shadowed:
		kind = "shadow_over_limit"
	case !d.allowed:
		kind = "over_limit"
	case len(d.refs) == 0:
		kind = "unlimited"
	case d.unknown:
		kind = "not_counted"
	}
	m.decisions.WithLabelValues(d.route, d.tier, kind).Inc()
}
