package ratelimit

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the rate-limit service's metrics; nil records nothing.
type Metrics struct {
	decisions *prometheus.CounterVec
	errors    prometheus.Counter
	backend   prometheus.Histogram
	invalid   prometheus.Gauge
}

// NewMetrics registers the rate-limit metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_ratelimit_decisions_total",
			Help: "Rate-limit decisions by route, tier and decision (ok, over_limit, shadow_over_limit, unlimited, not_counted)."},
			[]string{"route", "tier", "decision"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_ratelimit_backend_errors_total",
			Help: "Decisions the counter backend could not make (the failure mode applied)."}),
		backend: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tollgate_ratelimit_backend_duration_seconds",
			Help:    "Time of one counter backend call (one Redis round trip with the Redis backend).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1}}),
		invalid: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_ratelimit_invalid_limits",
			Help: "Limits of the current policy the counters cannot enforce; they are skipped (the log names them)."}),
	}
	reg.MustRegister(m.decisions, m.errors, m.backend, m.invalid)
	return m
}

func (m *Metrics) backendTime(d time.Duration) {
	if m != nil {
		m.backend.Observe(d.Seconds())
	}
}

func (m *Metrics) invalidLimits(n int) {
	if m != nil {
		m.invalid.Set(float64(n))
	}
}

func (m *Metrics) backendError() {
	if m != nil {
		m.errors.Inc()
	}
}

func (m *Metrics) decision(d Decision) {
	if m == nil || d.err != nil {
		return
	}
	m.decisions.WithLabelValues(d.route, d.tier, d.kind()).Inc()
}

// kind names the decision: ok, over_limit, shadow_over_limit, unlimited or
// not_counted. It is the metrics label and the access log's rate_limit.
func (d Decision) kind() string {
	switch {
	case d.shadowed:
		return "shadow_over_limit"
	case !d.allowed:
		return "over_limit"
	case len(d.refs) == 0:
		return "unlimited"
	case d.unknown:
		return "not_counted"
	}
	return "ok"
}
