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
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/jwttest"
	"github.com/tollgate/tollgate/internal/loadgen"
)

// policy is the gateway every Tollgate stack serves; the mode line
// (exact or quota) is the only difference between the stacks, besides
// rateLimits.ietfHeaders when shared.ietfHeaders is set (-ablate
// -ietf-headers).
const policy = `version: 1
auth:
  jwt:
    - {name: corp, issuer: %q, audiences: [%q], jwks: '%s', algorithms: [RS256], claims: {userId: sub, roles: roles}}
  apiKeys: {header: x-api-key}
rateLimits:
  mode: %s
%s  tiers: {bench: [{requests: 100000000, per: minute}]}
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

// ietfLine is the policy's rateLimits.ietfHeaders line: none when off, so
// that a release without the field (-tail -before) reads the policy too.
func ietfLine(on bool) string {
	if on {
		return "  ietfHeaders: true\n"
	}
	return ""
}

// procs are the child processes, killed at the end.
type procs []*exec.Cmd

// start runs bin in its own process group (killed with this process) and
// returns its pid.
func (p *procs) start(dir, name string, bin string, args []string, env ...string) (int, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return 0, err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr, cmd.Env = logf, logf, append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", name, err)
	}
	*p = append(*p, cmd)
	return cmd.Process.Pid, nil
}

func (p procs) stop() {
	for _, c := range p {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		_ = c.Wait()
	}
}

// shared is what every stack uses: one redis-server, one upstream, one
// tollgate binary, one identity provider.
type shared struct {
	dir, bin, up string
	upAddr       *net.TCPAddr
	redisPort    int
	redisPID     int
	iss          *jwttest.Issuer
	// ietfHeaders sets rateLimits.ietfHeaders in every stack's policy.
	ietfHeaders bool
	// module is Tollgate's Envoy module ("" when it could not be built).
	module string
}

// buildModule builds Tollgate's Envoy module (envoymodule/, cgo) into dir
// and returns its path, or "" when it cannot be built (no C compiler):
// the module rows are then left out.
func buildModule(dir string) string {
	out := filepath.Join(dir, envoymod.LibraryName)
	cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = "envoymodule"
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "pipeline bench: Envoy module not built, no module rows: %v\n%s", err, b)
		return ""
	}
	return out
}

// stack is one Envoy in front of its own `tollgate serve` (or, for the
// Envoy Gateway shape, envoyproxy/ratelimit) and the processes whose CPU
// its rows count.
type stack struct {
	name       string
	port       int // Envoy's listener
	envoyAdmin int // Envoy's admin port
	pids       map[string]int
	api        *admin.Client // nil for the Envoy Gateway shape
}

// upPort is the upstream's port.
func (sh *shared) upPort() int { return sh.upAddr.Port }

func addr(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }

// startTollgate starts `tollgate serve` with the policy in mode (on Redis
// database db) and an Envoy bootstrapped from it.
func startTollgate(sh *shared, ps *procs, mode string, db int) (*stack, error) {
	return startTollgateNamed(sh, ps, mode, mode, db)
}

// startTollgateNamed is startTollgate for the stack name (its directory
// and Envoy node), with more serve flags.
func startTollgateNamed(sh *shared, ps *procs, name, mode string, db int, serveArgs ...string) (*stack, error) {
	ports, err := loadgen.FreePorts(7)
	if err != nil {
		return nil, err
	}
	listener, xdsP, authzP, rlP, adminP, envoyAdmin, epP := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6]
	dir := filepath.Join(sh.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	pf := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(fmt.Sprintf(policy, sh.iss.Issuer, sh.iss.Audience, sh.iss.JWKS(), mode, ietfLine(sh.ietfHeaders), listener, sh.up)), 0o600); err != nil {
		return nil, err
	}
	if err := seedEpoch(addr(sh.redisPort), db); err != nil {
		return nil, err
	}
	token, err := admin.NewToken()
	if err != nil {
		return nil, err
	}
	tg, err := ps.start(dir, "tollgate", sh.bin, append([]string{"serve", "--policy", pf, "--data-dir", filepath.Join(dir, "store"),
		"--xds-addr", addr(xdsP), "--authz-addr", addr(authzP), "--ratelimit-addr", addr(rlP), "--admin-addr", addr(adminP),
		"--admin-token", token, "--extproc-addr", addr(epP), "--redis", fmt.Sprintf("redis://%s/%d", addr(sh.redisPort), db),
		"--key-pepper", benchPepper, "--log-level", "warn"}, serveArgs...))
	if err != nil {
		return nil, err
	}
	if err := loadgen.WaitHTTP("http://"+addr(adminP)+"/readyz", "", 30*time.Second); err != nil {
		return nil, err
	}
	boot, err := exec.Command(sh.bin, "bootstrap", "--gateway", "bench", "--node-id", "bench-"+name, "--xds", addr(xdsP),
		"--admin-port", fmt.Sprint(envoyAdmin)).Output()
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	ev, err := startEnvoy(dir, ps, boot, envoyAdmin, listener)
	if err != nil {
		return nil, err
	}
	return &stack{name: name, port: listener, envoyAdmin: envoyAdmin, pids: map[string]int{"envoy": ev, "tollgate": tg}, api: admin.NewClient(addr(adminP), token)}, nil
}

// startEnvoy runs Envoy (ENVOY_BIN, --concurrency 1) on the bootstrap and
// waits until it is ready and /plain or /jwt routes answer something.
func startEnvoy(dir string, ps *procs, boot []byte, adminPort, listener int, env ...string) (int, error) {
	f := filepath.Join(dir, "envoy.yaml")
	if err := os.WriteFile(f, boot, 0o600); err != nil {
		return 0, err
	}
	bin := os.Getenv("ENVOY_BIN")
	if bin == "" {
		bin = ".tools/bin/envoy"
	}
	pid, err := ps.start(dir, "envoy", bin, []string{"-c", f, "--concurrency", "1", "--disable-hot-restart", "--log-level", "warn",
		"--base-id", fmt.Sprint(adminPort)}, env...)
	if err != nil {
		return 0, err
	}
	if err := loadgen.WaitHTTP(fmt.Sprintf("http://127.0.0.1:%d/ready", adminPort), "", 30*time.Second); err != nil {
		return 0, err
	}
	return pid, loadgen.WaitTCP(addr(listener), 30*time.Second)
}

// startShared starts redis-server and the upstream, builds tollgate and
// makes the identity provider.
func startShared(dir string, ps *procs) (*shared, error) {
	port, err := loadgen.FreePort()
	if err != nil {
		return nil, err
	}
	pid, err := ps.start(dir, "redis", "redis-server", []string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"})
	if err != nil {
		return nil, err
	}
	up, err := upstream()
	if err != nil {
		return nil, err
	}
	upAddr, err := net.ResolveTCPAddr("tcp", up)
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
	sh := &shared{dir: dir, bin: bin, up: up, upAddr: upAddr, redisPort: port, redisPID: pid, iss: iss, module: buildModule(dir)}
	if err := loadgen.WaitTCP(addr(port), 10*time.Second); err != nil {
		return sh, err
	}
	return sh, nil
}

// seedEpoch stores benchEpoch as the API-key store's epoch in database db
// of the Redis at a, before the stack's control plane starts (which then
// keeps it), so the keys signedKeys mints are of the current epoch.
func seedEpoch(a string, db int) error {
	c := redis.NewClient(&redis.Options{Addr: a, DB: db})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Set(ctx, "tollgate:apikey:{exceptions}:epoch", benchEpoch, 0).Err(); err != nil {
		return fmt.Errorf("seed the key-store epoch: %w", err)
	}
	return nil
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
