package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/tollgate/tollgate/e2e/harness"
)

// deployScripts are the shell snippets the deployment files run inside the
// Envoy container (the image has bash but no curl), read from those files.
type deployScripts struct {
	composeHealth, liveness, preStop string
}

func readDeployScripts(t *testing.T) deployScripts {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	decodeFile(t, filepath.Join(root, "docker-compose.yml"), &compose)
	var dep struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						LivenessProbe struct {
							Exec struct{ Command []string } `yaml:"exec"`
						} `yaml:"livenessProbe"`
						Lifecycle struct {
							PreStop struct {
								Exec struct{ Command []string } `yaml:"exec"`
							} `yaml:"preStop"`
						} `yaml:"lifecycle"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	decodeFile(t, filepath.Join(root, "deploy/kubernetes/base/envoy/deployment.yaml"), &dep)
	c := dep.Spec.Template.Spec.Containers[0]
	return deployScripts{
		composeHealth: bashScript(t, compose.Services["envoy"].Healthcheck.Test[1:]),
		liveness:      bashScript(t, c.LivenessProbe.Exec.Command),
		preStop:       bashScript(t, c.Lifecycle.PreStop.Exec.Command),
	}
}

func decodeFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// bashScript returns the script of a ["bash", "-c", script] command.
func bashScript(t *testing.T, cmd []string) string {
	t.Helper()
	if len(cmd) != 3 || cmd[0] != "bash" || cmd[1] != "-c" {
		t.Fatalf("command %q is not bash -c SCRIPT", cmd)
	}
	return cmd[2]
}

// runScript runs script with bash after pointing it at adminPort instead
// of the deployment's 9901, and at listenPort instead of its listener's
// 8080.
func runScript(ctx context.Context, script string, adminPort, listenPort int) ([]byte, error) {
	script = strings.ReplaceAll(script, "/dev/tcp/127.0.0.1/9901", fmt.Sprintf("/dev/tcp/127.0.0.1/%d", adminPort))
	script = strings.ReplaceAll(script, "/dev/tcp/127.0.0.1/8080", fmt.Sprintf("/dev/tcp/127.0.0.1/%d", listenPort))
	return exec.CommandContext(ctx, "bash", "-c", script).CombinedOutput()
}

// TestDeployEnvoyScripts runs the compose health check, the Kubernetes
// liveness probe and the preStop drain hook against a real Envoy: the
// checks pass on a ready Envoy; the health check fails when nothing
// listens on the gateway's port; after the drain hook, a kept-alive HTTP/1.1
// connection is told "Connection: close", the stats port's /ready stops
// answering 200, and the listener stops accepting within the drain time
// (the harness runs Envoy with --drain-time-s 1).
func TestDeployEnvoyScripts(t *testing.T) {
	scripts := readDeployScripts(t)
	scripts.preStop = strings.Replace(scripts.preStop, "sleep 25", "sleep 0", 1)
	up := harness.StartUpstream(t, "users")
	port := harness.FreePort(t)
	s := startStack(t, fmt.Sprintf(drainPolicy, port, up.Addr()))
	admin, stats := harness.FreePort(t), harness.FreePort(t)
	out := s.cli(0, "bootstrap", "--gateway", "public", "--node-id", "drain-0", "--xds", s.xdsAddr,
		"--admin-port", fmt.Sprint(admin), "--stats-port", fmt.Sprint(stats))
	// The Kubernetes manifest's drain strategy (the harness sets --drain-time-s 1).
	e := harness.StartEnvoy(t, []byte(out), harness.EnvoyOptions{Args: []string{"--drain-strategy", "immediate"}})
	ctx := testCtx(t, 30*time.Second)
	if err := e.WaitReady(ctx); err != nil {
		t.Fatalf("envoy not ready: %v", err)
	}
	for name, script := range map[string]string{"compose health check": scripts.composeHealth, "liveness probe": scripts.liveness} {
		if b, err := runScript(ctx, script, admin, port); err != nil {
			t.Errorf("%s failed on a ready Envoy: %v\n%s", name, err, b)
		}
	}
	// Envoy's /ready is 200 with no listener at all (its configuration
	// refused: envoymodule/smoke TestModuleContractLDS): the health check
	// must also find the listener, here a port nothing listens on.
	if b, err := runScript(ctx, scripts.composeHealth, admin, harness.FreePort(t)); err == nil {
		t.Errorf("compose health check passed with nothing listening on the gateway's port\n%s", b)
	}
	conn, rd := dialKeepAlive(t, port)
	if resp := keepAliveGet(t, conn, rd); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("before the drain: %d, close=%t", resp.StatusCode, resp.Close)
	}
	if b, err := runScript(ctx, scripts.preStop, admin, port); err != nil {
		t.Fatalf("preStop hook: %v\n%s", err, b)
	}
	if resp := keepAliveGet(t, conn, rd); resp.StatusCode != 200 || !resp.Close {
		t.Errorf("during the drain: %d, close=%t; want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
	err := harness.WaitFor(ctx, func() (bool, error) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return true, nil
		}
		c.Close()
		return false, nil
	})
	if err != nil {
		t.Errorf("the listener still accepts connections after the drain: %v", err)
	}
	if resp, err := harness.HTTPGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/ready", stats), "", nil); err == nil && resp.Status == 200 {
		t.Errorf("the stats port still answers /ready with 200 after the drain")
	}
	t.Logf("envoy exited after the drain: %t", e.Exited())
}

const drainPolicy = `version: 1
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: users, backend: users, auth: none}
backends:
  - {name: users, endpoints: [%q]}
`

func dialKeepAlive(t *testing.T, port int) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func keepAliveGet(t *testing.T, c net.Conn, rd *bufio.Reader) *http.Response {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprint(c, "GET /x HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
