package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/internal/loadgen"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/upstream"
	"github.com/tollgate/tollgate/xds"
)

// convergenceRow pushes `pushes` policy changes to a real Envoy serving n
// routes and times each from the start of the push until Envoy serves the
// route it added.
func convergenceRow(n, pushes int, stats string, m *measure) (string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "tollgate-bench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	up, err := upstream.Start("", "bench")
	if err != nil {
		return "", err
	}
	defer up.Close()
	srv := xds.New(ctx, xds.Options{Logger: quiet(), AckTimeout: 10 * time.Second,
		OnStep: func(_ int, d time.Duration) { m.stage("step"); m.addStep(d) }})
	ctl, err := newController(filepath.Join(dir, "store"), srv, m)
	if err != nil {
		return "", err
	}
	port, err := loadgen.FreePort()
	if err != nil {
		return "", err
	}
	push := func(probes int) (*time.Time, error) {
		files := []store.File{{Name: "bench.yaml", Content: policyYAML(n, port, up.Addr(), probes, stats)}}
		m.reset()
		start := time.Now()
		_, err := ctl.Push(ctx, files, "push", "bench")
		return &start, err
	}
	if _, err := push(0); err != nil {
		return "", err
	}
	xdsAddr, stopGRPC, err := serveXDS(srv)
	if err != nil {
		return "", err
	}
	defer stopGRPC()
	proxy, cgOut, err := startEnvoy(ctx, dir, xdsAddr, m.envoy)
	if err != nil {
		return "", err
	}
	defer stopEnvoy(proxy)
	client := &http.Client{Timeout: 5 * time.Second}
	if err := waitServed(ctx, client, fmt.Sprintf("http://127.0.0.1:%d/svc0/r0", port), m.envoy.startTimeout()); err != nil {
		return "", fmt.Errorf("envoy never served the initial policy: %w", err)
	}
	time.Sleep(settle)
	m.rssServed, _ = memStatus()
	if m.onFirst != nil {
		m.onFirst()
	}
	var served, acked []time.Duration
	if err := m.envoy.zero(proxy.Process.Pid); err != nil {
		return "", err
	}
	for k := 1; k <= pushes; k++ {
		cpu0, self0 := procCPU(proxy.Process.Pid), procCPU(os.Getpid())
		m.last = k == pushes
		startAt, err := push(k)
		if err != nil {
			return "", err
		}
		m.selfCPU = append(m.selfCPU, procCPU(os.Getpid())-self0)
		acked = append(acked, time.Since(*startAt))
		if err := waitServed(ctx, client, fmt.Sprintf("http://127.0.0.1:%d/probe-%d/x", port, k-1), 30*time.Second); err != nil {
			return "", err
		}
		served = append(served, time.Since(*startAt))
		m.done(acked[len(acked)-1], served[len(served)-1], procCPU(proxy.Process.Pid)-cpu0)
	}
	if cgOut != "" {
		ir, err := m.envoy.instructions(proxy.Process.Pid, cgOut)
		if err != nil {
			return "", err
		}
		m.envoyIr = ir / int64(pushes)
	}
	time.Sleep(settle)
	m.rssAfter, m.hw = memStatus()
	if m.afterPushes != nil {
		m.afterPushes()
	}
	return fmt.Sprintf("| %s | %d | %s | %s | %s | %s |", label(n, stats), pushes, ms(median(served)), ms(maxOf(served)), ms(median(acked)), m.rss()), nil
}

// serveXDS serves srv on a free loopback port.
func serveXDS(srv *xds.Server) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	g := grpc.NewServer()
	srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	return ln.Addr().String(), g.Stop, nil
}

// startEnvoy starts Envoy with Tollgate's bootstrap (as o changes it) and
// returns it, with the file callgrind writes to when o runs it under
// callgrind.
func startEnvoy(ctx context.Context, dir, xdsAddr string, o envoyOptions) (*exec.Cmd, string, error) {
	bin, err := envoy.FindBinary()
	if err != nil {
		return nil, "", err
	}
	adminPort, err := loadgen.FreePort()
	if err != nil {
		return nil, "", err
	}
	b, err := envoy.Bootstrap(envoy.BootstrapOptions{NodeID: "bench-0", Gateway: "bench", XDSAddress: xdsAddr, AdminPort: uint32(adminPort)})
	if err != nil {
		return nil, "", err
	}
	o.bootstrap(b)
	boot, err := envoy.YAML(b)
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, "envoy.yaml")
	if err := os.WriteFile(path, boot, 0o600); err != nil {
		return nil, "", err
	}
	logf, err := os.Create(filepath.Join(dir, "envoy.log"))
	if err != nil {
		return nil, "", err
	}
	args, cgOut := o.wrap(dir, []string{bin, "-c", path, "--use-dynamic-base-id", "--concurrency", "1", "--log-level", "warn"})
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd, cgOut, cmd.Start()
}

func stopEnvoy(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

// waitServed polls url until it answers 200.
func waitServed(ctx context.Context, c *http.Client, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(time.Millisecond) // tight poll: the measured quantity is this latency
	}
	return fmt.Errorf("%s not served within %s", url, timeout)
}

// procCPU returns the CPU time (user and system, all threads) process pid
// used so far, at the kernel's clock-tick resolution (10 ms).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// settle is how long after the last push its resident memory is measured:
// the controller returns a push's memory to the system 2 s after it.
const settle = 3 * time.Second
