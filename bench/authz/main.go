// Command authz benchmarks the ext_authz service: Check() latency
// in-process, and requests per second through one real Envoy with no
// auth, with our ext_authz JWT check, and with Envoy's native jwt_authn
// filter on the same JWKS, side by side. `make bench` runs it; results go
// to bench/README.md.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz"
	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/jwttest"
	"github.com/tollgate/tollgate/internal/loadgen"
	"github.com/tollgate/tollgate/policy/ir"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "authz bench:", err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	iss, err := jwttest.New("https://idp.bench/", "api.bench")
	if err != nil {
		return err
	}
	keys := apikey.NewMemoryStore([]byte("bench-pepper-0123456789"))
	svc := extauthz.New(context.Background(), extauthz.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Keys: keys})
	defer svc.Close()
	if _, err := svc.Swap(policy(iss)); err != nil {
		return err
	}
	fmt.Fprintf(w, "machine: %s/%s, %d CPUs (GOMAXPROCS %d)\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	if err := checkTable(w, svc, iss, keys); err != nil {
		return err
	}
	return envoyTable(w, svc, iss)
}

// policy is one JWT provider with the issuer's inline JWKS, and API keys.
func policy(iss *jwttest.Issuer) *ir.Config {
	return &ir.Config{Auth: ir.Auth{
		JWT: []ir.JWTProvider{{Name: "corp", Issuer: iss.Issuer, Audiences: []string{iss.Audience}, JWKS: iss.JWKS(),
			Algorithms: []string{"RS256"}, ClockSkew: 30 * time.Second, MaxLifetime: 24 * time.Hour,
			Claims: ir.ClaimMap{UserID: "sub", Roles: "roles"}}},
		APIKeys:         &ir.APIKeys{Header: "x-api-key"},
		IdentityHeaders: ir.IdentityHeaders{UserID: "x-user-id", Roles: "x-user-roles", Tenant: "x-tenant-id", Tier: "x-consumer-tier"},
	}}
}

// envoyTable runs the three listeners of one Envoy under the same load.
func envoyTable(w io.Writer, svc *extauthz.Service, iss *jwttest.Issuer) error {
	dir, err := os.MkdirTemp("", "tollgate-authz-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, stop, err := startBackends(svc)
	if err != nil {
		return err
	}
	defer stop()
	cmd, err := startEnvoy(dir, p, iss)
	if err != nil {
		return err
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
	tok, err := iss.Token("alice", []string{"user"}, time.Hour, 0)
	if err != nil {
		return err
	}
	if err := sanity(p, tok); err != nil {
		return err
	}
	const conns = 16
	fmt.Fprintf(w, "\nEnvoy 1.40 (--concurrency 1), %d keep-alive connections, 1 s warm-up + 5 s per row, one valid RS256 token:\n\n", conns)
	fmt.Fprintln(w, "| listener | requests/s | p50 | p99 | errors |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	bearer := func(int) string { return "Bearer " + tok }
	for _, s := range []struct {
		name string
		port int
		h    func(int) string
	}{{"no auth", p.plain, func(int) string { return "" }}, {"tollgate ext_authz (JWT)", p.extAuthz, bearer}, {"Envoy jwt_authn (JWT)", p.jwtAuthn, bearer}} {
		fmt.Fprintln(w, loadgen.Run(fmt.Sprintf("http://127.0.0.1:%d/x", s.port), s.h, conns, time.Second, 5*time.Second).Row(s.name))
	}
	return nil
}

// startBackends starts the upstream and the authz gRPC server.
func startBackends(svc *extauthz.Service) (ports, func(), error) {
	var p ports
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return p, nil, err
	}
	az, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		up.Close()
		return p, nil, err
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	go func() { _ = hs.Serve(up) }()
	g := grpc.NewServer()
	svc.Register(g)
	go func() { _ = g.Serve(az) }()
	p.upstream, p.authz = up.Addr().(*net.TCPAddr).Port, az.Addr().(*net.TCPAddr).Port
	for _, q := range []*int{&p.admin, &p.plain, &p.extAuthz, &p.jwtAuthn} {
		if *q, err = loadgen.FreePort(); err != nil {
			return p, nil, err
		}
	}
	return p, func() { g.Stop(); hs.Close() }, nil
}

// startEnvoy writes, validates and starts the bootstrap, then waits for /ready.
func startEnvoy(dir string, p ports, iss *jwttest.Issuer) (*exec.Cmd, error) {
	bin, err := envoy.FindBinary()
	if err != nil {
		return nil, err
	}
	b, err := bootstrap(p, iss.Issuer, iss.Audience, iss.JWKS())
	if err != nil {
		return nil, err
	}
	js, err := envoy.JSON(b)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "envoy.json")
	if err := os.WriteFile(path, js, 0o600); err != nil {
		return nil, err
	}
	if out, err := envoy.ValidateConfigFile(context.Background(), bin, path); err != nil {
		return nil, fmt.Errorf("envoy rejected the bench bootstrap: %w\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "envoy.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", path, "--concurrency", "1", "--disable-hot-restart", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, loadgen.WaitHTTP(fmt.Sprintf("http://127.0.0.1:%d/ready", p.admin), "", 30*time.Second)
}

// sanity checks both auth listeners refuse a missing token and accept ours.
func sanity(p ports, tok string) error {
	for _, port := range []int{p.extAuthz, p.jwtAuthn} {
		url := fmt.Sprintf("http://127.0.0.1:%d/x", port)
		if c := loadgen.Status(url, ""); c != http.StatusUnauthorized {
			return fmt.Errorf("listener %d without a token: %d, want 401", port, c)
		}
		if c := loadgen.Status(url, "Bearer "+tok); c != http.StatusOK {
			return fmt.Errorf("listener %d with a valid token: %d, want 200", port, c)
		}
	}
	return nil
}
