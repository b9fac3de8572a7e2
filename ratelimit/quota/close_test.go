package quota

import (
	"context"
	"testing"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"

	"github.com/tollgate/tollgate/policy/ir"
)

// slowRelease is an account whose Release settlements take d longer (a
// slow or distant Redis, a large batch of participants).
type slowRelease struct {
	Account
	d time.Duration
}

func (a slowRelease) Settle(ctx context.Context, s Settlement) ([]KeyState, error) {
	if s.Release {
		time.Sleep(a.d)
	}
	return a.Account.Settle(ctx, s)
}

// startedOn is a server on acct with the test table.
func startedOn(t *testing.T, acct Account) *Server {
	t.Helper()
	s := New(Options{Account: acct, AbandonAfter: -1})
	if _, err := s.Swap(testConfig(ir.FailOpen)); err != nil {
		t.Fatal(err)
	}
	return s
}

// afterRestart is what an unnamed stream to a new server on acct is
// assigned for alice's bucket (10 a minute, 2 charged before).
func afterRestart(t *testing.T, acct Account) string {
	t.Helper()
	st, _ := dialServerAs(t, startedOn(t, acct), "")
	return exchange(t, st, inbox(st), tick(consumerBucket("tiny"), 0, 0))
}

// TestGracefulStopReleasesBeforeItEnds: serve stops as Run's context ends
// and then the gRPC server stops gracefully (cli: stopGRPC), after which
// the process exits; the release of the unnamed streams' participants
// must be done by then. It ran after the streams ended, in Close on Run's
// goroutine, so GracefulStop returned, and the process could exit, before
// it reached the account: with a release taking 200 ms the restarted
// server's stream was a newcomer, DENY_ALL (the cut the release exists to
// prevent), and `tollgate serve --only ratelimit` exits right after
// GracefulStop.
func TestGracefulStopReleasesBeforeItEnds(t *testing.T) {
	for name, acct := range accountKinds(t) {
		t.Run(name, func(t *testing.T) {
			acct := acct()
			first := startedOn(t, slowRelease{acct, 200 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan struct{})
			go func() { defer close(ran); first.Run(ctx) }()
			st, g := dialServerAs(t, first, "")
			if got := exchange(t, st, inbox(st), usage(consumerBucket("tiny"), 2, 0)); got != "ALLOW_ALL; bucket 8, 10 per 1m0s" {
				t.Fatalf("first server: %s", got)
			}
			cancel()
			g.GracefulStop() // then serve exits
			if got := afterRestart(t, acct); got != "ALLOW_ALL; bucket 8, 10 per 1m0s" {
				t.Errorf("after a graceful stop: %s; want the whole rate (the stopped stream's participant released)", got)
			}
			<-ran
		})
	}
}

// TestClosedStreamIsNotSettledAgain: a push settled for a stream of a
// stopping server after its participant was released (another stream's
// report rebalancing it, shrink; or a recovery push) put the participant
// back in the account, held for AssignmentTTL + holdMargin: its Envoy,
// reconnected, was a newcomer again, DENY_ALL.
func TestClosedStreamIsNotSettledAgain(t *testing.T) {
	for name, acct := range accountKinds(t) {
		t.Run(name, func(t *testing.T) {
			acct := acct()
			first := startedOn(t, acct)
			st, _ := dialServerAs(t, first, "")
			if got := exchange(t, st, inbox(st), usage(consumerBucket("tiny"), 2, 0)); got != "ALLOW_ALL; bucket 8, 10 per 1m0s" {
				t.Fatalf("first server: %s", got)
			}
			open := first.openStreams()
			if len(open) != 1 {
				t.Fatalf("%d open streams, want 1", len(open))
			}
			first.Close()
			first.shrink(context.Background(), first.table.Load(), open[0], []string{bucketKey(&rlqsv3.BucketId{Bucket: consumerBucket("tiny")})})
			if got := afterRestart(t, acct); got != "ALLOW_ALL; bucket 8, 10 per 1m0s" {
				t.Errorf("after a push to the stopped stream: %s; want the whole rate (its participant stays released)", got)
			}
		})
	}
}
