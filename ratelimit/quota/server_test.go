package quota

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tollgate/tollgate/policy/ir"
)

// testConfig has a tier "tiny" (10/minute, default), an unlimited tier,
// anonymous limits and two rate-limited routes.
func testConfig(failureMode string) *ir.Config {
	minute := ir.Limit{Requests: 10, Per: time.Minute, Unit: "minute"}
	return &ir.Config{
		RateLimits: ir.RateLimits{Mode: ir.RateLimitQuota, DefaultTier: "tiny", FailureMode: failureMode,
			Tiers:     []ir.Tier{{Name: "ent", Unlimited: true}, {Name: "tiny", Limits: []ir.Limit{minute}}},
			Anonymous: []ir.Limit{{Requests: 5, Per: time.Minute, Unit: "minute"}}},
		Gateways: []ir.Gateway{{Name: "g", VirtualHosts: []ir.VirtualHost{{Name: "h", Routes: []ir.Route{
			{Name: "api", RateLimit: ir.RouteRateLimit{Enabled: true, Consumer: true}},
			{Name: "open", RateLimit: ir.RouteRateLimit{Enabled: true, Anonymous: true}},
		}}}}},
	}
}

// failingAccount always fails.
type failingAccount struct{}

func (failingAccount) Settle(context.Context, Settlement) ([]KeyState, error) {
	return nil, context.DeadlineExceeded
}

// dial serves s over an in-memory listener and opens a stream.
func dial(t *testing.T, s *Server) grpc.BidiStreamingClient[rlqsv3.RateLimitQuotaUsageReports, rlqsv3.RateLimitQuotaResponse] {
	t.Helper()
	st, _ := dialAs(t, s, "")
	return st
}

// dialServerAs serves s over an in-memory listener and opens a stream
// naming its client client ("" for none), returning the gRPC server too.
func dialServerAs(t *testing.T, s *Server, client string) (rlqsStream, *grpc.Server) {
	t.Helper()
	l := bufconn.Listen(1 << 20)
	g := grpc.NewServer()
	s.Register(g)
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///buf", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if client != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, ir.RateLimitQuotaClientHeader, client)
	}
	st, err := rlqsv3.NewRateLimitQuotaServiceClient(conn).StreamRateLimitQuotas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st, g
}

func usage(id map[string]string, allowed, denied uint64) *rlqsv3.RateLimitQuotaUsageReports {
	return &rlqsv3.RateLimitQuotaUsageReports{Domain: ir.RateLimitQuotaDomain, BucketQuotaUsages: []*rlqsv3.RateLimitQuotaUsageReports_BucketQuotaUsage{{
		BucketId: &rlqsv3.BucketId{Bucket: id}, TimeElapsed: durationpb.New(0), NumRequestsAllowed: allowed, NumRequestsDenied: denied}}}
}

// consumerBucket is alice's bucket id on route api in tier, as the
// translator builds it (the static part in one entry).
func consumerBucket(tier string) map[string]string {
	return map[string]string{ir.BucketKeyBucket: ir.BucketStatic(ir.BucketKindConsumer, "api", tier), ir.BucketKeyConsumer: "alice"}
}

// legacyConsumerBucket is the same id with separate kind, route and tier
// entries (earlier releases' form).
func legacyConsumerBucket(tier string) map[string]string {
	return map[string]string{ir.BucketKeyKind: ir.BucketKindConsumer, ir.BucketKeyRoute: "api", ir.BucketKeyTier: tier, ir.BucketKeyConsumer: "alice"}
}

// TestServerAnswers covers the answers per bucket kind: the bucket id is
// repeated exactly; a consumer's first report gets ALLOW_ALL then a full
// token bucket of what is left in one response, with whole-second
// intervals; unlimited → ALLOW_ALL; deny → DENY_ALL; an account failure →
// the failure mode's blanket rule.
func TestServerAnswers(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		account Account
		id      map[string]string
		want    func(t *testing.T, as []*rlqsv3.RateLimitQuotaResponse_BucketAction)
	}{
		{"consumer", ir.FailOpen, nil, consumerBucket("tiny"), func(t *testing.T, as []*rlqsv3.RateLimitQuotaResponse_BucketAction) {
			if len(as) != 2 || blanket(as[0]) != "ALLOW_ALL" {
				t.Fatalf("actions %v, want ALLOW_ALL then a token bucket", as)
			}
			tb := as[1].GetQuotaAssignmentAction().GetRateLimitStrategy().GetTokenBucket()
			if tb.GetMaxTokens() != 9 || tb.GetTokensPerFill().GetValue() != 10 || tb.GetFillInterval().AsDuration() != time.Minute {
				t.Fatalf("token bucket %v, want 9 tokens (10 − the reported one), 10 per minute", tb)
			}
			if ttl := as[1].GetQuotaAssignmentAction().GetAssignmentTimeToLive(); ttl.GetNanos() != 0 || ttl.GetSeconds() < 6 {
				t.Fatalf("time to live %v: whole seconds, longer than one report interval", ttl)
			}
		}},
		{"unknown tier is the default tier", ir.FailOpen, nil, consumerBucket("gold"), func(t *testing.T, as []*rlqsv3.RateLimitQuotaResponse_BucketAction) {
			if len(as) != 2 || as[1].GetQuotaAssignmentAction().GetRateLimitStrategy().GetTokenBucket().GetMaxTokens() != 9 {
				t.Fatalf("actions %v", as)
			}
		}},
		{"earlier id form", ir.FailOpen, nil, legacyConsumerBucket("tiny"), func(t *testing.T, as []*rlqsv3.RateLimitQuotaResponse_BucketAction) {
			if len(as) != 2 || as[1].GetQuotaAssignmentAction().GetRateLimitStrategy().GetTokenBucket().GetMaxTokens() != 9 {
				t.Fatalf("actions %v", as)
			}
		}},
		{"unlimited", ir.FailOpen, nil, consumerBucket("ent"), wantBlanket("ALLOW_ALL")},
		{"deny", ir.FailOpen, nil, map[string]string{ir.BucketKeyBucket: ir.BucketStatic(ir.BucketKindDeny, "api", "")}, wantBlanket("DENY_ALL")},
		{"deny, earlier id form", ir.FailOpen, nil, map[string]string{ir.BucketKeyKind: ir.BucketKindDeny, ir.BucketKeyRoute: "api"}, wantBlanket("DENY_ALL")},
		{"account down, open", ir.FailOpen, failingAccount{}, consumerBucket("tiny"), wantBlanket("ALLOW_ALL")},
		{"account down, closed", ir.FailClosed, failingAccount{}, consumerBucket("tiny"), wantBlanket("DENY_ALL")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acct := tt.account
			if acct == nil {
				acct = NewMemoryAccount(time.Now)
			}
			s := New(Options{Account: acct})
			if _, err := s.Swap(testConfig(tt.mode)); err != nil {
				t.Fatal(err)
			}
			st := dial(t, s)
			if err := st.Send(usage(tt.id, 1, 0)); err != nil {
				t.Fatal(err)
			}
			resp, err := st.Recv()
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range resp.GetBucketAction() {
				if got := a.GetBucketId().GetBucket(); len(got) != len(tt.id) || bucketKey(a.GetBucketId()) != bucketKey(&rlqsv3.BucketId{Bucket: tt.id}) {
					t.Fatalf("bucket id %v, want %v exactly", got, tt.id)
				}
			}
			tt.want(t, resp.GetBucketAction())
		})
	}
}

func blanket(a *rlqsv3.RateLimitQuotaResponse_BucketAction) string {
	s := a.GetQuotaAssignmentAction().GetRateLimitStrategy()
	if _, ok := s.GetStrategy().(*typev3.RateLimitStrategy_BlanketRule_); !ok {
		return ""
	}
	return s.GetBlanketRule().String()
}

func wantBlanket(rule string) func(*testing.T, []*rlqsv3.RateLimitQuotaResponse_BucketAction) {
	return func(t *testing.T, as []*rlqsv3.RateLimitQuotaResponse_BucketAction) {
		if len(as) != 1 || blanket(as[0]) != rule {
			t.Fatalf("actions %v, want one %s", as, rule)
		}
	}
}

// TestServerIgnoresForeignBuckets: a bucket Tollgate did not build is not
// answered (Envoy keeps its no-assignment rule).
func TestServerIgnoresForeignBuckets(t *testing.T) {
	s := New(Options{Account: NewMemoryAccount(time.Now)})
	if _, err := s.Swap(testConfig(ir.FailOpen)); err != nil {
		t.Fatal(err)
	}
	st := dial(t, s)
	_ = st.Send(usage(map[string]string{"name": "theirs"}, 1, 0))
	_ = st.Send(usage(consumerBucket("tiny"), 1, 0))
	resp, err := st.Recv()
	if err != nil || len(resp.GetBucketAction()) != 2 || resp.GetBucketAction()[0].GetBucketId().GetBucket()[ir.BucketKeyConsumer] != "alice" {
		t.Fatalf("first answer %v %v, want the consumer's (the foreign bucket unanswered)", resp, err)
	}
}

// TestServerSendsHeadersAtOnce: the response headers arrive before any
// report is sent, so Envoy's stream retries (envoy.RLQSStreamRetryPolicy)
// end as soon as a live server has the stream and never replay a report
// it read.
func TestServerSendsHeadersAtOnce(t *testing.T) {
	s := New(Options{Account: NewMemoryAccount(time.Now)})
	if _, err := s.Swap(testConfig(ir.FailOpen)); err != nil {
		t.Fatal(err)
	}
	st := dial(t, s)
	got := make(chan error, 1)
	go func() { _, err := st.Header(); got <- err }()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("headers: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no response headers before the first report")
	}
}

// BenchmarkServerReports is the RLQS server's cost per Envoy usage report
// of one bucket (settle + assignment + response), against the memory
// account and a real Redis: b.N reports; CPU per 1,000 reports = ns/op ×
// 1,000 (the Redis column includes the round trip, not Redis's CPU).
func BenchmarkServerReports(b *testing.B) {
	for name, acct := range accountKinds(b) {
		b.Run(name, func(b *testing.B) {
			s := New(Options{Account: acct()})
			if _, err := s.Swap(testConfig(ir.FailOpen)); err != nil {
				b.Fatal(err)
			}
			st := &stream{id: "bench", buckets: map[string]*bucketState{}, send: func(*rlqsv3.RateLimitQuotaResponse) error { return nil }}
			reports := make([]*rlqsv3.RateLimitQuotaUsageReports, 1000)
			for i := range reports {
				id := consumerBucket("tiny")
				id[ir.BucketKeyConsumer] = "c" + string(rune('a'+i%26)) + time.Duration(i).String()
				reports[i] = usage(id, 1, 0)
				reports[i].BucketQuotaUsages[0].TimeElapsed = durationpb.New(5 * time.Second)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if s.answer(ctx, st, reports[i%len(reports)], nil) == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}

// TestCloseEndsStreams: Close ends open streams with Unavailable, so the
// gRPC server's graceful stop does not wait its grace for streams that
// never end (before, `tollgate serve` in quota mode took its whole
// --shutdown-grace to stop); a stream opened after Close is refused.
func TestCloseEndsStreams(t *testing.T) {
	s := New(Options{Account: NewMemoryAccount(time.Now)})
	if _, err := s.Swap(testConfig(ir.FailOpen)); err != nil {
		t.Fatal(err)
	}
	st, g := dialServerAs(t, s, "")
	if err := st.Send(usage(consumerBucket("tiny"), 1, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatalf("first answer: %v", err)
	}
	s.Close()
	if _, err := st.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("after Close: Recv error %v, want Unavailable", err)
	}
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("GracefulStop still waiting 5 s after Close")
	}
	s2 := New(Options{Account: NewMemoryAccount(time.Now)})
	s2.Close()
	if _, err := dial(t, s2).Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream opened after Close: %v, want Unavailable", err)
	}
}

// TestAssignmentOfANewcomer: a participant that gets its first bucket while
// others hold the whole limit gets 100 ms of its rate at once (at least one
// token), refilled at its rate; one holding a bucket keeps its size; one
// without rate is refused.
func TestAssignmentOfANewcomer(t *testing.T) {
	id := &rlqsv3.BucketId{Bucket: consumerBucket("tiny")}
	tests := []struct {
		name string
		rate float64
		held uint32
		want string
	}{
		{name: "833/s: 83 at once", rate: 833.4, want: "bucket 83, 50004 per 1m0s"},
		{name: "0.5/s: one token", rate: 0.5, want: "bucket 1, 30 per 1m0s"},
		{name: "holding 7: keeps 7", rate: 833.4, held: 7, want: "bucket 7, 50004 per 1m0s"},
		{name: "no rate: refused", rate: 0, want: "DENY_ALL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeActions(assignment(id, 0.3, tc.rate, time.Minute, tc.held)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// describeActions renders actions: "DENY_ALL", "ALLOW_ALL", "ABANDON", or "bucket
// <max>, <per fill> per <interval>", joined by "; ".
func describeActions(as []*rlqsv3.RateLimitQuotaResponse_BucketAction) string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		if a.GetAbandonAction() != nil {
			out = append(out, "ABANDON")
			continue
		}
		tb := a.GetQuotaAssignmentAction().GetRateLimitStrategy().GetTokenBucket()
		if tb == nil {
			out = append(out, blanket(a))
			continue
		}
		out = append(out, fmt.Sprintf("bucket %d, %d per %v", tb.GetMaxTokens(), tb.GetTokensPerFill().GetValue(), tb.GetFillInterval().AsDuration()))
	}
	return strings.Join(out, "; ")
}
