package transform

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of one body the service sees.
const (
	outcomeConverted   = "converted"
	outcomePassthrough = "passthrough" // not the source content type, or empty
	outcomeMalformed   = "malformed"
	outcomeTooLarge    = "too_large"
)

// Metrics are the transformation service's metrics; nil records nothing.
type Metrics struct {
	streams  prometheus.Counter
	bodies   *prometheus.CounterVec
	duration prometheus.Histogram
}

// NewMetrics registers the transformation metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		streams: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_transform_streams_total",
			Help: "External processing streams opened by Envoy (one per HTTP request on a route with a transform)."}),
		bodies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_transform_bodies_total",
			Help: "Bodies seen, by direction (request, response), conversion and outcome (converted, passthrough, malformed, too_large)."},
			[]string{"direction", "conversion", "outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tollgate_transform_conversion_duration_seconds",
			Help:    "Time of one body conversion.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1}}),
	}
	reg.MustRegister(m.streams, m.bodies, m.duration)
	return m
}

func (m *Metrics) stream() {
	if m != nil {
		m.streams.Inc()
	}
}

func (m *Metrics) body(direction, conversion, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	m.bodies.WithLabelValues(direction, conversion, outcome).Inc()
	if outcome == outcomeConverted {
		m.duration.Observe(took.Seconds())
	}
}
