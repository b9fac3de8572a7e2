package quota

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

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
	// Notifier, when set, carries rebalancing messages to the other
	// servers sharing Account (rebalance.go): RedisAccount's pub/sub.
	Notifier Notifier
	// AbandonAfter is how many idle reports in a row (no request allowed
	// or denied) make the server abandon a bucket (abandon.go): Envoy then
	// drops it and builds it again, as a new bucket, at its next request.
	// 0 means DefaultAbandonAfter (6: 30 s idle), a negative value never.
	AbandonAfter int
}

// Server is the RLQS server. It is safe for concurrent use.
type Server struct {
	rlqsv3.UnimplementedRateLimitQuotaServiceServer
	opts  Options
	log   *slog.Logger
	table atomic.Pointer[ratelimit.Table]
	// pushes counts table swaps (each may reset the Envoys' backstops):
	// incremented before the table changes; swaps holds their recent times.
	pushes atomic.Uint64
	swaps  swapLog
	nextID atomic.Uint64
	mu     sync.Mutex
	// streams are the open streams, for pushing fresh assignments when
	// the account recovers.
	streams map[uint64]*stream
	// downUntil (unix ns): after an account error the account is skipped
	// for a moment, so an outage costs one timeout per backoff.
	downUntil atomic.Int64
	// id names this server in rebalancing messages.
	id string
	// closing is closed by Close: streams end, new ones are refused.
	closing   chan struct{}
	closeOnce sync.Once
	// sendHook, nil but in tests, is called before each response is sent.
	sendHook func(st *stream, resp *rlqsv3.RateLimitQuotaResponse)
}

// New returns a Server that answers nothing until the first Swap.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Server{opts: opts, log: opts.Logger, streams: map[uint64]*stream{}, closing: make(chan struct{}),
		id: strconv.FormatInt(time.Now().UnixNano(), 36) + "." + strconv.FormatUint(rand.Uint64(), 36)}
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) { rlqsv3.RegisterRateLimitQuotaServiceServer(g, s) }

// Swap makes cfg's limits current and returns a function that restores the
// previous table (controlplane.TableSwapper).
func (s *Server) Swap(cfg *ir.Config) (restore func(), err error) {
	t := ratelimit.NewTable(cfg)
	s.swaps.add(time.Now())
	s.pushes.Add(1)
	old := s.table.Swap(t)
	return func() {
		s.swaps.add(time.Now())
		s.pushes.Add(1)
		s.table.CompareAndSwap(t, old)
	}, nil
}

// swapLog keeps the times of the last swapLogSize table swaps.
type swapLog struct {
	mu sync.Mutex
	at []time.Time
}

const swapLogSize = 64

func (l *swapLog) add(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.at) == swapLogSize {
		l.at = append(l.at[:0], l.at[1:]...)
	}
	l.at = append(l.at, now)
}

// since returns how many swaps came after t (all that are kept when the
// oldest kept one did: a safe over-count).
func (l *swapLog) since(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.at {
		if at.After(t) {
			n++
		}
	}
	return n
}

// stream is one Envoy's RLQS stream and the buckets it reported.
type stream struct {
	id string
	// client is the id the stream's client declared
	// (ir.RateLimitQuotaClientHeader), "" for none: see participant.
	client string
	// done is closed when the stream's handler has returned (Close waits
	// for it).
	done   chan struct{}
	sendMu sync.Mutex
	// ended (under sendMu): the handler is ending; nothing is settled or
	// sent on the stream any more (end).
	ended   bool
	send    func(*rlqsv3.RateLimitQuotaResponse) error
	mu      sync.Mutex
	buckets map[string]*bucketState
}

// bucketState is what the server remembers of one bucket of a stream.
type bucketState struct {
	id *rlqsv3.BucketId
	// participant is the bucket's participant id in the account (the
	// stream's id and the bucket key).
	participant string
	demand      float64
	// pending usage that could not be charged (account down): charged
	// with the next settlement.
	pending uint64
	// degraded: the last answer applied the failure mode.
	degraded bool
	// idle counts the bucket's reports in a row without a request
	// (abandon.go).
	idle int
	// owes: at its last settlement some limit of the bucket had not
	// refilled completely in the account (abandon.go: not abandoned).
	owes bool
	// heldMax: the size of the token bucket Envoy holds, 0 for none (see
	// assignment).
	heldMax uint32
	// unreported: the settlement under way comes without a report (a
	// rebalancing, rebalance.go: a newcomer's holder, or the newcomer
	// assigned again): when Envoy holds a token bucket, only the rate
	// changes: the account keeps counting what the bucket holds
	// (Settlement.Keep: what Envoy admitted since its last report is not
	// known yet) and the bucket is sent alone at its size, so Envoy keeps
	// its tokens and refills them at the new rate.
	unreported bool
	// fresh: not settled yet on this stream. awaiting: its first
	// settlement (or, when this server rebalanced it, the settlement
	// after that) found others holding what its share would grant, and
	// other servers are asked to shrink them (rebalance.go); cleared when
	// one answers or at the bucket's next report.
	fresh, awaiting bool
	// parsed is the bucket as table parsedIn reads it (ok: Tollgate built
	// it), and limits its counter limits: parsed once per table, not per
	// report.
	parsedIn *ratelimit.Table
	parsed   bucket
	ok       bool
	limits   []counter.Limit
	// backstop bounds what is charged by what the Envoy's backstop can
	// have admitted (nil until the bucket's first report with limits), as
	// of the Server's push count backstopAt and table backstopIn.
	backstop   *backstopBound
	backstopAt uint64
	backstopIn *ratelimit.Table
}

// chargeable returns how much of the allowed requests of a report seen at
// now, covering elapsed, to charge when the server has had pushes table
// swaps: all of them, but no more than the Envoy's backstop can have
// admitted (backstopBound: a bucket's first bound starts full when the
// report's interval began, plus a fresh burst per swap within it, of
// swaps; pushes since the previous report each allow a fresh burst,
// chargeAfterPushes).
func (bs *bucketState) chargeable(t *ratelimit.Table, pushes uint64, swaps *swapLog, allowed uint64, elapsed time.Duration, now time.Time) uint64 {
	b, _, ok := bs.parse(t)
	if !ok || len(b.limits) == 0 {
		return allowed
	}
	switch {
	case bs.backstop == nil:
		start := now.Add(-max(0, elapsed) - envoyElapsedStep)
		bs.backstop = newBackstopBound(b.limits, t.Listeners(b.route), start)
		if elapsed > 0 { // else Envoy's first report of a bucket it just built, full
			bs.backstop.addBursts(swaps.since(start.Add(-backstopTolerance)))
		}
	case bs.backstopAt != pushes || bs.backstopIn != t: // a report racing a swap may see its count, not yet its table
		var c uint64
		c, bs.backstop = chargeAfterPushes(bs.backstop, b.limits, t.Listeners(b.route),
			max(1, pushes-bs.backstopAt), allowed, elapsed, now)
		bs.backstopAt, bs.backstopIn = pushes, t
		return c
	}
	bs.backstopAt, bs.backstopIn = pushes, t
	return bs.backstop.charge(allowed, elapsed, now)
}

// parse returns what t says of the bucket, parsing it again only when t
// is not the table it was last parsed in.
func (bs *bucketState) parse(t *ratelimit.Table) (bucket, []counter.Limit, bool) {
	if bs.parsedIn != t {
		bs.parsed, bs.ok = parseBucket(t, bs.id.GetBucket())
		bs.limits = make([]counter.Limit, len(bs.parsed.limits))
		for i, l := range bs.parsed.limits {
			bs.limits[i] = l.Counter()
		}
		bs.parsedIn = t
	}
	return bs.parsed, bs.limits, bs.ok
}

// StreamRateLimitQuotas implements the RLQS protocol: every usage report
// is settled against the account and answered at once with an assignment
// per reported bucket that Tollgate built (others are not answered, so
// Envoy applies their no-assignment behaviour).
//
// The response headers go out as soon as the stream opens (before it is
// registered for recovery pushes, which may send from other goroutines):
// Envoy retries an RLQS stream (envoy.RLQSStreamRetryPolicy) only until
// they arrive, so a report this server has read is never replayed to
// another server or to this one restarted.
func (s *Server) StreamRateLimitQuotas(gs grpc.BidiStreamingServer[rlqsv3.RateLimitQuotaUsageReports, rlqsv3.RateLimitQuotaResponse]) error {
	select {
	case <-s.closing:
		return errClosing // before any header: Envoy retries it on another replica
	default:
	}
	if err := gs.SendHeader(metadata.MD{}); err != nil {
		return fmt.Errorf("rlqs: response headers: %w", err)
	}
	n := s.nextID.Add(1)
	st := &stream{id: strconv.FormatUint(n, 36) + "." + strconv.FormatInt(time.Now().UnixNano(), 36),
		client: clientOf(gs.Context()), done: make(chan struct{}), send: gs.Send, buckets: map[string]*bucketState{}}
	s.mu.Lock()
	s.streams[n] = st
	s.mu.Unlock()
	s.opts.Metrics.streamOpened()
	defer func() {
		s.end(st)
		s.mu.Lock()
		delete(s.streams, n)
		s.mu.Unlock()
		st.mu.Lock()
		s.opts.Metrics.streamClosed(len(st.buckets))
		st.mu.Unlock()
		close(st.done)
	}()
	in := receive(gs)
	for {
		var reports *rlqsv3.RateLimitQuotaUsageReports
		select {
		case <-s.closing:
			return errClosing
		case r, ok := <-in:
			if !ok {
				return nil // the stream ended; shares expire with their hold
			}
			reports = r
		}
		if reports.GetDomain() != ir.RateLimitQuotaDomain {
			continue
		}
		holders, floor := s.newcomers(st, reports)
		if err := s.exchange(st, func() *rlqsv3.RateLimitQuotaResponse {
			return s.answer(gs.Context(), st, reports, floor)
		}); err != nil {
			return err
		}
		if holders != nil {
			s.rebalance(gs.Context(), st, holders, floor)
		}
		s.announce(gs.Context(), st, reports)
	}
}

// clientOf returns the client id a stream's metadata declares
// (ir.RateLimitQuotaClientHeader), or "" when it declares none or one that
// is not 16 to 64 of [0-9A-Za-z_-] (it becomes a field of Redis hashes).
func clientOf(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	vs := md.Get(ir.RateLimitQuotaClientHeader)
	if len(vs) != 1 || len(vs[0]) < 16 || len(vs[0]) > 64 {
		return ""
	}
	for _, c := range vs[0] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			return ""
		}
	}
	return vs[0]
}

// participant names the account participant of bucket key on st: the
// client's (one for every stream the client opens, on any server sharing
// the account) when st declared a client id, else the stream's own.
//
// A stream's own participant dies with it: a client that reconnects (a
// restarted or failed-over control plane) is a newcomer whose old
// participant holds its share and grant for AssignmentTTL + holdMargin,
// so while a consumer's limit was the old participant's alone, the new one
// got its floor share and no tokens (Envoy's module at 20 req/s against
// 1,000 a minute after a restart of serve: 1 admitted a second, 0.83/s,
// for 12 s; e2e TestQuotaModuleReconnectKeepsTheShare). The client's
// participant is the same one: its own holding is never counted against
// it, and the requests it admitted and had not reported come in its
// first report on the new stream.
func (st *stream) participant(key string) string {
	if st.client != "" {
		return "c:" + st.client + "|" + key
	}
	return st.id + "|" + key
}

// sameClient reports whether st and o are streams of one client (a
// reconnected client's stream and the one it left, not yet seen ended):
// never holders of each other's buckets.
func (st *stream) sameClient(o *stream) bool { return st.client != "" && st.client == o.client }

// errClosing ends the streams of a closed server.
var errClosing = status.Error(codes.Unavailable, "rlqs: the server is shutting down; reconnect")

// receive returns gs's reports as a channel, closed when the stream ends.
// Its goroutine ends with the stream (the handler's return cancels it).
func receive(gs grpc.BidiStreamingServer[rlqsv3.RateLimitQuotaUsageReports, rlqsv3.RateLimitQuotaResponse]) <-chan *rlqsv3.RateLimitQuotaUsageReports {
	in := make(chan *rlqsv3.RateLimitQuotaUsageReports)
	go func() {
		defer close(in)
		for {
			r, err := gs.Recv()
			if err != nil {
				return
			}
			select {
			case in <- r:
			case <-gs.Context().Done():
				return
			}
		}
	}()
	return in
}

// exchange settles with settle and sends its response, if any, holding
// the stream's send lock throughout: the responses of a stream reach Envoy
// in the order they were settled (a push settled after an answer is never
// overtaken by it, which would leave Envoy with the older, larger bucket
// while the account counts the newer one). Once st ended (end), it
// neither settles nor sends. Lock order: a stream's sendMu, then its mu;
// never two streams' sendMu at once.
func (s *Server) exchange(st *stream, settle func() *rlqsv3.RateLimitQuotaResponse) error {
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	if st.ended {
		return nil
	}
	resp := settle()
	if resp == nil || len(resp.GetBucketAction()) == 0 {
		return nil
	}
	return s.sendLocked(st, resp)
}

// sendLocked sends resp on st, whose send lock is held.
func (s *Server) sendLocked(st *stream, resp *rlqsv3.RateLimitQuotaResponse) error {
	s.opts.Metrics.sent(resp)
	if s.sendHook != nil {
		s.sendHook(st, resp)
	}
	return st.send(resp)
}

// answer settles every bucket of a report and returns the response, or
// nil when there is nothing to say. A bucket's demand is at least
// floor[its key] (a newcomer's peers' mean, rebalance.go). The report's settlements go to the
// account together (one pipelined round trip per chunk with Redis), not
// one round trip per bucket.
func (s *Server) answer(ctx context.Context, st *stream, reports *rlqsv3.RateLimitQuotaUsageReports, floor map[string]float64) *rlqsv3.RateLimitQuotaResponse {
	t := s.table.Load()
	if t == nil {
		return nil
	}
	pushes := s.pushes.Load() // after t: counts t's swap
	usages := reports.GetBucketQuotaUsages()
	bss := make([]*bucketState, 0, len(usages))
	now := time.Now()
	ripe := make([]bool, 0, len(usages))
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, u := range usages {
		key := bucketKey(u.GetBucketId())
		bs := st.buckets[key]
		if bs == nil {
			bs = &bucketState{id: u.GetBucketId(), participant: st.participant(key), fresh: true}
			st.buckets[key] = bs
			s.opts.Metrics.newBucket()
		}
		bs.awaiting = false
		allowed := u.GetNumRequestsAllowed()
		b, _, _ := bs.parse(t) // the zero bucket (no route, no tier) when not Tollgate's
		s.opts.Metrics.report(b, allowed, u.GetNumRequestsDenied())
		covers := u.GetTimeElapsed().AsDuration()
		ripe = append(ripe, s.idleReport(bs, allowed, u.GetNumRequestsDenied(), covers > 0))
		bs.demand = max(floor[key], float64(allowed+u.GetNumRequestsDenied())/max(1, covers.Seconds()))
		charged := bs.chargeable(t, pushes, &s.swaps, allowed, covers, now)
		s.opts.Metrics.notCharged(allowed - charged)
		bs.pending += charged
		bss = append(bss, bs)
	}
	per := s.abandon(ctx, st, t, bss, ripe)
	var rest []*bucketState
	var at []int
	for i, bs := range bss {
		if !ripe[i] {
			rest, at = append(rest, bs), append(at, i)
		}
	}
	for j, as := range s.decideEach(ctx, t, rest) {
		per[at[j]] = as
	}
	actions := flatten(per)
	if len(actions) == 0 {
		return nil
	}
	return &rlqsv3.RateLimitQuotaResponse{BucketAction: actions}
}

// decideAll returns the actions assigning the buckets bss of one stream,
// in order (none for a bucket Tollgate did not build), settling every
// bucket with limits in one batch. Called with the stream's lock held.
func (s *Server) decideAll(ctx context.Context, t *ratelimit.Table, bss []*bucketState) []*rlqsv3.RateLimitQuotaResponse_BucketAction {
	return flatten(s.decideEach(ctx, t, bss))
}

// flatten joins per-bucket actions in order.
func flatten(per [][]*rlqsv3.RateLimitQuotaResponse_BucketAction) []*rlqsv3.RateLimitQuotaResponse_BucketAction {
	n := 0
	for _, as := range per {
		n += len(as)
	}
	out := make([]*rlqsv3.RateLimitQuotaResponse_BucketAction, 0, n)
	for _, as := range per {
		out = append(out, as...)
	}
	return out
}

// decideEach is decideAll with the actions of each bucket apart (per[i]
// for bss[i]).
func (s *Server) decideEach(ctx context.Context, t *ratelimit.Table, bss []*bucketState) [][]*rlqsv3.RateLimitQuotaResponse_BucketAction {
	per := make([][]*rlqsv3.RateLimitQuotaResponse_BucketAction, len(bss))
	var sts []Settlement
	var settled []int
	for i, bs := range bss {
		b, limits, ok := bs.parse(t)
		switch {
		case !ok:
			bs.owes = false
			s.log.Debug("rlqs: unknown bucket, not answered", "bucket", bs.id.GetBucket())
			s.opts.Metrics.unknownBucket()
		case b.kind == ir.BucketKindDeny:
			per[i] = s.blanket(bs, typev3.RateLimitStrategy_DENY_ALL, BlanketTTL)
		case len(limits) == 0:
			bs.pending = 0
			per[i] = s.blanket(bs, typev3.RateLimitStrategy_ALLOW_ALL, BlanketTTL)
		default:
			sts = append(sts, Settlement{Participant: bs.participant, Limits: limits, Used: bs.pending,
				Demand: bs.demand, Hold: AssignmentTTL + holdMargin, Keep: bs.unreported && bs.heldMax > 0})
			settled = append(settled, i)
		}
	}
	results := s.settleAll(ctx, t, sts)
	for j, i := range settled {
		per[i] = s.assign(t, bss[i], sts[j].Used, results[j])
	}
	return per
}

// assign returns the actions for a settled bucket bs whose settlement
// charged used: its token bucket, or the failure mode's blanket rule.
func (s *Server) assign(t *ratelimit.Table, bs *bucketState, used uint64, r settleResult) []*rlqsv3.RateLimitQuotaResponse_BucketAction {
	if r.err != nil {
		bs.degraded = true
		rule := typev3.RateLimitStrategy_ALLOW_ALL
		if t.FailureMode() == ir.FailClosed {
			rule = typev3.RateLimitStrategy_DENY_ALL
		}
		if !errors.Is(r.err, counter.ErrInvalidLimit) {
			s.opts.Metrics.failureMode(t.FailureMode())
		}
		return s.blanket(bs, rule, FailureTTL)
	}
	if r.local {
		s.opts.Metrics.failureMode(ir.FailLocal)
	}
	bs.pending -= min(bs.pending, used)
	bs.degraded = r.local
	bs.owes = !refilled(bs.limits, r.states)
	if bs.fresh || bs.unreported && bs.awaiting { // a first settlement, or a newcomer rebalanced here
		bs.fresh, bs.awaiting = false, squeezed(r.states)
	}
	ws, fill := windows(bs.parsed, r.states)
	c, rate := combine(ws, AssignmentTTL)
	actions := assignment(bs.id, c, rate, fill, bs.heldMax)
	if bs.unreported && bs.heldMax > 0 {
		actions = kept(actions, bs.heldMax)
	}
	bs.heldMax = actions[len(actions)-1].GetQuotaAssignmentAction().GetRateLimitStrategy().GetTokenBucket().GetMaxTokens()
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("rlqs: assignment", "participant", bs.participant, "used", used, "demand", bs.demand,
			"share", r.states[0].Share, "remaining", r.states[0].Remaining, "grant", c, "rate", rate, "actions", len(actions))
	}
	return actions
}

// blanket answers bs with a blanket rule.
func (s *Server) blanket(bs *bucketState, rule typev3.RateLimitStrategy_BlanketRule, ttl time.Duration) []*rlqsv3.RateLimitQuotaResponse_BucketAction {
	bs.heldMax, bs.owes = 0, false // a failure mode's answer also sets degraded
	return []*rlqsv3.RateLimitQuotaResponse_BucketAction{blanketAction(bs.id, rule, ttl)}
}

// backoff is how long the account is skipped after it failed.
const backoff = 500 * time.Millisecond

var errAccountDown = errors.New("quota account down (retrying shortly)")

// settleResult is one settlement's outcome: the key states, local when
// they come from the local account (the shared one is still to be settled
// with once it is back), or err (the caller applies the failure mode).
type settleResult struct {
	states []KeyState
	local  bool
	err    error
}

// settleAll settles sts with the account (in one batch when it is a
// BatchAccount), applying the failure mode to the settlements it cannot
// answer: an error for open and closed, the local account's states for
// local.
func (s *Server) settleAll(ctx context.Context, t *ratelimit.Table, sts []Settlement) []settleResult {
	out := make([]settleResult, len(sts))
	if len(sts) == 0 {
		return out
	}
	var err error
	if until := s.downUntil.Load(); until == 0 || time.Now().UnixNano() >= until {
		start := time.Now()
		states, errs := settleBatch(ctx, s.opts.Account, sts)
		took := time.Since(start)
		for i := range sts {
			s.opts.Metrics.settled(took, errs[i])
			out[i] = settleResult{states: states[i], err: errs[i]}
			if errs[i] != nil && !errors.Is(errs[i], counter.ErrInvalidLimit) {
				err = errs[i]
			}
		}
		if err == nil {
			s.downUntil.Store(0)
			return out
		}
		s.downUntil.Store(time.Now().Add(backoff).UnixNano())
		s.log.Warn("rlqs: quota account failed; applying the failure mode", "mode", t.FailureMode(), "err", err)
	}
	for i := range out {
		if out[i].states != nil || errors.Is(out[i].err, counter.ErrInvalidLimit) {
			continue
		}
		if t.FailureMode() == ir.FailLocal && s.opts.Local != nil {
			states, e := s.opts.Local.Settle(ctx, sts[i])
			out[i] = settleResult{states: states, local: true, err: e}
			continue
		}
		out[i] = settleResult{err: cmpErr(err)}
	}
	return out
}

// settleBatch settles sts with a, in one batch when a is a BatchAccount,
// else one by one; errs[i] is sts[i]'s error.
func settleBatch(ctx context.Context, a Account, sts []Settlement) ([][]KeyState, []error) {
	if b, ok := a.(BatchAccount); ok {
		return b.SettleBatch(ctx, sts)
	}
	states, errs := make([][]KeyState, len(sts)), make([]error, len(sts))
	for i, st := range sts {
		states[i], errs[i] = a.Settle(ctx, st)
	}
	return states, errs
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
