package quota

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	"google.golang.org/grpc"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/policy/ir"
)

// TestRebalanceANewcomer: when a consumer's bucket is first reported by a
// second Envoy while the first holds what the limit has left, the rate is
// split at once: the first is pushed its bucket at the same size (it keeps
// the tokens it has, which it may have spent without reporting yet) with
// half the rate, and the second is assigned again with the other half
// (and, holding nothing, a newcomer's bucket). Before, the second was held
// to its floor share (0.05 of the rate) until the first reported again,
// up to 5 s later. Over the minute the two can admit at most 9 + 1 + 1
// beyond the first request's refill: the bound, not the 14 that freeing
// the first's tokens allowed (review).
func TestRebalanceANewcomer(t *testing.T) {
	s := New(Options{Account: NewMemoryAccount(time.Now)})
	if _, err := s.Swap(testConfig(ir.FailOpen)); err != nil {
		t.Fatal(err)
	}
	checkNewcomerRebalanced(t, dial(t, s), dial(t, s))
}

// checkNewcomerRebalanced runs the rebalancing of TestRebalanceANewcomer
// on streams a (the first Envoy) and b (the second): the first's answer
// holds the 9 left; then the second's own answer (its floor share refills
// less than a token a minute: DENY_ALL), the first's bucket at its size
// with half the rate, the second's newcomer bucket (one token) with the
// other half.
func checkNewcomerRebalanced(t *testing.T, a, b grpc.BidiStreamingClient[rlqsv3.RateLimitQuotaUsageReports, rlqsv3.RateLimitQuotaResponse]) {
	t.Helper()
	if got := firstThenSecond(t, a, b, "tiny"); got != "ALLOW_ALL; bucket 9, 10 per 1m0s" {
		t.Fatalf("first Envoy: %s, want the 9 left", got)
	}
	for _, step := range []struct {
		name string
		recv func() (*rlqsv3.RateLimitQuotaResponse, error)
		want string
	}{
		{"second's answer", b.Recv, "DENY_ALL"},
		{"first, rate halved", a.Recv, "bucket 9, 5 per 1m0s"},
		{"second, rebalanced", b.Recv, "bucket 1, 5 per 1m0s"},
	} {
		resp, err := within(step.recv, 2*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := describeActions(resp.GetBucketAction()); got != step.want {
			t.Errorf("%s: %s, want %s", step.name, got, step.want)
		}
	}
}

// within returns recv's answer, or an error when none comes within d.
func within(recv func() (*rlqsv3.RateLimitQuotaResponse, error), d time.Duration) (*rlqsv3.RateLimitQuotaResponse, error) {
	type answer struct {
		resp *rlqsv3.RateLimitQuotaResponse
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		resp, err := recv()
		ch <- answer{resp, err}
	}()
	select {
	case a := <-ch:
		return a.resp, a.err
	case <-time.After(d):
		return nil, fmt.Errorf("no response within %v", d)
	}
}

// TestRebalanceAcrossServers: the same with the two Envoys on two servers
// sharing a Redis account: the newcomer's server asks over pub/sub, the
// holder's server rebalances its Envoy's bucket and answers, and the
// newcomer is assigned again.
func TestRebalanceAcrossServers(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	client := redis.NewClient(&redis.Options{Addr: harness.StartRedis(t), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var servers [2]*Server
	for i := range servers {
		acc := NewRedisAccount(client, "", time.Second)
		servers[i] = New(Options{Account: acc, Notifier: acc})
		if _, err := servers[i].Swap(testConfig(ir.FailOpen)); err != nil {
			t.Fatal(err)
		}
		go servers[i].Run(ctx)
	}
	waitSubscribers(t, client, NewRedisAccount(client, "", 0).rebalanceChannel(), 2)
	checkNewcomerRebalanced(t, dial(t, servers[0]), dial(t, servers[1]))
}

// waitSubscribers waits until channel has n subscribers.
func waitSubscribers(t *testing.T, c *redis.Client, channel string, n int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m, err := c.PubSubNumSub(context.Background(), channel).Result(); err == nil && m[channel] >= n {
			return
		}
	}
	t.Fatalf("fewer than %d subscribers on %s after 5 s", n, channel)
}

// wideConfig is testConfig with a tier "wide" of 1,000 a minute, whose
// floor share (0.05 of it) refills more than a token per fill interval.
func wideConfig() *ir.Config {
	cfg := testConfig(ir.FailOpen)
	cfg.RateLimits.Tiers = append(cfg.RateLimits.Tiers,
		ir.Tier{Name: "wide", Limits: []ir.Limit{{Requests: 1000, Per: time.Minute, Unit: "minute"}}})
	return cfg
}

// TestRebalancedNewcomerIsRescaled: a newcomer whose first answer was a
// token bucket is assigned again with that bucket alone (no ALLOW_ALL), so
// that Envoy rescales it at its fill ratio: requests it admitted from the
// first bucket are not admitted again. Before, ALLOW_ALL then the bucket
// made Envoy build it full, and the account (which counts the newcomer as
// holding only the new grant) never saw them.
func TestRebalancedNewcomerIsRescaled(t *testing.T) {
	s := New(Options{Account: NewMemoryAccount(time.Now)})
	if _, err := s.Swap(wideConfig()); err != nil {
		t.Fatal(err)
	}
	a, b := dial(t, s), dial(t, s)
	firstThenSecond(t, a, b, "wide")
	first, err := within(b.Recv, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := describeActions(first.GetBucketAction()); got != "bucket 1, 50 per 1m0s" {
		t.Fatalf("newcomer's first answer: %s, want its floor share's bucket", got)
	}
	again, err := within(b.Recv, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := describeActions(again.GetBucketAction())
	if strings.HasPrefix(got, "ALLOW_ALL") || !strings.HasPrefix(got, "bucket ") {
		t.Errorf("newcomer rebalanced: %s, want its token bucket alone (rescaled, not built full)", got)
	}
}

// firstThenSecond reports alice's bucket of tier on stream a, waits for
// its answer, then reports it on stream b (a newcomer) and returns the
// first answer, described.
func firstThenSecond(t *testing.T, a, b grpc.BidiStreamingClient[rlqsv3.RateLimitQuotaUsageReports, rlqsv3.RateLimitQuotaResponse], tier string) string {
	t.Helper()
	if err := a.Send(usage(consumerBucket(tier), 1, 0)); err != nil {
		t.Fatal(err)
	}
	first, err := within(a.Recv, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Send(usage(consumerBucket(tier), 1, 0)); err != nil {
		t.Fatal(err)
	}
	return describeActions(first.GetBucketAction())
}

// recordingNotifier records what is published (and delivers nothing).
type recordingNotifier struct {
	mu   sync.Mutex
	msgs []string
}

func (n *recordingNotifier) Publish(_ context.Context, msg string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.msgs = append(n.msgs, msg)
	return nil
}

func (n *recordingNotifier) Subscribe(ctx context.Context, _ func(string)) { <-ctx.Done() }

func (n *recordingNotifier) published() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

// TestLocalRebalanceAsksNoOtherServer: a newcomer that this server's own
// rebalancing gave its share is not squeezed any more, so no other server
// is asked to shrink holders (before, the first settlement's verdict
// stood: a message per such bucket, and another server's answer rebuilt
// the bucket again).
func TestLocalRebalanceAsksNoOtherServer(t *testing.T) {
	n := &recordingNotifier{}
	s := New(Options{Account: NewMemoryAccount(time.Now), Notifier: n})
	if _, err := s.Swap(wideConfig()); err != nil {
		t.Fatal(err)
	}
	a, b := dial(t, s), dial(t, s)
	firstThenSecond(t, a, b, "wide")
	for range 2 { // its own answer, then the rebalanced one
		if _, err := within(b.Recv, 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// The report's handling ends with announce: a third report's answer
	// comes after it.
	if err := b.Send(usage(consumerBucket("wide"), 0, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := within(b.Recv, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := n.published(); len(got) != 0 {
		t.Errorf("published %q, want nothing (the newcomer was rebalanced here)", got)
	}
}

// manyConsumers is a report of n new consumer buckets of tier wide.
func manyConsumers(n int) *rlqsv3.RateLimitQuotaUsageReports {
	r := &rlqsv3.RateLimitQuotaUsageReports{Domain: ir.RateLimitQuotaDomain}
	for i := range n {
		id := consumerBucket("wide")
		id[ir.BucketKeyConsumer] = fmt.Sprintf("c%d", i)
		r.BucketQuotaUsages = append(r.BucketQuotaUsages, usage(id, 1, 0).GetBucketQuotaUsages()...)
	}
	return r
}

// TestSqueezedReportIsOneMessage: a report of many new buckets all held on
// another server asks that server once (one message naming them all), not
// once per bucket (a round trip each, in the stream's handler, and as many
// settlements and answers on every other server).
func TestSqueezedReportIsOneMessage(t *testing.T) {
	acc := NewMemoryAccount(time.Now)
	holder, n := New(Options{Account: acc}), &recordingNotifier{}
	newcomer := New(Options{Account: acc, Notifier: n})
	for _, s := range []*Server{holder, newcomer} {
		if _, err := s.Swap(wideConfig()); err != nil {
			t.Fatal(err)
		}
	}
	const buckets = 300
	a, b := dial(t, holder), dial(t, newcomer)
	if err := a.Send(manyConsumers(buckets)); err != nil {
		t.Fatal(err)
	}
	if _, err := within(a.Recv, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(manyConsumers(buckets)); err != nil {
		t.Fatal(err)
	}
	if _, err := within(b.Recv, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(&rlqsv3.RateLimitQuotaUsageReports{Domain: ir.RateLimitQuotaDomain,
		BucketQuotaUsages: manyConsumers(1).GetBucketQuotaUsages()}); err != nil {
		t.Fatal(err)
	}
	if _, err := within(b.Recv, 2*time.Second); err != nil { // after the first report's announce
		t.Fatal(err)
	}
	msgs := n.published()
	if len(msgs) != 1 {
		t.Fatalf("%d messages published, want 1", len(msgs))
	}
	if _, _, keys, ok := parseMessage(msgs[0]); !ok || len(keys) != buckets {
		t.Errorf("the message names %d buckets (ok %v), want %d", len(keys), ok, buckets)
	}
}

// TestPushesKeepSettlementOrder: a holder's answer to its own report and a
// newcomer's shrinking of it reach its Envoy in the order they were
// settled. Before, each was settled under the stream's lock and sent
// after it, so the shrink (settled second) could overtake the answer: the
// Envoy ended with the answer's full bucket (ALLOW_ALL first) while the
// account counted it as holding the shrunk one.
func TestPushesKeepSettlementOrder(t *testing.T) {
	s := New(Options{Account: NewMemoryAccount(time.Now)})
	if _, err := s.Swap(wideConfig()); err != nil {
		t.Fatal(err)
	}
	a, b := dial(t, s), dial(t, s)
	if err := a.Send(usage(consumerBucket("wide"), 1, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := within(a.Recv, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	// Hold the holder's next answer just before it is sent, until the
	// newcomer's report has been handled (or 300 ms: its handler may be
	// waiting for that answer to go out).
	answering, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.sendHook = func(_ *stream, resp *rlqsv3.RateLimitQuotaResponse) {
		if strings.HasPrefix(describeActions(resp.GetBucketAction()), "ALLOW_ALL; bucket 99") {
			once.Do(func() {
				close(answering)
				select {
				case <-release:
				case <-time.After(300 * time.Millisecond):
				}
			})
		}
	}
	if err := a.Send(usage(consumerBucket("wide"), 1, 0)); err != nil {
		t.Fatal(err)
	}
	<-answering
	if err := b.Send(usage(consumerBucket("wide"), 1, 0)); err != nil {
		t.Fatal(err)
	}
	for range 2 { // its own answer, its rebalanced one
		if _, err := within(b.Recv, 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	var got []string
	for range 2 { // its answer, its shrink
		resp, err := within(a.Recv, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, describeActions(resp.GetBucketAction()))
	}
	if strings.HasPrefix(got[1], "ALLOW_ALL") {
		t.Errorf("holder got %q: its own answer last, built full over the shrink settled after it", got)
	}
}
