package quotaclient

import (
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit/quota"
)

// fakeStore is a Store recording every call. Its buckets count what the
// test adds until the next Drain.
type fakeStore struct {
	mu       sync.Mutex
	buckets  map[BucketID]*Usage
	assigns  []Assignment
	abandons []BucketID
	drains   int
	// panicAssign makes the next Assign panic (then it is cleared).
	panicAssign bool
}

func newFakeStore() *fakeStore { return &fakeStore{buckets: map[BucketID]*Usage{}} }

// add counts requests of bucket id (creating it).
func (f *fakeStore) add(id BucketID, allowed, denied uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.buckets[id]
	if u == nil {
		u = &Usage{ID: id}
		f.buckets[id] = u
	}
	u.Allowed += allowed
	u.Denied += denied
}

func (f *fakeStore) Drain() []Usage {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drains++
	out := make([]Usage, 0, len(f.buckets))
	for _, u := range f.buckets {
		out = append(out, *u)
		u.Allowed, u.Denied = 0, 0
	}
	return out
}

func (f *fakeStore) Assign(a Assignment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicAssign {
		f.panicAssign = false
		panic("fake store: Assign failed")
	}
	f.assigns = append(f.assigns, a)
}

func (f *fakeStore) Abandon(id BucketID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.abandons = append(f.abandons, id)
	delete(f.buckets, id)
}

// assignsOf returns the assignments of id so far, in order.
func (f *fakeStore) assignsOf(id BucketID) []Assignment {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Assignment
	for _, a := range f.assigns {
		if a.ID == id {
			out = append(out, a)
		}
	}
	return out
}

// abandoned reports whether id was abandoned.
func (f *fakeStore) abandoned(id BucketID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.abandons {
		if a == id {
			return true
		}
	}
	return false
}

// lastTokenBucket returns id's last token-bucket assignment.
func (f *fakeStore) lastTokenBucket(id BucketID) (Assignment, bool) {
	as := f.assignsOf(id)
	for i := len(as) - 1; i >= 0; i-- {
		if as[i].Kind == TokenBucket {
			return as[i], true
		}
	}
	return Assignment{}, false
}

// eventually polls cond every 2 ms until it holds or d passes, and
// returns how long it took.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// testConfig has one rate-limited route "api" whose consumers take the
// default tier "tiny", 10 a minute.
func testConfig() *ir.Config {
	minute := ir.Limit{Requests: 10, Per: time.Minute, Unit: "minute"}
	return &ir.Config{
		RateLimits: ir.RateLimits{Mode: ir.RateLimitQuota, DefaultTier: "tiny", FailureMode: ir.FailOpen,
			Tiers: []ir.Tier{{Name: "tiny", Limits: []ir.Limit{minute}}}},
		Gateways: []ir.Gateway{{Name: "g", VirtualHosts: []ir.VirtualHost{{Name: "h", Routes: []ir.Route{
			{Name: "api", RateLimit: ir.RouteRateLimit{Enabled: true, Consumer: true}},
		}}}}},
	}
}

// consumer is c's bucket on route api, as the module names it.
func consumer(c string) BucketID {
	return BucketID{Bucket: ir.BucketStatic(ir.BucketKindConsumer, "api", "tiny"), Consumer: c}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// rlqsServer is Tollgate's real quota server on a loopback port,
// recording every report it receives.
type rlqsServer struct {
	addr string
	srv  *quota.Server
	g    *grpc.Server
	mu   sync.Mutex
	got  []*rlqsv3.RateLimitQuotaUsageReports
}

// startServer serves a quota server with account acct (nil: a fresh
// memory account) on addr ("": any loopback port), abandoning buckets
// after abandonAfter idle reports (0: never). It stops with the test.
func startServer(t *testing.T, addr string, acct quota.Account, abandonAfter int) *rlqsServer {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if acct == nil {
		acct = quota.NewMemoryAccount(time.Now)
	}
	if abandonAfter == 0 {
		abandonAfter = -1
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &rlqsServer{addr: l.Addr().String(),
		srv: quota.New(quota.Options{Logger: discard(), Account: acct, AbandonAfter: abandonAfter})}
	if _, err := s.srv.Swap(testConfig()); err != nil {
		t.Fatal(err)
	}
	s.g = grpc.NewServer(grpc.StreamInterceptor(s.intercept))
	s.srv.Register(s.g)
	go func() { _ = s.g.Serve(l) }()
	t.Cleanup(s.stop)
	return s
}

// stop ends the server (its streams at once, as a killed process).
func (s *rlqsServer) stop() {
	s.srv.Close()
	s.g.Stop()
}

func (s *rlqsServer) intercept(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, &recordingStream{ServerStream: ss, s: s})
}

type recordingStream struct {
	grpc.ServerStream
	s *rlqsServer
}

func (r *recordingStream) RecvMsg(m any) error {
	err := r.ServerStream.RecvMsg(m)
	if rep, ok := m.(*rlqsv3.RateLimitQuotaUsageReports); ok && err == nil {
		r.s.mu.Lock()
		r.s.got = append(r.s.got, proto.Clone(rep).(*rlqsv3.RateLimitQuotaUsageReports))
		r.s.mu.Unlock()
	}
	return err
}

// usagesOf returns every usage of id the server received, in order.
func (s *rlqsServer) usagesOf(id BucketID) []*rlqsv3.RateLimitQuotaUsageReports_BucketQuotaUsage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*rlqsv3.RateLimitQuotaUsageReports_BucketQuotaUsage
	for _, r := range s.got {
		for _, u := range r.GetBucketQuotaUsages() {
			if fromBucketID(u.GetBucketId()) == id {
				out = append(out, u)
			}
		}
	}
	return out
}

// allowedOf sums id's reported admitted requests.
func (s *rlqsServer) allowedOf(id BucketID) uint64 {
	var n uint64
	for _, u := range s.usagesOf(id) {
		n += u.GetNumRequestsAllowed()
	}
	return n
}

// allowedTotal sums every reported admitted request.
func (s *rlqsServer) allowedTotal() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for _, r := range s.got {
		for _, u := range r.GetBucketQuotaUsages() {
			n += u.GetNumRequestsAllowed()
		}
	}
	return n
}

// reports returns the reports received so far.
func (s *rlqsServer) reports() []*rlqsv3.RateLimitQuotaUsageReports {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*rlqsv3.RateLimitQuotaUsageReports(nil), s.got...)
}

// newClient starts a client of addr for store, closed with the test.
func newClient(t *testing.T, addr string, interval time.Duration, store Store) *Client {
	t.Helper()
	c := New(envoymod.Quota{Address: addr, Domain: ir.RateLimitQuotaDomain, ReportInterval: interval}, store, discard())
	t.Cleanup(c.Close)
	return c
}
