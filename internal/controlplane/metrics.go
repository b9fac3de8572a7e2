package controlplane

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the control plane's own metrics: how long a policy takes to
// become Envoy resources, and which version is served. Nil records nothing.
type Metrics struct {
	build *prometheus.HistogramVec
	info  *prometheus.Desc
	ctl   *Controller
}

// NewMetrics returns the metrics; Register them once the Controller exists.
func NewMetrics() *Metrics {
	return &Metrics{
		build: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tollgate_snapshot_build_seconds",
			Help:    "Time to build a policy's Envoy snapshots: validate, compile to the IR, translate and validate every gateway's resources.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}},
			[]string{"outcome"}),
		info: prometheus.NewDesc("tollgate_policy_info",
			"The served policy version (always 1; the version is a label).", []string{"version"}, nil),
	}
}

// Register registers the metrics with reg, reading the served version from
// ctl at every scrape.
func (m *Metrics) Register(reg prometheus.Registerer, ctl *Controller) {
	m.ctl = ctl
	reg.MustRegister(m.build, m)
}

// Describe implements prometheus.Collector for tollgate_policy_info.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.info }

// Collect implements prometheus.Collector for tollgate_policy_info.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	if m.ctl == nil {
		return
	}
	if v := m.ctl.Current(); v != nil {
		ch <- prometheus.MustNewConstMetric(m.info, prometheus.GaugeValue, 1, v.ID)
	}
}

// built records one snapshot build ("ok", "invalid" or "error").
func (m *Metrics) built(outcome string, d time.Duration) {
	if m != nil {
		m.build.WithLabelValues(outcome).Observe(d.Seconds())
	}
}

// timeBuild records a build that started at start and ended with *err.
func (m *Metrics) timeBuild(start time.Time, err *error) {
	outcome := "ok"
	var rej *RejectedError
	switch {
	case errors.As(*err, &rej):
		outcome = "invalid"
	case *err != nil:
		outcome = "error"
	}
	m.built(outcome, time.Since(start))
}
