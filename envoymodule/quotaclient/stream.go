package quotaclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/tollgate/tollgate/policy/ir"
)

// Keepalive of the connections: a ping after keepaliveTime without
// activity, the connection closed when unanswered for keepaliveTimeout.
const (
	keepaliveTime    = 30 * time.Second
	keepaliveTimeout = 10 * time.Second
)

// conns holds one gRPC connection per quota server address, created on
// first use and kept until the Client closes (gRPC reconnects them).
type conns struct {
	m map[string]*grpc.ClientConn
}

func newConns() *conns { return &conns{m: map[string]*grpc.ClientConn{}} }

// get returns addr's connection. Its reconnection backoff is capped at
// maxRetryDelay, as the stream's retries are: gRPC's default (up to
// 120 s) would keep a restarted server unreached long after it listens.
// Keepalive pings (every keepaliveTime while a stream is open) find a
// server host that vanished without closing the connection; Tollgate's
// gRPC server accepts pings every 15 s or more (internal/cli/serve.go).
func (c *conns) get(addr string) (*grpc.ClientConn, error) {
	if conn, ok := c.m[addr]; ok {
		return conn, nil
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: maxRetryDelay},
			MinConnectTimeout: attemptTimeout,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}))
	if err != nil {
		return nil, fmt.Errorf("rlqs client: connection to %q: %w", addr, err)
	}
	c.m[addr] = conn
	return conn, nil
}

// close closes every connection.
func (c *conns) close() {
	for _, conn := range c.m {
		_ = conn.Close()
	}
	clear(c.m)
}

// stream is one open RLQS stream.
type stream struct {
	addr   string
	s      grpc.BidiStreamingClient[rlqsv3.RateLimitQuotaUsageReports, rlqsv3.RateLimitQuotaResponse]
	cancel context.CancelFunc
}

var errAttemptTimeout = errors.New("no response headers in time")

// openStream opens an RLQS stream on conn, naming the client client
// (ir.RateLimitQuotaClientHeader), and waits for the server's
// response headers (at most attemptTimeout: an unreachable address must
// not hold the loop); its receiver then hands every response, and the
// error that ends the stream, to events tagged gen. The stream lives
// until close or until parent ends.
func openStream(parent context.Context, conn *grpc.ClientConn, addr, client string, gen uint64, events chan<- event,
	safely func(string, func())) (*stream, error) {
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(parent, ir.RateLimitQuotaClientHeader, client))
	conn.ResetConnectBackoff() // this attempt, not gRPC's backoff, decides when to dial
	timer := time.AfterFunc(attemptTimeout, cancel)
	s, err := rlqsv3.NewRateLimitQuotaServiceClient(conn).StreamRateLimitQuotas(ctx)
	if err == nil {
		_, err = s.Header()
	}
	if !timer.Stop() {
		err = errAttemptTimeout
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("rlqs stream: %w", err)
	}
	st := &stream{addr: addr, s: s, cancel: cancel}
	go safely("receive", func() { receive(ctx, s, gen, events) })
	return st, nil
}

// receive hands the stream's responses to events until the stream ends,
// then its error.
func receive(ctx context.Context, s grpc.BidiStreamingClient[rlqsv3.RateLimitQuotaUsageReports, rlqsv3.RateLimitQuotaResponse],
	gen uint64, events chan<- event) {
	for {
		r, err := s.Recv()
		select {
		case events <- event{gen: gen, resp: r, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// send sends one report, giving up (and ending the stream) after
// sendTimeout: a server that stops reading must not hold the loop.
func (st *stream) send(r *rlqsv3.RateLimitQuotaUsageReports) error {
	timer := time.AfterFunc(sendTimeout, st.cancel)
	err := st.s.Send(r)
	timer.Stop()
	if err != nil {
		return fmt.Errorf("rlqs report: %w", err)
	}
	return nil
}

// close ends the stream.
func (st *stream) close() { st.cancel() }
