package quota

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/tollgate/tollgate/policy/ir"
)

// dialAs serves s over an in-memory listener and opens a stream that
// names its client client (ir.RateLimitQuotaClientHeader; "" for none);
// kill stops the gRPC server at once without closing s, as a killed
// process.
func dialAs(t *testing.T, s *Server, client string) (st rlqsStream, kill func()) {
	t.Helper()
	st, g := dialServerAs(t, s, client)
	return st, g.Stop
}

// restartedAs is what a client's bucket (alice's, 10 a minute) is
// assigned by a restarted server on the same account: the first server
// answered the client's stream (client a) with her 2 requests charged;
// then it stopped (graceful: Close; else killed), and the client
// reconnected to a second server as client b.
func restartedAs(t *testing.T, acct Account, a, b string, graceful bool) string {
	t.Helper()
	first := New(Options{Account: acct, AbandonAfter: -1})
	if _, err := first.Swap(testConfig(ir.FailOpen)); err != nil {
		t.Fatal(err)
	}
	st, kill := dialAs(t, first, a)
	if got := exchange(t, st, inbox(st), usage(consumerBucket("tiny"), 2, 0)); got != "ALLOW_ALL; bucket 8, 10 per 1m0s" {
		t.Fatalf("first server: %s", got)
	}
	if graceful {
		first.Close()
	}
	kill()
	second := New(Options{Account: acct, AbandonAfter: -1})
	if _, err := second.Swap(testConfig(ir.FailOpen)); err != nil {
		t.Fatal(err)
	}
	st2, _ := dialAs(t, second, b)
	return exchange(t, st2, inbox(st2), tick(consumerBucket("tiny"), 0, 0))
}

// TestReconnectedClientKeepsItsShare: a client that names itself
// (Tollgate's Envoy module) is the same participant of the account on
// the stream it opens to a restarted server (or another replica), killed
// or stopped: its bucket is assigned what the limit has left at the whole
// rate. A stream without a name (Envoy's filter) is its own participant:
// after a graceful stop, which released it, it gets the same; after a
// kill it is a newcomer while the ended stream's participant still holds
// the limit (for AssignmentTTL + holdMargin): its floor share, 0.05 of 10
// a minute, is below one token a minute, so DENY_ALL — what every
// reconnected client got before (e2e TestQuotaModuleReconnectKeepsTheShare:
// 1 of 20 a second admitted against 1,000 a minute). Another named
// client's participant is never released: it is another Envoy's share. A
// malformed name counts as none.
func TestReconnectedClientKeepsItsShare(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	const full, floor = "ALLOW_ALL; bucket 8, 10 per 1m0s", "DENY_ALL"
	for name, acct := range accountKinds(t) {
		t.Run(name, func(t *testing.T) {
			for _, tt := range []struct {
				name, a, b string
				graceful   bool
				want       string
			}{
				{"same client killed", id, id, false, full},
				{"same client stopped", id, id, true, full},
				{"no client killed", "", "", false, floor},
				{"no client stopped", "", "", true, full},
				{"another client stopped", id, strings.ToUpper(id[:31]) + "0", true, floor},
				{"malformed client killed", "short", "short", false, floor},
			} {
				t.Run(tt.name, func(t *testing.T) {
					if got := restartedAs(t, acct(), tt.a, tt.b, tt.graceful); got != tt.want {
						t.Errorf("after the restart: %s, want %s", got, tt.want)
					}
				})
			}
		})
	}
}

// TestClientOf: the client id a stream declares is taken only when it is
// one value of 16 to 64 of [0-9A-Za-z_-].
func TestClientOf(t *testing.T) {
	for _, tt := range []struct {
		values []string
		want   string
	}{
		{nil, ""},
		{[]string{"0123456789abcdef"}, "0123456789abcdef"},
		{[]string{strings.Repeat("a", 64)}, strings.Repeat("a", 64)},
		{[]string{"A-b_0123456789abcdef"}, "A-b_0123456789abcdef"},
		{[]string{"0123456789abcde"}, ""},
		{[]string{strings.Repeat("a", 65)}, ""},
		{[]string{"0123456789abcdef|x"}, ""},
		{[]string{"0123456789abcdef", "0123456789abcdef"}, ""},
	} {
		md := metadata.MD{}
		for _, v := range tt.values {
			md.Append(ir.RateLimitQuotaClientHeader, v)
		}
		if got := clientOf(metadata.NewIncomingContext(context.Background(), md)); got != tt.want {
			t.Errorf("clientOf(%q) = %q, want %q", tt.values, got, tt.want)
		}
	}
}
