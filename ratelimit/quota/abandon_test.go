package quota

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit/counter"
)

// rlqsStream is a client stream of the RLQS service.
type rlqsStream = grpc.BidiStreamingClient[rlqsv3.RateLimitQuotaUsageReports, rlqsv3.RateLimitQuotaResponse]

// tick is a report of bucket id as Envoy sends it on its 5 s timer.
func tick(id map[string]string, allowed, denied uint64) *rlqsv3.RateLimitQuotaUsageReports {
	r := usage(id, allowed, denied)
	r.BucketQuotaUsages[0].TimeElapsed = durationpb.New(5 * time.Second)
	return r
}

// inbox receives st's responses into a channel until the stream ends.
func inbox(st rlqsStream) <-chan *rlqsv3.RateLimitQuotaResponse {
	ch := make(chan *rlqsv3.RateLimitQuotaResponse, 64)
	go func() {
		defer close(ch)
		for {
			resp, err := st.Recv()
			if err != nil {
				return
			}
			ch <- resp
		}
	}()
	return ch
}

// exchange sends r on st and returns the next response on in, described.
func exchange(t *testing.T, st rlqsStream, in <-chan *rlqsv3.RateLimitQuotaResponse, r *rlqsv3.RateLimitQuotaUsageReports) string {
	t.Helper()
	if err := st.Send(r); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-in:
		return describeActions(resp.GetBucketAction())
	case <-time.After(2 * time.Second):
		t.Fatal("no answer within 2 s")
		return ""
	}
}

// drain discards what in receives within d.
// abandonStream starts a server on mk's account (a fake clock) that
// abandons a bucket at its first idle report, and opens a stream to it.
func abandonStream(t *testing.T, mk func(*fakeClock) Account) (*fakeClock, Account, rlqsStream, <-chan *rlqsv3.RateLimitQuotaResponse) {
	t.Helper()
	clock := &fakeClock{now: time.Now()}
	acct := mk(clock)
	s := New(Options{Account: acct, AbandonAfter: 1})
	if _, err := s.Swap(testConfig(ir.FailOpen)); err != nil {
		t.Fatal(err)
	}
	st := dial(t, s)
	return clock, acct, st, inbox(st)
}

func drain(in <-chan *rlqsv3.RateLimitQuotaResponse, d time.Duration) {
	for {
		select {
		case <-in:
		case <-time.After(d):
			return
		}
	}
}

// TestServerAbandonsIdleBuckets: a bucket reported idle (nothing allowed
// or denied over a tick) AbandonAfter times in a row is answered with an
// abandon action alone, counted in tollgate_rlqs_abandoned_buckets_total
// and taken off tollgate_rlqs_buckets; a report with requests starts the
// count again, a report covering no time does not count, a negative
// AbandonAfter never abandons, and a bucket the account could not settle
// is kept. The account's clock moves a minute before each report, so the
// limit has refilled (TestAbandonWaitsForTheRefill: until then it is kept).
func TestServerAbandonsIdleBuckets(t *testing.T) {
	type step struct {
		allowed, denied uint64
		elapsed         bool
		want            string // prefix of the described answer
	}
	idle, busy := step{elapsed: true, want: "ALLOW_ALL; bucket"}, step{allowed: 1, elapsed: true, want: "ALLOW_ALL; bucket"}
	gone := step{elapsed: true, want: "ABANDON"}
	repeat := func(s step, n int) []step {
		out := make([]step, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	tests := []struct {
		name      string
		after     int
		fail      bool
		steps     []step
		abandoned float64
	}{
		{"default: the 6th idle report", 0, false, append(repeat(idle, DefaultAbandonAfter-1), gone), 1},
		{"after 1", 1, false, []step{gone}, 1},
		{"requests start the count again", 2, false, []step{idle, busy, idle, {denied: 3, elapsed: true, want: "ALLOW_ALL; bucket"}, idle, gone}, 1},
		{"a report covering no time is not idle", 1, false, []step{{want: "ALLOW_ALL; bucket"}, gone}, 1},
		{"never", -1, false, repeat(idle, 20), 0},
		{"failure mode: kept", 2, true, repeat(step{elapsed: true, want: "DENY_ALL"}, 4), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			clock := &fakeClock{now: time.Now()}
			acct := &switchAccount{ok: NewMemoryAccount(clock.Now)}
			s := New(Options{Account: acct, Metrics: NewMetrics(reg), AbandonAfter: tc.after})
			if _, err := s.Swap(testConfig(ir.FailClosed)); err != nil {
				t.Fatal(err)
			}
			st := dial(t, s)
			in := inbox(st)
			id := consumerBucket("tiny")
			if got := exchange(t, st, in, usage(id, 1, 0)); !strings.HasPrefix(got, "ALLOW_ALL; bucket") {
				t.Fatalf("first report: %s", got)
			}
			acct.fail = tc.fail
			for i, sp := range tc.steps {
				clock.Advance(time.Minute) // the limit refills between reports
				r := usage(id, sp.allowed, sp.denied)
				if sp.elapsed {
					r = tick(id, sp.allowed, sp.denied)
				}
				if got := exchange(t, st, in, r); !strings.HasPrefix(got, sp.want) {
					t.Fatalf("report %d: %s, want %s…", i+1, got, sp.want)
				}
			}
			got := gather(t, reg)
			if got["tollgate_rlqs_abandoned_buckets_total"] != tc.abandoned || got["tollgate_rlqs_buckets"] != 1-tc.abandoned {
				t.Fatalf("abandoned %v, buckets %v; want %v and %v", got["tollgate_rlqs_abandoned_buckets_total"],
					got["tollgate_rlqs_buckets"], tc.abandoned, 1-tc.abandoned)
			}
			if got[`tollgate_rlqs_assignments_total{strategy="allow_all"}`] != float64(len(tc.steps)+1)-tc.abandoned && !tc.fail {
				t.Errorf("allow_all assignments %v: an abandon action counted as an assignment?", got[`tollgate_rlqs_assignments_total{strategy="allow_all"}`])
			}
		})
	}
}

// TestAbandonedConsumerComesBackWithItsAccount: the account outlives an
// abandoned bucket. A consumer that used 4 of 10 a minute, then was idle
// until her limit refilled and abandoned, comes back as a new bucket and
// is assigned from the account like any newcomer (its first report: one
// request: 9 left); the other buckets of the report are answered as usual,
// after the abandon action.
func TestAbandonedConsumerComesBackWithItsAccount(t *testing.T) {
	for name, mk := range accounts(t) {
		t.Run(name, func(t *testing.T) {
			clock, acct, st, in := abandonStream(t, mk)
			alice, bob := consumerBucket("tiny"), consumerBucket("tiny")
			bob[ir.BucketKeyConsumer] = "bob"
			if got := exchange(t, st, in, usage(alice, 4, 0)); got != "ALLOW_ALL; bucket 6, 10 per 1m0s" {
				t.Fatalf("first report: %s", got)
			}
			refill(t, acct, clock, time.Minute)
			both := tick(alice, 0, 0)
			both.BucketQuotaUsages = append(both.BucketQuotaUsages, usage(bob, 1, 0).BucketQuotaUsages...)
			if got := exchange(t, st, in, both); got != "ABANDON" {
				t.Fatalf("alice idle, bob new: %s, want alice's abandon first, alone", got)
			}
			if got := describeActions((<-in).GetBucketAction()); got != "ALLOW_ALL; bucket 9, 10 per 1m0s" {
				t.Fatalf("then: %s, want bob's assignment", got)
			}
			if got := exchange(t, st, in, usage(alice, 1, 0)); got != "ALLOW_ALL; bucket 9, 10 per 1m0s" {
				t.Fatalf("alice back: %s, want what her limit has left (9)", got)
			}
		})
	}
}

// TestAbandonWaitsForTheRefill: an idle bucket some limit of which has not
// refilled completely in the account (the consumer used 4 of 10 a minute)
// is not abandoned, however often it is reported idle: its Envoy's
// backstops hold the full limit, and a rebuilt bucket passes under
// ALLOW_ALL, held by them alone, until its first assignment, so every
// return could admit a backstop's worth beyond the account (e2e
// TestQuotaAbandonWaitsForAFullAccount: 12 against 6 an hour). Once the
// limit has refilled, its next idle report abandons it. Before, the first
// idle report abandoned it.
func TestAbandonWaitsForTheRefill(t *testing.T) {
	for name, mk := range accounts(t) {
		t.Run(name, func(t *testing.T) {
			clock, acct, st, in := abandonStream(t, mk)
			id := consumerBucket("tiny")
			exchange(t, st, in, usage(id, 4, 0))
			for i := range 3 {
				if got := exchange(t, st, in, tick(id, 0, 0)); !strings.HasPrefix(got, "ALLOW_ALL; bucket 6,") {
					t.Fatalf("idle report %d, 4 of 10 used: %s, want its assignment (6 left)", i+1, got)
				}
			}
			refill(t, acct, clock, time.Minute)
			if got := exchange(t, st, in, tick(id, 0, 0)); got != "ABANDON" {
				t.Fatalf("idle report after the refill: %s, want ABANDON", got)
			}
		})
	}
}

// TestAbandonIsSentBeforeTheReportIsSettled: the requests Envoy admits from
// a bucket between building its idle report and applying the abandon
// action are never reported, so the action goes out as soon as the bucket
// itself is settled, in a response of its own, before the report's other
// buckets are settled (a report of 1,000 buckets takes 60–90 ms) and
// before the participant is released. Before, it came in the one response
// after every settlement of the report and the release.
func TestAbandonIsSentBeforeTheReportIsSettled(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	var mu sync.Mutex
	var log []string
	note := func(e string) { mu.Lock(); log = append(log, e); mu.Unlock() }
	acct := &noteAccount{Account: NewMemoryAccount(clock.Now), note: note}
	s := New(Options{Account: acct, AbandonAfter: 1})
	s.sendHook = func(_ *stream, resp *rlqsv3.RateLimitQuotaResponse) {
		note("send " + describeActions(resp.GetBucketAction()))
	}
	if _, err := s.Swap(testConfig(ir.FailOpen)); err != nil {
		t.Fatal(err)
	}
	st := dial(t, s)
	in := inbox(st)
	alice, bob := consumerBucket("tiny"), consumerBucket("tiny")
	bob[ir.BucketKeyConsumer] = "bob"
	exchange(t, st, in, usage(alice, 1, 0))
	refill(t, acct, clock, time.Minute)
	mu.Lock()
	log = nil
	mu.Unlock()
	both := tick(alice, 0, 0)
	both.BucketQuotaUsages = append(both.BucketQuotaUsages, usage(bob, 1, 0).BucketQuotaUsages...)
	if got := exchange(t, st, in, both); got != "ABANDON" {
		t.Fatalf("first answer: %s, want the abandon action alone", got)
	}
	select {
	case <-in:
	case <-time.After(2 * time.Second):
		t.Fatal("no second answer (bob's) within 2 s")
	}
	mu.Lock()
	defer mu.Unlock()
	want := "settle alice; send ABANDON; release alice; settle bob; send ALLOW_ALL; bucket 9, 10 per 1m0s"
	if got := strings.Join(log, "; "); got != want {
		t.Fatalf("order: %s\nwant:  %s", got, want)
	}
}

// noteAccount notes each settlement ("settle" or "release", and the
// consumer) before passing it on.
type noteAccount struct {
	Account
	note func(string)
}

func (a *noteAccount) Settle(ctx context.Context, st Settlement) ([]KeyState, error) {
	kind := "settle "
	if st.Release {
		kind = "release "
	}
	a.note(kind + st.Participant[strings.LastIndex(st.Participant, "=")+1:strings.LastIndex(st.Participant, ";")])
	return a.Account.Settle(ctx, st)
}

// refill makes every limit of acct whole again: the memory account's clock
// moves on by d (long enough for the limits, short enough for the holds
// that matter); Redis (whose clock is its own) loses its TAT keys.
func refill(t *testing.T, acct Account, clock *fakeClock, d time.Duration) {
	t.Helper()
	r, ok := acct.(*RedisAccount)
	if !ok {
		clock.Advance(d)
		return
	}
	ctx := context.Background()
	keys, err := r.client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasSuffix(k, sharesSuffix) {
			if err := r.client.Del(ctx, k).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestAbandonReleasesTheParticipant: when one Envoy's bucket of a
// consumer is abandoned, its participant leaves the account's shares at
// once, so the consumer's other Envoy gets the whole rate at its next
// report (1000 a minute); kept, the idle participant would hold its share
// for its hold (15 s) and the other get 0.95 of the rate.
func TestAbandonReleasesTheParticipant(t *testing.T) {
	for name, mk := range accounts(t) {
		for _, tc := range []struct {
			after int
			want  string
		}{{1, "1000 per 1m0s"}, {-1, "950 per 1m0s"}} {
			t.Run(name+"/"+map[int]string{1: "abandoned", -1: "kept"}[tc.after], func(t *testing.T) {
				clock := &fakeClock{now: time.Now()}
				acct := mk(clock)
				s := New(Options{Account: acct, AbandonAfter: tc.after})
				if _, err := s.Swap(wideConfig()); err != nil {
					t.Fatal(err)
				}
				a, b := dial(t, s), dial(t, s)
				ina, inb := inbox(a), inbox(b)
				id := consumerBucket("wide")
				exchange(t, a, ina, usage(id, 1, 0))
				exchange(t, b, inb, usage(id, 1, 0))
				drain(ina, 200*time.Millisecond) // the rebalancing pushes
				drain(inb, 50*time.Millisecond)
				refill(t, acct, clock, time.Second)
				if got := exchange(t, b, inb, tick(id, 0, 0)); (got == "ABANDON") != (tc.after == 1) {
					t.Fatalf("b idle: %s", got)
				}
				got := exchange(t, a, ina, tick(id, 5, 0))
				// The release follows the abandon action b got (it is sent
				// first): under load a's report can be settled before it.
				for end := time.Now().Add(2 * time.Second); tc.after == 1 && !strings.HasSuffix(got, tc.want) && time.Now().Before(end); {
					time.Sleep(20 * time.Millisecond)
					got = exchange(t, a, ina, tick(id, 5, 0))
				}
				if !strings.HasSuffix(got, tc.want) {
					t.Fatalf("a's next report: %s, want a rate of %s", got, tc.want)
				}
			})
		}
	}
}

// TestAccountRelease: a Release settlement drops the participant from
// every key's shares and charges nothing (both accounts).
func TestAccountRelease(t *testing.T) {
	for name, mk := range accounts(t) {
		t.Run(name, func(t *testing.T) {
			a := mk(&fakeClock{now: time.Now()})
			ctx := context.Background()
			settle := func(s Settlement) KeyState {
				t.Helper()
				s.Limits, s.Hold = []counter.Limit{minuteLimit}, time.Minute
				st, err := a.Settle(ctx, s)
				if err != nil || len(st) != 1 {
					t.Fatalf("Settle: %v %v", st, err)
				}
				return st[0]
			}
			settle(Settlement{Participant: "A", Used: 10, Demand: 1})
			settle(Settlement{Participant: "B", Used: 0, Demand: 1})
			if r := settle(Settlement{Participant: "B", Release: true}); r.Remaining != 90 || r.Share != 0 || r.Grant != 0 {
				t.Fatalf("release: %+v, want 90 remaining (nothing charged), no share, no grant", r)
			}
			if r := settle(Settlement{Participant: "A", Used: 0, Demand: 1}); r.Share != 1 || r.Remaining != 90 {
				t.Fatalf("A after B left: %+v, want the whole share of the 90 left", r)
			}
		})
	}
}
