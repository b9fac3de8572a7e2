package quota

import (
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the RLQS server's metrics (tollgate_rlqs_*); nil records
// nothing.
type Metrics struct {
	streams     prometheus.Gauge
	buckets     prometheus.Gauge
	reports     prometheus.Counter
	requests    *prometheus.CounterVec
	assignments *prometheus.CounterVec
	unknown     prometheus.Counter
	settle      prometheus.Histogram
	errors      prometheus.Counter
	failure     *prometheus.CounterVec
	recoveries  prometheus.Counter
	rebalances  prometheus.Counter
	uncharged   prometheus.Counter
	abandons    prometheus.Counter
}

// NewMetrics registers the RLQS metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_rlqs_streams",
			Help: "Open RLQS streams (one per Envoy and domain, opened at its first quota-mode request)."}),
		buckets: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_rlqs_buckets",
			Help: "Buckets (route, tier and consumer or client address) the open streams have reported."}),
		reports: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_rlqs_reports_total",
			Help: "Bucket usage reports received (one per bucket per report: at once for a new bucket, then every 5 s)."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_rlqs_reported_requests_total",
			Help: "Requests Envoys reported, by the bucket's route and tier (from the policy; empty for a bucket Tollgate did not build) and what RLQS decided in Envoy (allowed, denied)."},
			[]string{"route", "tier", "outcome"}),
		assignments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_rlqs_assignments_total",
			Help: "Bucket assignments sent, by strategy (token_bucket, allow_all, deny_all)."}, []string{"strategy"}),
		unknown: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_rlqs_unknown_buckets_total",
			Help: "Bucket reports left unanswered: an id Tollgate did not build or a route no longer limited."}),
		settle: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tollgate_rlqs_settle_duration_seconds",
			Help:    "Time to settle a bucket with the shared account: the batch of its usage report (with Redis, one pipelined round trip per 128 buckets), observed per bucket.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1}}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_rlqs_settle_errors_total",
			Help: "Settlements the shared account (Redis) failed; the failure mode applied."}),
		failure: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_rlqs_failure_mode_total",
			Help: "Bucket answers that applied the failure mode (closed: DENY_ALL, open: ALLOW_ALL, local: settled in memory)."},
			[]string{"mode"}),
		recoveries: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_rlqs_recovery_pushes_total",
			Help: "Responses pushed without a report once the account was back (fresh assignments after the failure mode)."}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_rlqs_rebalance_pushes_total",
			Help: "Responses pushed without a report when a bucket was first reported by another Envoy (the holders' shares of the rate shrunk, the newcomer assigned again)."}),
		uncharged: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_rlqs_uncharged_requests_total",
			Help: "Requests reported as allowed but not charged: more than the Envoy's backstop can have admitted (it refused them after RLQS let them through)."}),
		abandons: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_rlqs_abandoned_buckets_total",
			Help: "Buckets abandoned after AbandonAfter idle reports in a row: Envoy drops them and builds them again at their next request."}),
	}
	reg.MustRegister(m.streams, m.buckets, m.reports, m.requests, m.assignments, m.unknown, m.settle, m.errors,
		m.failure, m.recoveries, m.rebalances, m.uncharged, m.abandons)
	return m
}

func (m *Metrics) streamOpened() {
	if m != nil {
		m.streams.Inc()
	}
}

// streamClosed forgets a stream and the buckets it had reported.
func (m *Metrics) streamClosed(buckets int) {
	if m != nil {
		m.streams.Dec()
		m.buckets.Sub(float64(buckets))
	}
}

func (m *Metrics) newBucket() {
	if m != nil {
		m.buckets.Inc()
	}
}

// abandoned counts a bucket abandoned and forgets it.
func (m *Metrics) abandoned() {
	if m != nil {
		m.abandons.Inc()
		m.buckets.Dec()
	}
}

// report counts one bucket's usage report: its requests by outcome under
// the bucket's route and tier (b.route and b.tier: names from the policy,
// "" for an unknown bucket, so a client never chooses a label value).
func (m *Metrics) report(b bucket, allowed, denied uint64) {
	if m != nil {
		m.reports.Inc()
		m.requests.WithLabelValues(b.route, b.tier, "allowed").Add(float64(allowed))
		m.requests.WithLabelValues(b.route, b.tier, "denied").Add(float64(denied))
	}
}

// notCharged counts reported allowed requests left uncharged.
func (m *Metrics) notCharged(n uint64) {
	if m != nil && n > 0 {
		m.uncharged.Add(float64(n))
	}
}

func (m *Metrics) unknownBucket() {
	if m != nil {
		m.unknown.Inc()
	}
}

// sent counts the assignments of a response.
func (m *Metrics) sent(resp *rlqsv3.RateLimitQuotaResponse) {
	if m != nil {
		for _, a := range resp.GetBucketAction() {
			if a.GetAbandonAction() != nil {
				continue // counted by abandoned
			}
			m.assignments.WithLabelValues(strategyName(a.GetQuotaAssignmentAction().GetRateLimitStrategy())).Inc()
		}
	}
}

func (m *Metrics) settled(d time.Duration, err error) {
	if m != nil {
		m.settle.Observe(d.Seconds())
		if err != nil {
			m.errors.Inc()
		}
	}
}

func (m *Metrics) failureMode(mode string) {
	if m != nil {
		m.failure.WithLabelValues(mode).Inc()
	}
}

func (m *Metrics) recoveryPush() {
	if m != nil {
		m.recoveries.Inc()
	}
}

func (m *Metrics) rebalancePush() {
	if m != nil {
		m.rebalances.Inc()
	}
}

// strategyName is the assignments label of a strategy.
func strategyName(s *typev3.RateLimitStrategy) string {
	switch {
	case s.GetTokenBucket() != nil:
		return "token_bucket"
	case s.GetBlanketRule() == typev3.RateLimitStrategy_DENY_ALL:
		return "deny_all"
	}
	return "allow_all"
}
