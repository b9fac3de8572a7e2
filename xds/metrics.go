package xds

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the control plane's xDS metrics. A nil *Metrics records
// nothing, so tests and tools can leave it out.
type Metrics struct {
	connected *prometheus.GaugeVec
	pushes    *prometheus.CounterVec
	pushTime  prometheus.Histogram
	ackTime   *prometheus.HistogramVec
	nacks     *prometheus.CounterVec
}

// NewMetrics registers the xDS metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tollgate_xds_connected_proxies",
			Help: "Proxies connected over ADS, by gateway."}, []string{"gateway"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_xds_pushes_total",
			Help: "Configuration pushes to proxies, by outcome (ok, nacked, error)."}, []string{"outcome"}),
		pushTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tollgate_xds_push_duration_seconds",
			Help: "Time for a push to be applied and ACKed by every connected proxy.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		ackTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tollgate_xds_push_ack_seconds",
			Help: "Time from the start of a push to the last ACK of a gateway.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"gateway"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_xds_nacks_total",
			Help: "Configurations rejected by proxies, by gateway and type."}, []string{"gateway", "type"}),
	}
	reg.MustRegister(m.connected, m.pushes, m.pushTime, m.ackTime, m.nacks)
	return m
}

func (m *Metrics) setConnected(counts map[string]int) {
	if m == nil {
		return
	}
	m.connected.Reset()
	for g, n := range counts {
		m.connected.WithLabelValues(g).Set(float64(n))
	}
}

func (m *Metrics) push(outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.pushes.WithLabelValues(outcome).Inc()
	m.pushTime.Observe(d.Seconds())
}

func (m *Metrics) ackLatency(gateway string, d time.Duration) {
	if m != nil {
		m.ackTime.WithLabelValues(gateway).Observe(d.Seconds())
	}
}

func (m *Metrics) nack(gateway, typ string) {
	if m != nil {
		m.nacks.WithLabelValues(gateway, typ).Inc()
	}
}
