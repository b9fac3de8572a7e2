package quota

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"

	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit"
	"github.com/tollgate/tollgate/ratelimit/counter"
)

// Options configure a Server.
type Options struct {
	Logger *slog.Logger
	// Account is the shared truth: Redis, or memory for one process.
	Account Account
	// Local settles in memory when Account fails and the failure mode is
	// "local"; nil behaves like "open".
	Local Account
	// Metrics, nil for none.
	Metrics *Metrics
}

// Server is the RLQS server. It is safe for concurrent use.
type Server struct {
	rlqsv3.UnimplementedRateLimitQuotaServiceServer
	opts   Options
	log    *slog.Logger
	table  atomic.Pointer[ratelimit.Table]
	nextID atomic.Uint64
	mu     sync.Mutex
	// streams are the open streams, for pushing fresh assignments when
	// the account recovers.
	streams map[uint64]*stream
	// downUntil (unix ns): after an account error the account is skipped
	// for a moment, so an outage costs one timeout per backoff.
	downUntil atomic.Int64
}

// New returns a Server that answers nothing until the first Swap.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Server{opts: opts, log: opts.Logger, streams: map[uint64]*stream{}}
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) { rlqsv3.RegisterRateLimitQuotaServiceServer(g, s) }

// Swap makes cfg's limits current and returns a function that restores the
// previous table (controlplane.TableSwapper).
func (s *Server) Swap(cfg *ir.Config) (restore func(), err error) {
	t := ratelimit.NewTable(cfg)
	old := s.table.Swap(t)
	return func() { s.table.CompareAndSwap(t, old) }, nil
}

// stream is one Envoy's RLQS stream and the buckets it reported.
type stream struct {
	id      string
	sendMu  sync.Mutex
	send    func(*rlqsv3.RateLimitQuotaResponse) error
	mu      sync.Mutex
	buckets map[string]*bucketState
}

// bucketState is what the server remembers of one bucket of a stream.
type bucketState struct {
	id     *rlqsv3.BucketId
	demand float64
	// pending usage that could not be charged (account down): charged
	// with the next settlement.
	pending uint64
	// degraded: the last answer applied the failure mode.
	degraded bool
	// heldMax: the size of the token bucket Envoy holds, 0 for none (see
	// assignment).
	heldMax uint32
}

// StreamRateLimitQuotas implements the RLQS protocol: every usage report
// is settled against the account and answered at once with an assignment
// per reported bucket that Tollgate built (others are not answered, so
// Envoy applies their no-assignment behaviour).
func (s *Server) StreamRateLimitQuotas(gs grpc.BidiStreamingServer[rlqsv3.RateLimitQuotaUsageReports, rlqsv3.RateLimitQuotaResponse]) error {
	n := s.nextID.Add(1)
	st := &stream{id: strconv.FormatUint(n, 36) + "." + strconv.FormatInt(time.Now().UnixNano(), 36),
		send: gs.Send, buckets: map[string]*bucketState{}}
	s.mu.Lock()
	s.streams[n] = st
	s.mu.Unlock()
	s.opts.Metrics.streamOpened()
	defer func() {
		s.mu.Lock()
		delete(s.streams, n)
		s.mu.Unlock()
		st.mu.Lock()
		s.opts.Metrics.streamClosed(len(st.buckets))
		st.mu.Unlock()
	}()
	for {
		reports, err := gs.Recv()
		if err != nil {
			return nil // the stream ended; shares expire with their hold
		}
		if reports.GetDomain() != ir.RateLimitQuotaDomain {
			continue
		}
		if resp := s.answer(gs.Context(), st, reports); resp != nil {
			if err := s.sendLocked(st, resp); err != nil {
				return err
			}
		}
	}
}

// sendLocked sends resp on the stream (serialised with other sends).
func (s *Server) sendLocked(st *stream, resp *rlqsv3.RateLimitQuotaResponse) error {
	s.opts.Metrics.sent(resp)
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	return st.send(resp)
}

// answer settles every bucket of a report and returns the response, or
// nil when there is nothing to say.
func (s *Server) answer(ctx context.Context, st *stream, reports *rlqsv3.RateLimitQuotaUsageReports) *rlqsv3.RateLimitQuotaResponse {
	t := s.table.Load()
	if t == nil {
		return nil
	}
	resp := &rlqsv3.RateLimitQuotaResponse{}
	for _, u := range reports.GetBucketQuotaUsages() {
		key := bucketKey(u.GetBucketId())
		st.mu.Lock()
		bs := st.buckets[key]
		if bs == nil {
			bs = &bucketState{id: u.GetBucketId()}
			st.buckets[key] = bs
			s.opts.Metrics.newBucket()
		}
		s.opts.Metrics.report(u.GetNumRequestsAllowed(), u.GetNumRequestsDenied())
		elapsed := max(1, u.GetTimeElapsed().AsDuration().Seconds())
		bs.demand = float64(u.GetNumRequestsAllowed()+u.GetNumRequestsDenied()) / elapsed
		bs.pending += u.GetNumRequestsAllowed()
		resp.BucketAction = append(resp.BucketAction, s.decide(ctx, t, st.id+"|"+key, bs)...)
		st.mu.Unlock()
	}
	if len(resp.BucketAction) == 0 {
		return nil
	}
	return resp
}

// decide returns the actions assigning one bucket of participant (whose
// usage since the last settlement is bs.pending), or none for a bucket
// Tollgate did not build. Called with the stream's lock held.
func (s *Server) decide(ctx context.Context, t *ratelimit.Table, participant string, bs *bucketState) []*rlqsv3.RateLimitQuotaResponse_BucketAction {
	b, ok := parseBucket(t, bs.id.GetBucket())
	switch {
	case !ok:
		s.log.Debug("rlqs: unknown bucket, not answered", "bucket", bs.id.GetBucket())
		s.opts.Metrics.unknownBucket()
		return nil
	case b.kind == ir.BucketKindDeny:
		return s.blanket(bs, typev3.RateLimitStrategy_DENY_ALL, BlanketTTL)
	case len(b.limits) == 0:
		bs.pending = 0
		return s.blanket(bs, typev3.RateLimitStrategy_ALLOW_ALL, BlanketTTL)
	}
	limits := make([]counter.Limit, len(b.limits))
	for i, l := range b.limits {
		limits[i] = l.Counter()
	}
	used := bs.pending
	states, local, err := s.settle(ctx, t, Settlement{Participant: participant, Limits: limits, Used: used,
		Demand: bs.demand, Hold: AssignmentTTL + holdMargin})
	if err != nil {
		bs.degraded = true
		rule := typev3.RateLimitStrategy_ALLOW_ALL
		if t.FailureMode() == ir.FailClosed {
			rule = typev3.RateLimitStrategy_DENY_ALL
		}
		if !errors.Is(err, counter.ErrInvalidLimit) {
			s.opts.Metrics.failureMode(t.FailureMode())
		}
		return s.blanket(bs, rule, FailureTTL)
	}
	if local {
		s.opts.Metrics.failureMode(ir.FailLocal)
	}
	bs.pending, bs.degraded = 0, local
	ws, fill := windows(b, states)
	c, r := combine(ws, AssignmentTTL)
	actions := assignment(bs.id, c, r, fill, bs.heldMax)
	bs.heldMax = actions[len(actions)-1].GetQuotaAssignmentAction().GetRateLimitStrategy().GetTokenBucket().GetMaxTokens()
	s.log.Debug("rlqs: assignment", "participant", participant, "used", used, "demand", bs.demand,
		"share", states[0].Share, "remaining", states[0].Remaining, "grant", c, "rate", r, "actions", len(actions))
	return actions
}

// blanket answers bs with a blanket rule.
func (s *Server) blanket(bs *bucketState, rule typev3.RateLimitStrategy_BlanketRule, ttl time.Duration) []*rlqsv3.RateLimitQuotaResponse_BucketAction {
	bs.heldMax = 0
	return []*rlqsv3.RateLimitQuotaResponse_BucketAction{blanketAction(bs.id, rule, ttl)}
}

// backoff is how long the account is skipped after it failed.
const backoff = 500 * time.Millisecond

var errAccountDown = errors.New("quota account down (retrying shortly)")

// settle asks the account, applying the failure mode when it cannot
// answer: an error for open and closed (the caller answers with a blanket
// rule), the local account's states for local (local true: the shared
// account is still to be settled with once it is back).
func (s *Server) settle(ctx context.Context, t *ratelimit.Table, st Settlement) (states []KeyState, local bool, err error) {
	if until := s.downUntil.Load(); until == 0 || time.Now().UnixNano() >= until {
		start := time.Now()
		states, e := s.opts.Account.Settle(ctx, st)
		s.opts.Metrics.settled(time.Since(start), e)
		if e == nil {
			s.downUntil.Store(0)
			return states, false, nil
		}
		if errors.Is(e, counter.ErrInvalidLimit) {
			return nil, false, e
		}
		err = e
		s.downUntil.Store(time.Now().Add(backoff).UnixNano())
		s.log.Warn("rlqs: quota account failed; applying the failure mode", "mode", t.FailureMode(), "err", err)
	}
	if t.FailureMode() == ir.FailLocal && s.opts.Local != nil {
		states, err := s.opts.Local.Settle(ctx, st)
		return states, true, err
	}
	return nil, false, cmpErr(err)
}

func cmpErr(err error) error {
	if err == nil {
		return errAccountDown
	}
	return err
}

// bucketKey is a bucket id's canonical text: its entries sorted by key.
func bucketKey(id *rlqsv3.BucketId) string {
	m := id.GetBucket()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
		b.WriteByte(';')
	}
	return b.String()
}
