package quota

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit"
)

// usedAccount records what each settlement charged.
type usedAccount struct {
	Account
	mu   sync.Mutex
	used []uint64
}

func (a *usedAccount) Settle(ctx context.Context, s Settlement) ([]KeyState, error) {
	a.mu.Lock()
	a.used = append(a.used, s.Used)
	a.mu.Unlock()
	return a.Account.Settle(ctx, s)
}

// TestBackstopChargeAcrossPushesAndStreams: the charge cap follows what the
// Envoy's backstop can really have admitted when the server's model of it
// starts again (a new stream, a new table) or when the backstop itself
// starts again (Envoy 1.40 rebuilds a route's local_ratelimit buckets, full,
// on every route configuration update: e2e TestQuotaBackstopResetByPush).
//   - a bucket first seen in a report covering 5 s (a reconnected Envoy, a
//     restarted server) at 100/s can have admitted 100 + 500, not 100;
//   - a push between two reports (same limits) does not empty the model:
//     the backstop admitted 500 over 5 s at its rate;
//   - each push may give the backstop a fresh burst: 3/minute, 1 charged,
//     then one push: 2 left + 3 fresh = 5; two pushes: 2 + 3 + 3 = 8; a
//     push within a new stream's first report: 3 + 3.
func TestBackstopChargeAcrossPushesAndStreams(t *testing.T) {
	fast := ir.Limit{Requests: 100, Per: time.Second, Unit: "second"}
	type report struct {
		pushes  int // policy pushes before the report
		allowed uint64
		elapsed time.Duration // the report's time_elapsed
	}
	for _, tc := range []struct {
		name    string
		limit   ir.Limit
		reports []report
		want    []uint64
	}{
		{name: "first report of a stream covers 5 s", limit: fast,
			reports: []report{{0, 500, 5 * time.Second}}, want: []uint64{500}},
		{name: "a push between reports at the backstop's rate", limit: fast,
			reports: []report{{0, 1, 0}, {1, 500, 5 * time.Second}}, want: []uint64{1, 500}},
		{name: "one push, one fresh burst", limit: ir.Limit{Requests: 3, Per: time.Minute, Unit: "minute"},
			reports: []report{{0, 1, 0}, {1, 9, 5 * time.Second}}, want: []uint64{1, 5}},
		{name: "two pushes, two fresh bursts", limit: ir.Limit{Requests: 3, Per: time.Minute, Unit: "minute"},
			reports: []report{{0, 1, 0}, {2, 14, 5 * time.Second}}, want: []uint64{1, 8}},
		// A new stream (a reconnected Envoy, a restarted server) whose first
		// report covers a push: the old bucket's burst and a fresh one.
		{name: "a push within a new stream's first report", limit: ir.Limit{Requests: 3, Per: time.Minute, Unit: "minute"},
			reports: []report{{1, 14, 5 * time.Second}}, want: []uint64{6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(ir.FailOpen)
			cfg.RateLimits.Anonymous = []ir.Limit{tc.limit}
			acct := &usedAccount{Account: NewMemoryAccount(time.Now)}
			s := New(Options{Account: acct})
			if _, err := s.Swap(cfg); err != nil {
				t.Fatal(err)
			}
			s.swaps.at = nil // the policy was loaded long before
			st := &stream{id: "e1", buckets: map[string]*bucketState{}}
			id := map[string]string{ir.BucketKeyKind: ir.BucketKindAnonymous, ir.BucketKeyRoute: "open", ir.BucketKeyClientIP: "192.0.2.1"}
			for _, r := range tc.reports {
				for range r.pushes {
					if _, err := s.Swap(cfg); err != nil {
						t.Fatal(err)
					}
				}
				s.answer(context.Background(), st, &rlqsv3.RateLimitQuotaUsageReports{Domain: ir.RateLimitQuotaDomain,
					BucketQuotaUsages: []*rlqsv3.RateLimitQuotaUsageReports_BucketQuotaUsage{{BucketId: &rlqsv3.BucketId{Bucket: id},
						TimeElapsed: durationpb.New(r.elapsed), NumRequestsAllowed: r.allowed}}}, nil)
			}
			if len(acct.used) != len(tc.want) {
				t.Fatalf("settled %v, want %v", acct.used, tc.want)
			}
			for i := range tc.want {
				if acct.used[i] != tc.want[i] {
					t.Fatalf("charged %v, want %v", acct.used, tc.want)
				}
			}
		})
	}
}

// TestBackstopChargeSeveralListeners: an Envoy keeps one route
// configuration per listener of its gateway, each with its own backstop
// buckets, but one RLQS bucket per route and client: a client of both
// listeners of a gateway is admitted the burst on each (e2e
// TestQuotaBackstopTwoListeners: 3 + 3 against 3/minute with Redis down),
// and is charged for both.
func TestBackstopChargeSeveralListeners(t *testing.T) {
	cfg := testConfig(ir.FailOpen)
	cfg.RateLimits.Anonymous = []ir.Limit{{Requests: 3, Per: time.Minute, Unit: "minute"}}
	cfg.Gateways[0].Listeners = []ir.Listener{{Name: "a", Port: 80}, {Name: "b", Port: 8080}}
	acct := &usedAccount{Account: NewMemoryAccount(time.Now)}
	s := New(Options{Account: acct})
	if _, err := s.Swap(cfg); err != nil {
		t.Fatal(err)
	}
	st := &stream{id: "e1", buckets: map[string]*bucketState{}}
	id := map[string]string{ir.BucketKeyKind: ir.BucketKindAnonymous, ir.BucketKeyRoute: "open", ir.BucketKeyClientIP: "192.0.2.1"}
	for _, allowed := range []uint64{1, 9} {
		s.answer(context.Background(), st, &rlqsv3.RateLimitQuotaUsageReports{Domain: ir.RateLimitQuotaDomain,
			BucketQuotaUsages: []*rlqsv3.RateLimitQuotaUsageReports_BucketQuotaUsage{{BucketId: &rlqsv3.BucketId{Bucket: id},
				TimeElapsed: durationpb.New(0), NumRequestsAllowed: allowed}}}, nil)
	}
	if len(acct.used) != 2 || acct.used[0]+acct.used[1] < 6 {
		t.Fatalf("charged %v, want at least 6 in all (3 admitted on each listener)", acct.used)
	}
}

// TestConsumerBucketKeyedByClientIP: on an authenticated route whose extra
// limit is keyed by client IP the translator puts the client address in
// the consumer's bucket id; the extra limit is counted per address (as in
// exact mode), not in one counter that every consumer and address of the
// route shares ("ip:-").
func TestConsumerBucketKeyedByClientIP(t *testing.T) {
	cfg := testConfig(ir.FailOpen)
	cfg.Gateways[0].VirtualHosts[0].Routes[0].RateLimit = ir.RouteRateLimit{Enabled: true, Consumer: true,
		Extra: []ir.Limit{{Requests: 2, Per: time.Minute, Unit: "minute"}}, By: []string{"clientIP"}}
	id := consumerBucket("tiny")
	id[ir.BucketKeyClientIP] = "192.0.2.7"
	b, ok := parseBucket(ratelimit.NewTable(cfg), id)
	if !ok || len(b.limits) != 2 {
		t.Fatalf("parsed %+v, %v", b, ok)
	}
	if key := b.limits[1].Key; !strings.Contains(key, "ip:192.0.2.7") {
		t.Fatalf("extra limit key %q, want it keyed by the client address", key)
	}
}

// TestBackstopChargeReportRacingASwap: a report that saw a swap's push
// count but still the old table must not leave the bucket's bound on the
// old limits: after the limit rose from 3 to 100 a minute, a report of
// 100 admitted by the new backstop is charged 100.
func TestBackstopChargeReportRacingASwap(t *testing.T) {
	cfg := func(n uint64) *ratelimit.Table {
		c := testConfig(ir.FailOpen)
		c.RateLimits.Anonymous = []ir.Limit{{Requests: n, Per: time.Minute, Unit: "minute"}}
		return ratelimit.NewTable(c)
	}
	before, after := cfg(3), cfg(100)
	bs := &bucketState{id: &rlqsv3.BucketId{Bucket: map[string]string{ir.BucketKeyKind: ir.BucketKindAnonymous,
		ir.BucketKeyRoute: "open", ir.BucketKeyClientIP: "192.0.2.1"}}}
	now := time.Unix(1_700_000_000, 0)
	var swaps swapLog
	var got []uint64
	for _, r := range []struct {
		t       *ratelimit.Table
		pushes  uint64
		allowed uint64
		at      time.Duration
	}{{before, 1, 1, 0}, {before, 2, 1, 5 * time.Second}, {after, 2, 100, 10 * time.Second}} {
		got = append(got, bs.chargeable(r.t, r.pushes, &swaps, r.allowed, 5*time.Second, now.Add(r.at)))
	}
	if got[2] != 100 {
		t.Fatalf("charged %v, want the last report's 100", got)
	}
}
