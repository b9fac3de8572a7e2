package quota

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/policy/ir"
)

// TestServerMetrics: one stream reporting a consumer bucket, a foreign
// bucket and (account down, failure mode closed) a second consumer shows
// in the tollgate_rlqs_* series; closing the stream takes its stream and
// buckets off the gauges.
func TestServerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	acct := &switchAccount{ok: NewMemoryAccount(time.Now)}
	s := New(Options{Account: acct, Metrics: m})
	if _, err := s.Swap(testConfig(ir.FailClosed)); err != nil {
		t.Fatal(err)
	}
	st := dial(t, s)
	send := func(id map[string]string, allowed, denied uint64) {
		t.Helper()
		if err := st.Send(usage(id, allowed, denied)); err != nil {
			t.Fatal(err)
		}
	}
	send(map[string]string{"name": "theirs"}, 1, 0)
	send(consumerBucket("tiny"), 3, 2)
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	acct.fail = true
	bob := consumerBucket("tiny")
	bob[ir.BucketKeyConsumer] = "bob"
	send(bob, 1, 0)
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`tollgate_rlqs_assignments_total{strategy="allow_all"}`:                            1,
		`tollgate_rlqs_assignments_total{strategy="deny_all"}`:                             1,
		`tollgate_rlqs_assignments_total{strategy="token_bucket"}`:                         1,
		`tollgate_rlqs_buckets`:                                                            3,
		`tollgate_rlqs_failure_mode_total{mode="closed"}`:                                  1,
		`tollgate_rlqs_reported_requests_total{outcome="allowed",route="api",tier="tiny"}`: 4,
		`tollgate_rlqs_reported_requests_total{outcome="denied",route="api",tier="tiny"}`:  2,
		`tollgate_rlqs_reported_requests_total{outcome="allowed",route="",tier=""}`:        1,
		`tollgate_rlqs_reported_requests_total{outcome="denied",route="",tier=""}`:         0,
		`tollgate_rlqs_reports_total`:                                                      3,
		`tollgate_rlqs_settle_errors_total`:                                                1,
		`tollgate_rlqs_streams`:                                                            1,
		`tollgate_rlqs_unknown_buckets_total`:                                              1,
		`tollgate_rlqs_settle_duration_seconds_count`:                                      2,
		`tollgate_rlqs_recovery_pushes_total`:                                              0,
	}
	got := gather(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for got := gather(t, reg); got["tollgate_rlqs_streams"] != 0 || got["tollgate_rlqs_buckets"] != 0; got = gather(t, reg) {
		if time.Now().After(deadline) {
			t.Fatalf("after the stream closed: streams %v, buckets %v", got["tollgate_rlqs_streams"], got["tollgate_rlqs_buckets"])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReportedRequestsLabels: the requests of a usage report are counted
// under the route and tier of their bucket, names the policy holds: a
// tier the policy does not know counts in the default tier (whose limits
// apply), an unlimited or deny bucket keeps its route when the policy
// limits it, and an id Tollgate did not build, or a route the policy does
// not limit, gives no route and no tier, whatever its entries say: no
// label value comes from the id alone (consumers and client addresses
// never do).
func TestReportedRequestsLabels(t *testing.T) {
	static := func(kind, route, tier string) map[string]string {
		return map[string]string{ir.BucketKeyBucket: ir.BucketStatic(kind, route, tier)}
	}
	anon := static(ir.BucketKindAnonymous, "open", "")
	anon[ir.BucketKeyClientIP] = "192.0.2.7"
	stranger := consumerBucket("tiny")
	stranger[ir.BucketKeyConsumer] = "mallory"
	reports := []struct {
		id              map[string]string
		allowed, denied uint64
	}{
		{consumerBucket("tiny"), 3, 2},
		{stranger, 1, 4},               // same route and tier, another consumer: same series
		{consumerBucket("gold"), 5, 0}, // unknown tier: the default tier
		{consumerBucket("ent"), 7, 0},  // unlimited tier
		{anon, 6, 1},                   // anonymous: the route, no tier
		{static(ir.BucketKindDeny, "api", ""), 0, 8},
		{static(ir.BucketKindUnlimited, "api", ""), 9, 0},
		{static(ir.BucketKindDeny, "client-chosen", ""), 0, 10}, // a route the policy does not limit
		{map[string]string{"route": "client-chosen", "tier": "gold", "name": "x"}, 11, 12}, // not Tollgate's
		{map[string]string{ir.BucketKeyBucket: "consumer/gold/client-chosen", ir.BucketKeyConsumer: "x"}, 13, 0},
	}
	want := map[string]float64{
		`outcome="allowed",route="api",tier="tiny"`: 3 + 1 + 5,
		`outcome="denied",route="api",tier="tiny"`:  2 + 4,
		`outcome="allowed",route="api",tier="ent"`:  7,
		`outcome="denied",route="api",tier="ent"`:   0,
		`outcome="allowed",route="open",tier=""`:    6,
		`outcome="denied",route="open",tier=""`:     1,
		`outcome="allowed",route="api",tier=""`:     9,
		`outcome="denied",route="api",tier=""`:      8,
		`outcome="allowed",route="",tier=""`:        11 + 13,
		`outcome="denied",route="",tier=""`:         10 + 12,
	}
	reg := prometheus.NewRegistry()
	s := New(Options{Account: NewMemoryAccount(time.Now), Metrics: NewMetrics(reg)})
	if _, err := s.Swap(testConfig(ir.FailOpen)); err != nil {
		t.Fatal(err)
	}
	st := dial(t, s)
	report := &rlqsv3.RateLimitQuotaUsageReports{Domain: ir.RateLimitQuotaDomain}
	for _, r := range reports {
		report.BucketQuotaUsages = append(report.BucketQuotaUsages, usage(r.id, r.allowed, r.denied).GetBucketQuotaUsages()...)
	}
	if err := st.Send(report); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil { // answered after every bucket was counted
		t.Fatal(err)
	}
	got := map[string]float64{}
	for k, v := range gather(t, reg) {
		if labels, ok := strings.CutPrefix(k, "tollgate_rlqs_reported_requests_total{"); ok {
			got[strings.TrimSuffix(labels, "}")] = v
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("tollgate_rlqs_reported_requests_total series:\n got %v\nwant %v", got, want)
	}
}

// switchAccount settles with ok until fail is set.
type switchAccount struct {
	ok   Account
	fail bool
}

func (a *switchAccount) Settle(ctx context.Context, s Settlement) ([]KeyState, error) {
	if a.fail {
		return nil, context.DeadlineExceeded
	}
	return a.ok.Settle(ctx, s)
}

// gather returns reg's samples by name and labels (name{k="v",…}); a
// histogram gives its _count.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}
