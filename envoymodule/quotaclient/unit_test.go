package quotaclient

import (
	"fmt"
	"testing"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate/tollgate/extauthz/envoymod"
)

func TestElapsed(t *testing.T) {
	tests := []struct {
		d        time.Duration
		reported bool
		want     time.Duration
	}{
		{0, false, 0},                                    // a bucket just built
		{400 * time.Millisecond, false, 0},               // still just built
		{200 * time.Millisecond, true, time.Second},      // reported before: never 0
		{4999 * time.Millisecond, true, 5 * time.Second}, // a tick a little early
		{5400 * time.Millisecond, true, 5 * time.Second},
		{15600 * time.Millisecond, false, 16 * time.Second}, // first seen during an outage
	}
	for _, tt := range tests {
		if got := elapsed(tt.d, tt.reported); got != tt.want {
			t.Errorf("elapsed(%v, %v) = %v, want %v", tt.d, tt.reported, got, tt.want)
		}
	}
}

func strategy(s *typev3.RateLimitStrategy) *rlqsv3.RateLimitQuotaResponse_BucketAction_QuotaAssignmentAction {
	return &rlqsv3.RateLimitQuotaResponse_BucketAction_QuotaAssignmentAction{
		AssignmentTimeToLive: durationpb.New(12 * time.Second), RateLimitStrategy: s}
}

func TestAssignmentFromAction(t *testing.T) {
	id := consumer("alice")
	tb := func(b *typev3.TokenBucket) *typev3.RateLimitStrategy {
		return &typev3.RateLimitStrategy{Strategy: &typev3.RateLimitStrategy_TokenBucket{TokenBucket: b}}
	}
	blanket := func(r typev3.RateLimitStrategy_BlanketRule) *typev3.RateLimitStrategy {
		return &typev3.RateLimitStrategy{Strategy: &typev3.RateLimitStrategy_BlanketRule_{BlanketRule: r}}
	}
	tests := []struct {
		name string
		qa   *rlqsv3.RateLimitQuotaResponse_BucketAction_QuotaAssignmentAction
		want Assignment
		err  bool
	}{
		{name: "token bucket", qa: strategy(tb(&typev3.TokenBucket{MaxTokens: 7, TokensPerFill: wrapperspb.UInt32(10), FillInterval: durationpb.New(time.Minute)})),
			want: Assignment{ID: id, Kind: TokenBucket, MaxTokens: 7, TokensPerFill: 10, FillInterval: time.Minute, TTL: 12 * time.Second}},
		{name: "tokens per fill unset is 1", qa: strategy(tb(&typev3.TokenBucket{MaxTokens: 3, FillInterval: durationpb.New(time.Second)})),
			want: Assignment{ID: id, Kind: TokenBucket, MaxTokens: 3, TokensPerFill: 1, FillInterval: time.Second, TTL: 12 * time.Second}},
		{name: "allow all", qa: strategy(blanket(typev3.RateLimitStrategy_ALLOW_ALL)), want: Assignment{ID: id, Kind: AllowAll, TTL: 12 * time.Second}},
		{name: "deny all", qa: strategy(blanket(typev3.RateLimitStrategy_DENY_ALL)), want: Assignment{ID: id, Kind: DenyAll, TTL: 12 * time.Second}},
		{name: "no interval", qa: strategy(tb(&typev3.TokenBucket{MaxTokens: 3})), err: true},
		{name: "requested rate", qa: strategy(&typev3.RateLimitStrategy{Strategy: &typev3.RateLimitStrategy_RequestsPerTimeUnit_{
			RequestsPerTimeUnit: &typev3.RateLimitStrategy_RequestsPerTimeUnit{RequestsPerTimeUnit: 5}}}), err: true},
		{name: "no strategy", qa: strategy(nil), err: true},
		{name: "nothing", qa: nil, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := assignment(id, tt.qa)
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("assignment = %+v, %v; want %+v, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// TestPendingKeeps: counts accumulate until delivered, and a bucket the
// store dropped is kept until its counts are delivered (the bound:
// TestPendingLiveBucketsBeatUndelivered).
func TestPendingKeeps(t *testing.T) {
	p := newPending(3)
	a, b, c := consumer("a"), consumer("b"), consumer("c")
	now := time.Now()
	p.merge([]Usage{{ID: a, Allowed: 1}, {ID: b, Denied: 2}}, now, discard())
	p.merge([]Usage{{ID: a, Allowed: 3}, {ID: c, Allowed: 5}}, now, discard()) // b gone from the store
	if p.dropped != 0 || len(p.m) != 3 || p.m[a].allowed != 4 || p.m[b].denied != 2 || p.m[c].allowed != 5 {
		t.Fatalf("after merges: dropped %d, %v", p.dropped, p.m)
	}
	if got := p.ids(false); len(got) != 3 {
		t.Fatalf("new buckets %v, want a, b and c", got)
	}
	r := p.build("tollgate", p.ids(true), now)
	if len(r.GetBucketQuotaUsages()) != 3 {
		t.Fatalf("report %v", r)
	}
	p.delivered(p.ids(true), now.Add(time.Second))
	if len(p.m) != 2 || p.m[a] == nil || p.m[a].allowed != 0 || !p.m[a].reported || p.m[b] != nil {
		t.Fatalf("after delivery: %v; want a and c, reset", p.m)
	}
	if got := p.ids(false); len(got) != 0 {
		t.Fatalf("new buckets after delivery: %v", got)
	}
}

func TestChunks(t *testing.T) {
	ids := make([]BucketID, 5)
	if got := chunks(ids, 2); len(got) != 3 || len(got[2]) != 1 {
		t.Errorf("chunks(5, 2) = %v", got)
	}
	if got := chunks(nil, 2); len(got) != 0 {
		t.Errorf("chunks(nil) = %v", got)
	}
}

// TestRegistry: one client per address and domain, shared by every Get;
// the last Release closes it after the linger unless it is got again.
func TestRegistry(t *testing.T) {
	r := NewRegistry(50 * time.Millisecond)
	t.Cleanup(r.Close)
	cfg := envoymod.Quota{Address: "127.0.0.1:1", Domain: "tollgate"}
	store := newFakeStore()
	c1 := r.Get(cfg, store, discard())
	c2 := r.Get(envoymod.Quota{Address: " 127.0.0.1:1 ", Domain: "tollgate", ReportInterval: time.Second}, newFakeStore(), discard())
	other := r.Get(envoymod.Quota{Address: "127.0.0.1:1", Domain: "other"}, store, discard())
	if c1 != c2 || c1 == other {
		t.Fatal("want one client per address and domain")
	}
	own := New(cfg, store, discard())
	own.Close()
	if len(c1.id) != 32 || other.id != c1.id || own.id == c1.id {
		t.Fatalf("client ids %q and %q: want one 32-digit id per registry, another for a Client of its own", c1.id, other.id)
	}
	r.Release(c1)
	r.Release(c2)
	time.Sleep(20 * time.Millisecond)
	if c3 := r.Get(cfg, store, discard()); c3 != c1 {
		t.Fatal("a client got again within the linger must be the same")
	}
	r.Release(c1)
	select {
	case <-c1.done:
	case <-time.After(2 * time.Second):
		t.Fatal("an unheld client was not closed after the linger")
	}
	if c4 := r.Get(cfg, store, discard()); c4 == c1 {
		t.Fatal("a closed client was handed out again")
	}
	select {
	case <-other.done:
		t.Fatal("a held client was closed")
	default:
	}
}

// moduleTableCapacity is the Envoy module's bucket table's bound
// (envoymodule/limit.h TG_LIMITS_CAPACITY): every one of its live buckets
// is in every Drain.
const moduleTableCapacity = 100000

// TestPendingKeepsEveryLiveBucket: a full module table's buckets are all
// kept and reported. A live bucket the Client drops is never reported,
// so never assigned: its consumer passes under the local limits of every
// Envoy (N Envoys, N times the limit), and none of its requests reach the
// account.
func TestPendingKeepsEveryLiveBucket(t *testing.T) {
	p := newPending(MaxPendingBuckets)
	us := make([]Usage, moduleTableCapacity)
	for i := range us {
		us[i] = Usage{ID: consumer(fmt.Sprint("c", i)), Allowed: 1}
	}
	p.merge(us, time.Now(), discard())
	if got := len(p.ids(false)); got != moduleTableCapacity || p.dropped != 0 {
		t.Fatalf("%d of %d live buckets to report, %d requests dropped", got, moduleTableCapacity, p.dropped)
	}
}

// TestPendingLiveBucketsBeatUndelivered: at the bound, a new live bucket
// takes the place of a bucket the store no longer has (whose undelivered
// counts are dropped, counted): losing one report of a gone bucket costs
// less than never reporting (nor assigning) a live one.
func TestPendingLiveBucketsBeatUndelivered(t *testing.T) {
	p := newPending(2)
	a, b, c := consumer("a"), consumer("b"), consumer("c")
	now := time.Now()
	p.merge([]Usage{{ID: a, Allowed: 1}, {ID: b, Denied: 2}}, now, discard())
	p.merge([]Usage{{ID: a, Allowed: 3}, {ID: c, Allowed: 5}}, now, discard()) // b gone from the store
	if p.dropped != 2 || len(p.m) != 2 || p.m[a] == nil || p.m[a].allowed != 4 || p.m[c] == nil || p.m[c].allowed != 5 {
		t.Fatalf("after merges: dropped %d, %v; want a and c kept, b's 2 dropped", p.dropped, p.m)
	}
	p.merge([]Usage{{ID: a}, {ID: b, Allowed: 7}, {ID: c}}, now, discard()) // three live: one over the bound
	if p.dropped != 9 || len(p.m) != 2 {
		t.Fatalf("three live buckets at a bound of 2: dropped %d, %v", p.dropped, p.m)
	}
}
