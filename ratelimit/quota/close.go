package quota

import (
	"context"
	"time"
)

// releaseTimeout bounds the account calls of Close.
const releaseTimeout = 2 * time.Second

// Close ends every open stream and refuses new ones (Unavailable). RLQS
// streams never end by themselves, so a graceful stop of the gRPC server
// would otherwise wait its whole grace for them; Envoy keeps its
// assignments (until they expire) and opens a new stream on its next
// report tick, to whichever server its cluster then reaches. Run calls
// Close when its context ends.
//
// Before it returns, Close releases from the account (Settlement.Release,
// at most releaseTimeout) the participants of the streams that named no
// client (Envoy's rate_limit_quota filter): each of them is its stream's
// alone (participant), so the stream its Envoy opens next, here restarted
// or on another replica, would otherwise be a newcomer held to its floor
// share, with no tokens, while the ended stream's participant held the
// limit for AssignmentTTL + holdMargin (one consumer at 20 req/s against
// 1,000 a minute through Envoy's filter: 1 admitted a second for 12 s
// after a restart of serve; e2e TestQuotaFilterReconnectKeepsTheShare).
// A named client's participants are kept: its next stream is the same
// participant. What a released Envoy admitted since its last report is
// charged when its next stream reports it; until then other Envoys of the
// same consumer may be granted the tokens it still holds (package doc,
// the bound). A process that dies without Close releases nothing: its
// unnamed participants hold their shares until their hold expires.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		open := s.openStreams()
		close(s.closing)
		s.release(open)
	})
}

// release drops the participants of the unnamed streams among sts from
// the account, once each stream's settlement under way (if any) is done.
func (s *Server) release(sts []*stream) {
	t := s.table.Load()
	if t == nil {
		return
	}
	var rel []Settlement
	for _, st := range sts {
		if st.client != "" {
			continue
		}
		st.sendMu.Lock() // an exchange under way settles first
		st.mu.Lock()
		for _, bs := range st.buckets {
			if _, limits, ok := bs.parse(t); ok && len(limits) > 0 {
				rel = append(rel, Settlement{Participant: bs.participant, Limits: limits, Release: true})
			}
		}
		st.mu.Unlock()
		st.sendMu.Unlock()
	}
	if len(rel) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if _, errs := settleBatch(ctx, s.opts.Account, rel); firstErr(errs) != nil {
		s.log.Warn("rlqs: the stopping server could not release its streams' shares; they expire with their hold",
			"participants", len(rel), "err", firstErr(errs))
		return
	}
	s.log.Info("rlqs: released the shares of the stopping server's streams", "participants", len(rel))
}
