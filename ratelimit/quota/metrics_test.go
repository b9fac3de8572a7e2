package quota

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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
		`tollgate_rlqs_assignments_total{strategy="allow_all"}`:    1,
		`tollgate_rlqs_assignments_total{strategy="deny_all"}`:     1,
		`tollgate_rlqs_assignments_total{strategy="token_bucket"}`: 1,
		`tollgate_rlqs_buckets`:                                    3,
		`tollgate_rlqs_failure_mode_total{mode="closed"}`:          1,
		`tollgate_rlqs_reported_requests_total{outcome="allowed"}`: 5,
		`tollgate_rlqs_reported_requests_total{outcome="denied"}`:  2,
		`tollgate_rlqs_reports_total`:                              3,
		`tollgate_rlqs_settle_errors_total`:                        1,
		`tollgate_rlqs_streams`:                                    1,
		`tollgate_rlqs_unknown_buckets_total`:                      1,
		`tollgate_rlqs_settle_duration_seconds_count`:              2,
		`tollgate_rlqs_recovery_pushes_total`:                      0,
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
