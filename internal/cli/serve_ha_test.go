package cli

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
)

// slowServer answers every call on any method after delay; a delay of 0
// never answers (a stream that never ends, like xDS).
func slowServer(t *testing.T, delay time.Duration, started chan<- struct{}) (*grpc.Server, string) {
	t.Helper()
	g := newGRPCServer(grpc.UnknownServiceHandler(func(_ any, s grpc.ServerStream) error {
		var in emptypb.Empty
		if err := s.RecvMsg(&in); err != nil {
			return err
		}
		started <- struct{}{}
		if delay == 0 {
			<-s.Context().Done()
			return s.Context().Err()
		}
		time.Sleep(delay)
		return s.SendMsg(&emptypb.Empty{})
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(l) }()
	return g, l.Addr().String()
}

func callSlow(addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return conn.Invoke(ctx, "/test.Slow/Call", &emptypb.Empty{}, &emptypb.Empty{})
}

func TestStopGRPCFinishesInFlightCalls(t *testing.T) {
	started := make(chan struct{}, 1)
	g, addr := slowServer(t, 300*time.Millisecond, started)
	res := make(chan error, 1)
	go func() { res <- callSlow(addr) }()
	<-started
	stopGRPC(g, 5*time.Second)
	if err := <-res; err != nil {
		t.Fatalf("an in-flight call failed during a graceful stop: %v", err)
	}
	if err := callSlow(addr); err == nil {
		t.Fatal("a call after the stop succeeded")
	}
}

func TestStopGRPCForcesAfterGrace(t *testing.T) {
	started := make(chan struct{}, 1)
	g, addr := slowServer(t, 0, started)
	res := make(chan error, 1)
	go func() { res <- callSlow(addr) }()
	<-started
	start := time.Now()
	stopGRPC(g, 200*time.Millisecond)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stop took %s with a 200ms grace", d)
	}
	if err := <-res; err == nil {
		t.Fatal("a never-ending call succeeded")
	}
}
