package controlplane

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/xds"
)

// BenchmarkPush1000Routes: a push that adds a route to a policy of 1,000
// routes, from the push's start until its snapshot is set, through the
// real xDS server (no proxy connected, so no ACK wait; set-ms is the
// median time from the push's start to its snapshot set) and a store that
// syncs its files. cpu-ms/op is the process's CPU time per push.
func BenchmarkPush1000Routes(b *testing.B) {
	ctx := context.Background()
	st, err := store.OpenDir(b.TempDir(), 0)
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var start time.Time
	var set []time.Duration
	srv := xds.New(ctx, xds.Options{Logger: quiet, OnStep: func(int, time.Duration) { set = append(set, time.Since(start)) }})
	c := New(quiet, st, srv, Options{})
	policies := [2][]store.File{manyRoutes(1000, 0), manyRoutes(1000, 1)}
	if _, err := c.Push(ctx, policies[0], "push", "bench"); err != nil {
		b.Fatal(err)
	}
	cpu0, i := cpuTime(), 1
	set = set[:0]
	for b.Loop() {
		start = time.Now()
		if _, err := c.Push(ctx, policies[i%2], "push", "bench"); err != nil {
			b.Fatal(err)
		}
		i++
	}
	slices.Sort(set)
	b.ReportMetric(float64(set[len(set)/2])/float64(time.Millisecond), "set-ms")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// cpuTime is the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
