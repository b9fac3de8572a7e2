// Command ratelimit benchmarks Tollgate's rate-limit service side by side
// with the reference service github.com/envoyproxy/ratelimit (installed by
// `make bench` with go install from the module proxy into .tools/bin) on
// the same Redis: decisions/s, p50/p99, Redis commands per decision, and
// exactness under concurrency. `make bench` runs it; results go to
// bench/README.md.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/tollgate/tollgate/internal/loadgen"
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit"
	"github.com/tollgate/tollgate/ratelimit/counter"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ratelimit bench:", err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	ref := os.Getenv("RATELIMIT_REF_BIN")
	if ref == "" {
		ref = filepath.Join(".tools", "bin", "ratelimit")
	}
	if _, err := os.Stat(ref); err != nil {
		return fmt.Errorf("reference service %s missing (make bench installs it): %w", ref, err)
	}
	dir, err := os.MkdirTemp("", "tollgate-rl-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	redisAddr, stopRedis, err := startRedis(dir)
	if err != nil {
		return err
	}
	defer stopRedis()
	fmt.Fprintf(w, "machine: %s/%s, %d CPUs; one redis-server 7 on loopback; 16 concurrent gRPC clients, 3 s per row\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	fmt.Fprintln(w, "| service | limits per request | decisions/s | p50 | p99 | Redis commands processed per decision (incl. inside scripts) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, limits := range []int{1, 3} {
		ours, err := oursRow(redisAddr, limits)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, ours)
		theirs, err := refRow(ref, dir, redisAddr, limits)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, theirs)
	}
	return exactness(w, ref, dir, redisAddr)
}

// oursRow serves Tollgate's service in-process over gRPC on Redis.
func oursRow(redisAddr string, limits int) (string, error) {
	addr, stop, err := serveOurs(redisAddr, limits, 1_000_000)
	if err != nil {
		return "", err
	}
	defer stop()
	r, err := measure(addr, redisAddr, oursRequest)
	if err != nil {
		return "", err
	}
	return r.row("tollgate", limits), nil
}

func serveOurs(redisAddr string, limits int, requests uint64) (string, func(), error) {
	c := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 64, ContextTimeoutEnabled: true})
	svc := ratelimit.New(ratelimit.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Backend: counter.NewOverLimitCache(counter.NewRedis(c, counter.RedisOptions{Timeout: time.Second}), time.Now)})
	if _, err := svc.Swap(benchPolicy(limits, requests)); err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	g := grpc.NewServer()
	svc.Register(g)
	go func() { _ = g.Serve(l) }()
	return l.Addr().String(), func() { g.Stop(); c.Close() }, nil
}

// benchPolicy is one tier with 1 or 3 limits and a route using it.
func benchPolicy(limits int, requests uint64) *ir.Config {
	all := []ir.Limit{
		{Requests: requests, Per: time.Minute, Unit: "minute"},
		{Requests: requests * 60, Per: time.Hour, Unit: "hour"},
		{Requests: requests * 1440, Per: 24 * time.Hour, Unit: "day"},
	}
	return &ir.Config{
		RateLimits: ir.RateLimits{Tiers: []ir.Tier{{Name: "bench", Limits: all[:limits]}}, DefaultTier: "bench", FailureMode: ir.FailOpen},
		Gateways: []ir.Gateway{{Name: "g", VirtualHosts: []ir.VirtualHost{{Name: "any", Routes: []ir.Route{
			{Name: "api", RateLimit: ir.RouteRateLimit{Enabled: true, Consumer: true}}}}}}},
	}
}

// refRow runs the reference service with an equivalent configuration.
func refRow(bin, dir, redisAddr string, limits int) (string, error) {
	addr, stop, err := startRef(bin, dir, redisAddr, limits, 1_000_000)
	if err != nil {
		return "", err
	}
	defer stop()
	r, err := measure(addr, redisAddr, refRequest(limits))
	if err != nil {
		return "", err
	}
	return r.row("envoyproxy/ratelimit", limits), nil
}

// startRedis runs a throwaway redis-server on a free loopback port.
func startRedis(dir string) (string, func(), error) {
	port, err := loadgen.FreePort()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	stop := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }
	if err := loadgen.WaitTCP(addr, 10*time.Second); err != nil {
		stop()
		return "", nil, err
	}
	return addr, stop, nil
}
