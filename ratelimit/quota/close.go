package quota

import (
	"context"
	"time"
)

// releaseTimeout bounds the account calls of a stream's release (leave),
// and closeWait how long Close waits for its streams to end.
const (
	releaseTimeout = 2 * time.Second
	closeWait      = releaseTimeout + time.Second
)

// Close ends every open stream and refuses new ones (Unavailable). RLQS
// streams never end by themselves, so a graceful stop of the gRPC server
// would otherwise wait its whole grace for them; Envoy keeps its
// assignments (until they expire) and opens a new stream on its next
// report tick, to whichever server its cluster then reaches. Run calls
// Close when its context ends.
//
// Each stream's handler, as it ends on Close, releases from the account
// (Settlement.Release, at most releaseTimeout) the participants of its
// stream if it named no client (Envoy's rate_limit_quota filter): each of
// them is its stream's alone (participant), so the stream its Envoy opens
// next, here restarted or on another replica, would otherwise be a
// newcomer held to its floor share, with no tokens, while the ended
// stream's participant held the limit for AssignmentTTL + holdMargin (one
// consumer at 20 req/s against 1,000 a minute through Envoy's filter: 1
// admitted a second for 12 s after a restart of serve; e2e
// TestQuotaFilterReconnectKeepsTheShare). The handler releases after any
// report it settled and before it returns, so a graceful stop of the gRPC
// server (which waits for the handlers) ends after the releases, and the
// process may exit then (TestGracefulStopReleasesBeforeItEnds); Close
// itself returns once its streams' handlers have ended (at most
// closeWait). A named client's participants are kept: its next stream is
// the same participant. What a released Envoy admitted since its last
// report is charged when its next stream reports it; until then other
// Envoys of the same consumer may be granted the tokens it still holds
// (package doc, the bound). A process that dies without Close releases
// nothing: its unnamed participants hold their shares until their hold
// expires.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		timeout := time.NewTimer(closeWait)
		defer timeout.Stop()
		for _, st := range s.openStreams() {
			select {
			case <-st.done:
			case <-timeout.C:
				s.log.Warn("rlqs: streams still open after the stop's wait; their shares expire with their hold")
				return
			}
		}
	})
}

// end marks st ended: no settlement or send on it from now on (exchange),
// so a push racing its end (another stream's rebalancing, a recovery)
// cannot put a participant it released back in the account
// (TestClosedStreamIsNotSettledAgain). When the server is closing, it
// first releases st's participants if st named no client (Close).
func (s *Server) end(st *stream) {
	st.sendMu.Lock() // an exchange under way settles first
	defer st.sendMu.Unlock()
	st.ended = true
	select {
	case <-s.closing:
	default:
		return
	}
	if st.client != "" {
		return
	}
	s.releaseLocked(st)
}

// releaseLocked drops st's participants from the account; st's send lock
// is held.
func (s *Server) releaseLocked(st *stream) {
	t := s.table.Load()
	if t == nil {
		return
	}
	var rel []Settlement
	st.mu.Lock()
	for _, bs := range st.buckets {
		if _, limits, ok := bs.parse(t); ok && len(limits) > 0 {
			rel = append(rel, Settlement{Participant: bs.participant, Limits: limits, Release: true})
		}
	}
	st.mu.Unlock()
	if len(rel) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if _, errs := settleBatch(ctx, s.opts.Account, rel); firstErr(errs) != nil {
		s.log.Warn("rlqs: a stopping server could not release a stream's shares; they expire with their hold",
			"participants", len(rel), "err", firstErr(errs))
		return
	}
	s.log.Debug("rlqs: released the shares of a stopping server's stream", "participants", len(rel))
}
