package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/internal/loadgen"
	"github.com/tollgate/tollgate/policy/ir"
)

// envoyReadyTimeout bounds Envoy's start-up.
const envoyReadyTimeout = 30 * time.Second

// startBackends serves the upstream (200 "ok") and the ext_authz gRPC
// service in-process, and picks the ports of Envoy's admin interface and
// listeners.
func startBackends(svc *authzService) (ports, func(), error) {
	var p ports
	ls := make([]net.Listener, 0, 2)
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeAll()
			return p, nil, fmt.Errorf("listen: %w", err)
		}
		ls = append(ls, l)
	}
	free, err := loadgen.FreePorts(4)
	if err != nil {
		closeAll()
		return p, nil, err
	}
	p.admin, p.plain, p.extAuthz, p.jwtAuthn = free[0], free[1], free[2], free[3]
	p.upstream, p.authz = ls[0].Addr().(*net.TCPAddr).Port, ls[1].Addr().(*net.TCPAddr).Port
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ls[0]) }()
	g := newGRPCServer()
	svc.Register(g)
	go func() { _ = g.Serve(ls[1]) }()
	return p, func() { g.Stop(); _ = hs.Close() }, nil
}

// newGRPCServer has the options `tollgate serve` gives its ext_authz
// server.
func newGRPCServer() *grpc.Server {
	return grpc.NewServer(
		grpc.MaxConcurrentStreams(1<<20),
		grpc.MaxRecvMsgSize(32<<20),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 5 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 15 * time.Second, PermitWithoutStream: true}),
	)
}

// writeBootstrap renders the bench bootstrap to dir/envoy.json and has
// Envoy validate it (--mode validate) before anything is started.
func writeBootstrap(ctx context.Context, dir, bin string, p ports, cfg *ir.Config) (string, error) {
	b, err := bootstrap(p, cfg)
	if err != nil {
		return "", err
	}
	js, err := envoy.JSON(b)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "envoy.json")
	if err := os.WriteFile(path, js, 0o600); err != nil {
		return "", fmt.Errorf("write bootstrap: %w", err)
	}
	if _, err := envoy.ValidateConfigFile(ctx, bin, path); err != nil {
		return "", fmt.Errorf("envoy rejected the bench bootstrap: %w", err)
	}
	return path, nil
}

// startEnvoy runs Envoy on the bootstrap with the given worker threads
// and waits until its admin interface reports it ready.
func startEnvoy(ctx context.Context, dir, bin, path string, adminPort, workers int) (*proc, error) {
	logPath := filepath.Join(dir, fmt.Sprintf("envoy-%d.log", workers))
	p, err := startProc("envoy", logPath, bin, "-c", path, "--concurrency", strconv.Itoa(workers),
		"--disable-hot-restart", "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	ready := fmt.Sprintf("http://127.0.0.1:%d/ready", adminPort)
	if err := waitFor(ctx, p, envoyReadyTimeout, func(ctx context.Context) error { return httpOK(ctx, ready) }); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// envoyJWTCache returns the jwt_authn listener's per-token cache hits and
// misses from Envoy's admin /stats.
func envoyJWTCache(ctx context.Context, adminPort int) (hits, misses int64, err error) {
	prefix := "http." + jwtAuthnListener + ".jwt_authn."
	url := fmt.Sprintf("http://127.0.0.1:%d/stats?filter=%s", adminPort, "jwt_cache_")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("envoy stats: %w", err)
	}
	defer resp.Body.Close()
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ": ")
		n, perr := strconv.ParseInt(v, 10, 64)
		switch {
		case !ok || perr != nil:
		case name == prefix+"jwt_cache_hit":
			hits, found = n, found+1
		case name == prefix+"jwt_cache_miss":
			misses, found = n, found+1
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("envoy stats: %w", err)
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("envoy stats: no %sjwt_cache_hit/miss counters", prefix)
	}
	return hits, misses, nil
}
