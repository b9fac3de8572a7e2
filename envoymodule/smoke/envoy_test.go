// Package smoke starts the pinned Envoy with the module (built here, or
// taken from TOLLGATE_MODULE_DIR) and checks its answers end to end. It
// skips without ENVOY_BIN.
package smoke

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// envoyProc is a running Envoy.
type envoyProc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	stderr string // path of its log
	listen int
}

// moduleDir builds the module into a temporary directory, or returns
// TOLLGATE_MODULE_DIR when set (a directory holding envoymod.LibraryName).
func moduleDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("TOLLGATE_MODULE_DIR"); d != "" {
		return d
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(dir, envoymod.LibraryName), "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build module: %v\n%s", err, out)
	}
	return dir
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startEnvoy runs envoyBin with cfg (JSON) and the module's directory on
// the search path, until the test ends.
func startEnvoy(t *testing.T, envoyBin, soDir string, cfg map[string]any, listen, admin int) *envoyProc {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "envoy.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "stderr.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(envoyBin, "-c", path, "--log-level", "warn", "--concurrency", "2", "--base-id", fmt.Sprint(listen))
	cmd.Env = append(os.Environ(), "ENVOY_DYNAMIC_MODULES_SEARCH_PATH="+soDir, "TOLLGATE_MODULE_LOG=debug")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &envoyProc{cmd: cmd, done: make(chan struct{}), stderr: logPath, listen: listen}
	go func() { _ = cmd.Wait(); close(p.done); logf.Close() }()
	t.Cleanup(p.stop)
	if err := p.waitReady(admin, 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.log())
	}
	return p
}

// stop ends Envoy with SIGTERM (its filter configs' destroy hooks run),
// SIGKILL after 10 s.
func (p *envoyProc) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func (p *envoyProc) log() string {
	b, _ := os.ReadFile(p.stderr)
	return string(b)
}

func (p *envoyProc) waitReady(admin int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("envoy exited: %v", p.cmd.ProcessState)
		default:
		}
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", admin)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("envoy not ready on admin port %d after %s", admin, d)
}

// echoUpstream answers every request with its request headers as JSON
// (one value per name, repeated values joined with ","), and a request's
// body, if any, as "x-body".
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := map[string]string{}
		for k, v := range r.Header {
			h[strings.ToLower(k)] = strings.Join(v, ",")
		}
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			h["x-body"] = string(b)
		}
		w.Header().Set("content-type", "application/json")
		_ = json.NewEncoder(w).Encode(h)
	}))
	t.Cleanup(srv.Close)
	return srv
}
