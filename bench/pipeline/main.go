// Command pipeline measures the whole edge pipeline through one real
// Envoy side by side: plain proxying, API key + rate limit, and JWT + rate
// limit, all served by `tollgate serve` with Redis. `make bench` runs it;
// results go to bench/README.md.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/jwttest"
	"github.com/tollgate/tollgate/internal/loadgen"
)

const policy = `version: 1
auth:
  jwt:
    - {name: corp, issuer: %q, audiences: [%q], jwks: '%s', algorithms: [RS256], claims: {userId: sub, roles: roles}}
  apiKeys: {header: x-api-key}
rateLimits:
  tiers: {bench: [{requests: 100000000, per: minute}]}
  defaultTier: bench
gateways:
  - {name: bench, listeners: [{name: http, port: %d, address: 127.0.0.1}]}
routes:
  - {name: plain, match: {pathPrefix: /plain}, backend: up, auth: none, rateLimit: none}
  - {name: key, match: {pathPrefix: /key}, backend: up, auth: {methods: [apiKey]}}
  - {name: jwt, match: {pathPrefix: /jwt}, backend: up, auth: {methods: [jwt]}}
backends:
  - {name: up, endpoints: [%q]}
`

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline bench:", err)
		os.Exit(1)
	}
}

// procs are the child processes, killed at the end.
type procs []*exec.Cmd

func (p *procs) start(dir, name string, bin string, args []string, env ...string) error {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr, cmd.Env = logf, logf, append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	*p = append(*p, cmd)
	return nil
}

func (p procs) stop() {
	for _, c := range p {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		_ = c.Wait()
	}
}

func run(w io.Writer) error {
	dir, err := os.MkdirTemp("", "tollgate-pipeline-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var ps procs
	defer ps.stop()
	st, err := setup(dir, &ps)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "machine: %s/%s, %d CPUs; Envoy 1.40 --concurrency 1, tollgate serve, redis-server, upstream and load generator on the same cores\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	fmt.Fprintln(w, "| pipeline | requests/s | p50 | p99 | errors |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	base := fmt.Sprintf("http://127.0.0.1:%d", st.port)
	for _, row := range []struct {
		name, path, authz string
	}{
		{"plain proxying", "/plain", ""},
		{"API key + rate limit", "/key", "ApiKey " + st.key},
		{"JWT + rate limit", "/jwt", "Bearer " + st.token},
	} {
		h := func(int) string { return row.authz }
		fmt.Fprintln(w, loadgen.Run(base+row.path+"/x", h, 16, time.Second, 5*time.Second).Row(row.name))
	}
	return nil
}

// stack is what the load needs: the listener port and the credentials.
type stack struct {
	port       int
	key, token string
}

// setup starts redis, an upstream, tollgate serve and Envoy.
func setup(dir string, ps *procs) (*stack, error) {
	ports, err := loadgen.FreePorts(8)
	if err != nil {
		return nil, err
	}
	redisPort, listener, xdsP, authzP, rlP, adminP, envoyAdmin, epP := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6], ports[7]
	if err := ps.start(dir, "redis", "redis-server", []string{"--port", fmt.Sprint(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}); err != nil {
		return nil, err
	}
	up, err := upstream()
	if err != nil {
		return nil, err
	}
	iss, err := jwttest.New("https://idp.bench/", "api.bench")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "tollgate")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/tollgate").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build tollgate: %w\n%s", err, out)
	}
	pf := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(fmt.Sprintf(policy, iss.Issuer, iss.Audience, iss.JWKS(), listener, up)), 0o600); err != nil {
		return nil, err
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	adminToken, err := admin.NewToken()
	if err != nil {
		return nil, err
	}
	if err := loadgen.WaitTCP(addr(redisPort), 10*time.Second); err != nil {
		return nil, err
	}
	if err := ps.start(dir, "tollgate", bin, []string{"serve", "--policy", pf, "--data-dir", filepath.Join(dir, "store"),
		"--xds-addr", addr(xdsP), "--authz-addr", addr(authzP), "--ratelimit-addr", addr(rlP), "--admin-addr", addr(adminP),
		"--admin-token", adminToken, "--extproc-addr", addr(epP), "--redis", "redis://" + addr(redisPort) + "/0", "--key-pepper", "bench-pepper-0123456789", "--log-level", "warn"}); err != nil {
		return nil, err
	}
	if err := loadgen.WaitHTTP("http://"+addr(adminP)+"/readyz", "", 30*time.Second); err != nil {
		return nil, err
	}
	if err := startEnvoy(dir, ps, bin, addr(xdsP), envoyAdmin); err != nil {
		return nil, err
	}
	if err := loadgen.WaitHTTP(fmt.Sprintf("http://127.0.0.1:%d/plain/x", listener), "", 30*time.Second); err != nil {
		return nil, err
	}
	return credentials(admin.NewClient(addr(adminP), adminToken), iss, listener)
}

// credentials creates an API key and a token and checks both are accepted.
func credentials(api *admin.Client, iss *jwttest.Issuer, port int) (*stack, error) {
	k, err := api.CreateKey(context.Background(), admin.CreateKeyRequest{Consumer: "bench", Tier: "bench"})
	if err != nil {
		return nil, err
	}
	tok, err := iss.Token("bench-user", nil, time.Hour, 0)
	if err != nil {
		return nil, err
	}
	st := &stack{port: port, key: k.Key, token: tok}
	for path, h := range map[string]string{"/key/x": "ApiKey " + st.key, "/jwt/x": "Bearer " + st.token} {
		if err := loadgen.WaitHTTP(fmt.Sprintf("http://127.0.0.1:%d%s", port, path), h, 30*time.Second); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func startEnvoy(dir string, ps *procs, bin, xds string, adminPort int) error {
	out, err := exec.Command(bin, "bootstrap", "--gateway", "bench", "--node-id", "bench-0", "--xds", xds,
		"--admin-port", fmt.Sprint(adminPort)).Output()
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	boot := filepath.Join(dir, "envoy.yaml")
	if err := os.WriteFile(boot, out, 0o600); err != nil {
		return err
	}
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" {
		envoyBin = ".tools/bin/envoy"
	}
	if err := ps.start(dir, "envoy", envoyBin, []string{"-c", boot, "--concurrency", "1", "--disable-hot-restart", "--log-level", "warn"}); err != nil {
		return err
	}
	return loadgen.WaitHTTP(fmt.Sprintf("http://127.0.0.1:%d/ready", adminPort), "", 30*time.Second)
}

func upstream() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() {
		_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	}()
	return l.Addr().String(), nil
}
