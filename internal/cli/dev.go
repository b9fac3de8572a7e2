package cli

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/upstream"
)

//go:embed devpolicy.yaml
var devPolicy []byte

// devUpstreams are the demo services of devpolicy.yaml.
var devUpstreams = []struct{ addr, name string }{
	{"127.0.0.1:9001", "users-1"}, {"127.0.0.1:9002", "users-2"}, {"127.0.0.1:9003", "orders-1"},
}

func newDevCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything locally: control plane, a real Envoy and demo upstreams on the embedded demo policy",
		Long: `Dev starts, on fixed loopback ports, everything needed to try Tollgate:
  - the control plane (tollgate serve): xDS on 127.0.0.1:18000, the admin API on 127.0.0.1:9900
    (its token is generated into the user config dir, where the CLI finds it), ext_authz, the
    rate-limit service and ext_proc on 18001-18003, with API keys in memory;
  - a real Envoy (gateway "dev") on http://127.0.0.1:8080, admin on 127.0.0.1:9901, found by
    $ENVOY_BIN, .tools/bin/envoy or $PATH ('make tools' installs it);
  - three demo upstreams on 127.0.0.1:9001-9003 that echo each request as JSON;
  - a local JWT issuer on http://127.0.0.1:9004 serving its key set (a new ES256 key each start).
It serves the embedded demo policy (API keys, JWTs, tiers free/pro/enterprise, rewrites, an XML
transform), creates a demo API key and a JWT valid 24 h, and prints them with commands to try.
Ctrl-C stops everything and removes the temporary directory, unless --data-dir was given.`,
		Example: `  tollgate dev
  tollgate dev --data-dir ./dev-data   # keep the store and Envoy's log after exit`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDev(ctx, cmd.OutOrStdout(), dataDir, newLogger(cmd, "info", "text"))
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "policy store and log directory, kept on exit (default: a new temporary directory, removed on exit)")
	return cmd
}

// devSession is what dev prints for the user to try.
type devSession struct {
	dir, policyPath, tokenFile string
	key, jwt                   string
}

// runDev starts the demo upstreams, the JWT issuer, the control plane and
// Envoy, prints what to try, and stops everything when ctx ends.
func runDev(ctx context.Context, out io.Writer, dataDir string, log *slog.Logger) error {
	bin, err := envoy.FindBinary()
	if err != nil {
		return fmt.Errorf("%w (run 'make tools' first)", err)
	}
	dir, cleanup, err := devDir(dataDir)
	if err != nil {
		return err
	}
	defer cleanup() // runs last: after Envoy and the control plane stopped
	sess := devSession{dir: dir, policyPath: filepath.Join(dir, "policy.yaml")}
	if sess.jwt, err = startDevServices(ctx); err != nil {
		return err
	}
	if err := os.WriteFile(sess.policyPath, devPolicy, 0o600); err != nil {
		return fmt.Errorf("write demo policy: %w", err)
	}
	o := defaultServeOptions()
	o.policyPath, o.dataDir = sess.policyPath, filepath.Join(dir, "store")
	cp, err := startControlPlane(ctx, o, log)
	if err != nil {
		return err
	}
	defer cp.stop(5 * time.Second)
	sess.tokenFile = cp.tokenFile
	sess.key, _, err = cp.keys.Create(ctx, apikey.Record{Consumer: "demo", Tier: "free", Roles: []string{"user"}, CreatedAt: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("create the demo API key: %w", err)
	}
	proxy, err := startDevEnvoy(ctx, bin, dir)
	if err != nil {
		return err
	}
	defer stopProcess(proxy)
	if err := waitEnvoyReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/ready", envoy.DefaultAdminPort), 30*time.Second); err != nil {
		return fmt.Errorf("envoy did not become ready (log: %s): %w", filepath.Join(dir, "envoy.log"), err)
	}
	printDevHelp(out, sess)
	<-ctx.Done()
	return nil
}

// startDevServices starts the demo upstreams and the JWT issuer, and
// returns a token of the issuer.
func startDevServices(ctx context.Context) (string, error) {
	for _, u := range devUpstreams {
		if _, err := upstream.Serve(ctx, u.addr, u.name); err != nil {
			return "", err
		}
	}
	issuer, err := newDevIssuerKey()
	if err != nil {
		return "", err
	}
	if err := issuer.serveJWKS(ctx); err != nil {
		return "", err
	}
	return issuer.token("dev-user", []string{"user"}, time.Now())
}

// devDir returns dataDir, or a new temporary directory that cleanup
// removes.
func devDir(dataDir string) (dir string, cleanup func(), err error) {
	if dataDir != "" {
		return dataDir, func() {}, os.MkdirAll(dataDir, 0o700)
	}
	d, err := os.MkdirTemp("", "tollgate-dev-")
	if err != nil {
		return "", nil, fmt.Errorf("create dev directory: %w", err)
	}
	return d, func() { _ = os.RemoveAll(d) }, nil
}

// startDevEnvoy writes the dev gateway's bootstrap and starts Envoy on it,
// logging to envoy.log in dir.
func startDevEnvoy(ctx context.Context, bin, dir string) (*exec.Cmd, error) {
	boot, err := envoy.BootstrapYAML(envoy.BootstrapOptions{NodeID: "dev-envoy-0", Gateway: "dev", XDSAddress: defaultXDS})
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "envoy.yaml")
	if err := os.WriteFile(path, boot, 0o600); err != nil {
		return nil, fmt.Errorf("write bootstrap: %w", err)
	}
	logf, err := os.Create(filepath.Join(dir, "envoy.log"))
	if err != nil {
		return nil, fmt.Errorf("create envoy log: %w", err)
	}
	cmd := exec.Command(bin, "-c", path, "--use-dynamic-base-id", "--drain-time-s", "1", "--log-level", "info")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start envoy %s: %w", bin, err)
	}
	return cmd, nil
}

// stopProcess sends SIGTERM to cmd's process group and waits, killing it
// after five seconds.
func stopProcess(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func printDevHelp(w io.Writer, s devSession) {
	tokenFile := s.tokenFile
	if tokenFile == "" {
		tokenFile = "none: the token is " + envAdminTok
	}
	fmt.Fprintf(w, `
Tollgate dev is running (Ctrl-C stops everything).
  Envoy gateway "dev"   http://127.0.0.1:8080   (admin http://127.0.0.1:%d)
  tollgate admin API    http://127.0.0.1:9900   (xDS on %s)
  admin token file      %s   (the CLI below reads it)
  demo policy           %s
  logs and store        %s

  demo API key          %s   (consumer "demo", tier free, role user)
  dev JWT               %s
                        (issuer %s, sub "dev-user", role user; valid 24 h, until dev stops)

Try:
  curl -si http://127.0.0.1:8080/api/users/42                          # 401: no credentials
  curl -s  -H 'x-api-key: %s' http://127.0.0.1:8080/api/users/42   # round robin over users-1 and users-2; see x-user-id
  curl -s  -H 'Authorization: Bearer %s' http://127.0.0.1:8080/api/me   # JWT from the dev issuer; x-user-id is dev-user
  curl -s  -H 'x-api-key: %s' http://127.0.0.1:8080/api/orders/7   # rewritten to /7 on orders-1
  curl -s  -H 'x-api-key: %s' -H 'x-api-version: 2' http://127.0.0.1:8080/api/orders/7   # rewritten to /v2/7
  curl -si -H 'x-api-key: %s' http://127.0.0.1:8080/xml/orders/7   # the orders-1 answer converted to XML (transform)
  curl -s  -H 'x-user-id: spoofed' http://127.0.0.1:8080/healthz      # public route; the upstream never sees x-user-id
  curl -si http://127.0.0.1:8080/nowhere                               # 404: no route
  ./bin/tollgate keys create --consumer alice --tier pro --roles user
  ./bin/tollgate status
  ./bin/tollgate get
  ./bin/tollgate history
  # edit a copy of the policy, then:
  ./bin/tollgate diff my-policy.yaml && ./bin/tollgate push my-policy.yaml -m "why"
`, envoy.DefaultAdminPort, defaultXDS, tokenFile, s.policyPath, s.dir, s.key, s.jwt, devIssuer,
		s.key, s.jwt, s.key, s.key, s.key)
}
