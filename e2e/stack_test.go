package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

const testToken = "e2e-secret-token"

// stack is one control plane and the Envoys connected to it.
type stack struct {
	t         *testing.T
	bin       string
	dataDir   string
	xdsAddr   string
	authzAddr string
	rlAddr    string
	epAddr    string // the ext_proc (body transformation) service
	adminAddr string
	configDir string // XDG_CONFIG_HOME of serve and the CLI: never the real ~/.config
	opts      stackOptions
	cp        *harness.Process
}

// stackOptions are extra settings of `tollgate serve`.
type stackOptions struct {
	bin  string   // the tollgate binary; "": harness.BuildTollgate's
	args []string // extra flags
	env  []string // extra environment
	// generatedToken starts serve without --admin-token: it generates the
	// token into the config dir, where the CLI (without TOLLGATE_TOKEN)
	// finds it.
	generatedToken bool
}

// startStack starts `tollgate serve` seeded with policy (may be "").
func startStack(t *testing.T, policy string) *stack {
	return startStackWith(t, policy, stackOptions{})
}

// startStackWith starts `tollgate serve` with extra options.
func startStackWith(t *testing.T, policy string, opts stackOptions) *stack {
	t.Helper()
	s := &stack{
		t:         t,
		bin:       cmp.Or(opts.bin, harness.BuildTollgate(t)),
		dataDir:   filepath.Join(t.TempDir(), "store"),
		xdsAddr:   fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
		authzAddr: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
		rlAddr:    fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
		epAddr:    fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
		adminAddr: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
		configDir: t.TempDir(),
		opts:      opts,
	}
	s.startServe(policy)
	return s
}

// startServe (re)starts the control plane on the stack's ports and store.
func (s *stack) startServe(policy string) {
	s.t.Helper()
	args := []string{"serve", "--xds-addr", s.xdsAddr, "--authz-addr", s.authzAddr, "--ratelimit-addr", s.rlAddr, "--extproc-addr", s.epAddr,
		"--admin-addr", s.adminAddr, "--data-dir", s.dataDir, "--log-level", "debug"}
	env := append([]string{"XDG_CONFIG_HOME=" + s.configDir}, s.opts.env...)
	if s.opts.generatedToken {
		env = append(env, "TOLLGATE_ADMIN_TOKEN=") // empty wins over the caller's (exec keeps the last)
	} else {
		args = append(args, "--admin-token", testToken)
	}
	if policy != "" {
		args = append(args, "--policy", writeFile(s.t, "policy.yaml", policy))
	}
	args = append(args, s.opts.args...)
	s.cp = harness.StartProcessSpec(s.t, harness.ProcessSpec{Name: "tollgate-serve", Bin: s.bin, Args: args, Env: env})
	ctx := testCtx(s.t, 30*time.Second)
	err := harness.WaitFor(ctx, func() (bool, error) {
		if s.cp.Exited() {
			return false, harness.Permanent(fmt.Errorf("tollgate serve exited with code %d", s.cp.ExitCode()))
		}
		resp, err := harness.HTTPGet(ctx, "http://"+s.adminAddr+"/readyz", "", nil)
		return err == nil && resp.Status == 200, nil
	})
	if err != nil {
		s.t.Fatalf("control plane not ready: %v\n%s", err, s.cp.LogTail(40))
	}
}

// envoy starts an Envoy of gateway with the bootstrap `tollgate bootstrap`
// prints, and waits until it is ready.
func (s *stack) envoy(gateway, nodeID, protocol string) *harness.Envoy {
	s.t.Helper()
	out := s.cli(0, "bootstrap", "--gateway", gateway, "--node-id", nodeID, "--xds", s.xdsAddr,
		"--admin-port", fmt.Sprint(harness.FreePort(s.t)), "--xds-protocol", protocol)
	e := harness.StartEnvoy(s.t, []byte(out), harness.EnvoyOptions{})
	ctx := testCtx(s.t, 30*time.Second)
	if err := e.WaitReady(ctx); err != nil {
		s.t.Fatalf("envoy %s not ready: %v", nodeID, err)
	}
	return e
}

// cli runs the tollgate binary against the stack's admin API and returns
// stdout; it fails the test unless the exit code is wantCode.
func (s *stack) cli(wantCode int, args ...string) string {
	s.t.Helper()
	stdout, stderr, code := s.run(args...)
	if code != wantCode {
		s.t.Fatalf("tollgate %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, stdout, stderr)
	}
	return stdout
}

// run runs the tollgate binary and returns its output and exit code.
func (s *stack) run(args ...string) (stdout, stderr string, code int) {
	ctx := testCtx(s.t, time.Minute)
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), "TOLLGATE_SERVER=http://"+s.adminAddr, "XDG_CONFIG_HOME="+s.configDir)
	if s.opts.generatedToken {
		cmd.Env = append(cmd.Env, "TOLLGATE_TOKEN=", "TOLLGATE_ADMIN_TOKEN=", "TOLLGATE_TOKEN_FILE=")
	} else {
		cmd.Env = append(cmd.Env, "TOLLGATE_TOKEN="+testToken)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), exit.ExitCode()
	} else if err != nil {
		s.t.Fatalf("run tollgate: %v", err)
	}
	return o.String(), e.String(), 0
}

// status returns `tollgate status -o json`.
func (s *stack) status() statusJSON {
	s.t.Helper()
	var st statusJSON
	if err := json.Unmarshal([]byte(s.cli(0, "status", "-o", "json")), &st); err != nil {
		s.t.Fatalf("decode status: %v", err)
	}
	return st
}

// statusJSON mirrors the fields of `tollgate status -o json` the tests read.
type statusJSON struct {
	Version string `json:"version"`
	Nodes   []struct {
		ID      string `json:"id"`
		Gateway string `json:"gateway"`
		Version string `json:"version"`
		Synced  bool   `json:"synced"`
		Acked   map[string]struct {
			Version string `json:"version"`
		} `json:"acked"`
		Nacks []struct {
			Type, Version, Message string
		} `json:"nacks"`
	} `json:"nodes"`
}

// waitSynced waits until `status` shows node in sync with the served version.
func (s *stack) waitSynced(node string) statusJSON {
	s.t.Helper()
	var st statusJSON
	ctx := testCtx(s.t, 20*time.Second)
	err := harness.WaitFor(ctx, func() (bool, error) {
		st = s.status()
		for _, n := range st.Nodes {
			if n.ID == node && n.Synced {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		s.t.Fatalf("node %s not in sync: %v; last status %+v", node, err, st)
	}
	return st
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
