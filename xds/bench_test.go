package xds

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"

	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/xds/translator"
)

// BenchmarkServeRouteChange: the xDS side of pushes that each change one
// route of a gateway of 1,000 or 10,000 routes over 10 backends (the
// convergence benchmark's gateway):
// TranslateValidated with the served version's routes, the hashing
// Prepare does, the snapshot, and the delta response go-control-plane
// builds for the route tables (the bytes sent to a proxy). cpu-ms/op is
// the process's CPU time per push (GC included; the machine's load does
// not change it as it changes ns/op).
func BenchmarkServeRouteChange(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			routes := benchRoutes(n)
			cfgs := [2]*ir.Config{gatewayConfig(routes)}
			routes["/r00007"] = "b3" // another backend for one route
			cfgs[1] = gatewayConfig(routes)
			prev, err := translator.TranslateValidated(cfgs[0], "g", translator.Options{}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			c := cache.NewSnapshotCache(true, cache.IDHash{}, nil)
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			i := 0
			for b.Loop() {
				i++
				next, err := translator.TranslateValidated(cfgs[i%2], "g", translator.Options{}, prev, nil)
				if err != nil {
					b.Fatal(err)
				}
				serveRoutes(b, c, next)
				prev = next
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
}

// benchRoutes returns n path prefixes, each to one of 10 backends.
func benchRoutes(n int) map[string]string {
	out := make(map[string]string, n)
	for i := range n {
		out[fmt.Sprintf("/r%05d", i)] = fmt.Sprintf("b%d", i%10)
	}
	return out
}

// serveRoutes hashes r, sets its snapshot in c and builds the delta
// response of its route tables.
func serveRoutes(b *testing.B, c cache.SnapshotCache, r *translator.Resources) {
	ts, err := newTypeSet(r, translator.KeyExceptions{})
	if err != nil {
		b.Fatal(err)
	}
	snap, err := ts.snapshot()
	if err != nil {
		b.Fatal(err)
	}
	if err := c.SetSnapshot(context.Background(), "n", snap); err != nil {
		b.Fatal(err)
	}
	out := make(chan cache.DeltaResponse, 1)
	req := &cache.DeltaRequest{Node: &core.Node{Id: "n"}, TypeUrl: resource.RouteType}
	cancel, err := c.CreateDeltaWatch(req, streamv3.NewDeltaSubscription(nil, nil, nil, true), out)
	if err != nil {
		b.Fatal(err)
	}
	if cancel != nil {
		defer cancel()
	}
	select {
	case resp := <-out:
		if _, err := resp.GetDeltaDiscoveryResponse(); err != nil {
			b.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		b.Fatal("no delta response")
	}
}

// cpuTime returns the process's CPU time (user and system).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
