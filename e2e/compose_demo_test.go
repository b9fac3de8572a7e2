package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/internal/upstream"
)

// TestComposeDemoCredentials runs what the README's "Run with docker
// compose" curl lines do, without Docker: the compose demo policy (its
// listener and the demo upstreams' fixed addresses mapped to loopback), a
// real Redis, the demo-key service's own command line, and the committed
// demo JWT, through a real Envoy. As in compose, serve gets --envoy-module
// when the compose file gives it one, with the library installed the way
// the envoy-module service installs it (`tollgate envoy-module install`
// into a directory, named by the same file name), and the module's
// counters must then show that it decided the demo's JWT and signed-key
// requests and their 429s.
func TestComposeDemoCredentials(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	decodeFile(t, filepath.Join(root, "docker-compose.yml"), &compose)
	src, err := os.ReadFile(filepath.Join(root, "deploy/compose/policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(filepath.Join(root, "deploy/compose/demo.jwt"))
	if err != nil {
		t.Fatal(err)
	}
	port := harness.FreePort(t)
	repl := []string{"port: 8080, address: 0.0.0.0", fmt.Sprintf("port: %d, address: 127.0.0.1", port)}
	for _, u := range []struct{ name, fixed string }{{"users-1", "172.30.80.11:9001"}, {"users-2", "172.30.80.12:9001"}, {"orders-1", "172.30.80.13:9001"}} {
		if !strings.Contains(string(src), u.fixed) {
			t.Fatalf("the compose policy no longer names %s at %s", u.name, u.fixed)
		}
		repl = append(repl, u.fixed, harness.StartUpstream(t, u.name).Addr())
	}
	policy := strings.NewReplacer(repl...).Replace(string(src))
	redisAddr := harness.StartRedis(t)
	args := []string{"--redis", "redis://" + redisAddr + "/0", "--key-pepper", "e2e-pepper-0123456789"}
	module := composeEnvoyModule(t, compose.Services["tollgate"].Command)
	if module != "" {
		args = append(args, "--envoy-module", module)
	}
	s := startStackWith(t, policy, stackOptions{args: args})
	e := s.envoy("public", "compose-0", "delta")

	keyCmd := compose.Services["demo-key"].Command
	for i, a := range keyCmd {
		if strings.HasPrefix(a, "--server=") {
			keyCmd[i] = "--server=http://" + s.adminAddr
		}
	}
	key := strings.Fields(s.cli(0, keyCmd...))[0]
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := harness.NewHTTPClient(false)
	defer client.Close()
	call := func(path string, headers map[string]string) (int, *upstream.Echo) {
		resp, err := client.Get(testCtx(t, 10*time.Second), base+path, "", headers)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("X-Upstream") == "" || !strings.HasPrefix(string(resp.Body), "{") { // the upstreams answer /healthz with "ok"
			return resp.Status, nil
		}
		var echo upstream.Echo
		if err := resp.JSON(&echo); err != nil {
			t.Fatal(err)
		}
		return resp.Status, &echo
	}
	apiKey := map[string]string{"x-api-key": key}
	jwt := map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(token))}
	tests := []struct {
		name, path   string
		headers      map[string]string
		wantStatus   int
		wantUpstream string // prefix
		wantUser     string
	}{
		{"no credentials", "/api/users/42", nil, 401, "", ""},
		{"demo API key", "/api/users/42", apiKey, 200, "users-", "demo"},
		{"demo JWT", "/api/users/42", jwt, 200, "users-", "demo:demo-user"}, // namespaced by provider
		{"orders, rewritten", "/api/orders/7", apiKey, 200, "orders-1", "demo"},
		{"public health", "/healthz", nil, 200, "", ""},
		{"no route", "/nowhere", nil, 404, "", ""},
	}
	used := 0 // requests charged to the demo key's consumer
	for _, tt := range tests {
		status, echo := call(tt.path, tt.headers)
		if tt.headers != nil && tt.headers["x-api-key"] != "" {
			used++
		}
		if status != tt.wantStatus || (tt.wantUpstream != "") != (echo != nil) {
			t.Errorf("%s: %d (upstream %v), want %d", tt.name, status, echo, tt.wantStatus)
			continue
		}
		if echo != nil && (!strings.HasPrefix(echo.Upstream, tt.wantUpstream) || echo.Headers["X-User-Id"] != tt.wantUser) {
			t.Errorf("%s: reached %s as user %q, want %s… as %q", tt.name, echo.Upstream, echo.Headers["X-User-Id"], tt.wantUpstream, tt.wantUser)
		}
	}
	// The free tier admits 60 requests a minute per consumer. The compose
	// policy leaves rateLimits.mode out: quota, whose bound over GCRA is
	// one request per participant that gets its first token bucket while
	// nothing is left (ratelimit/quota's package documentation): the
	// consumer used two routes, two participants on this Envoy.
	admitted, limited := used, 0
	for range 70 - used {
		switch status, _ := call("/api/users/1", apiKey); status {
		case 200:
			admitted++
		case 429:
			limited++
		default:
			t.Fatalf("rate-limited route answered %d", status)
		}
	}
	if admitted < 60 || admitted > 62 || admitted+limited != 70 {
		t.Errorf("free tier: %d admitted, %d limited of 70; want 60 (up to 62) admitted, the rest limited", admitted, limited)
	}
	if module != "" {
		c := moduleCounters(t, e)
		if decided := c["rq_go_allowed"] + c["rq_table_allowed"]; decided != int64(admitted+1) ||
			c["rq_table_rate_limited"]+c["rq_go_rate_limited"] != int64(limited) {
			t.Errorf("module counters %v: want %d admitted (the key's and the JWT's) and %d rate limited, decided by the module", c, admitted+1, limited)
		}
	}
}

// composeEnvoyModule returns "" when the compose file's serve command line
// has no --envoy-module; otherwise the path of the module installed as the
// compose file's envoy-module service installs it, by `tollgate
// envoy-module install` into a directory, under the file name serve names.
func composeEnvoyModule(t *testing.T, serve []string) string {
	t.Helper()
	var named string
	for i, a := range serve {
		if v, ok := strings.CutPrefix(a, "--envoy-module="); ok {
			named = v
		} else if a == "--envoy-module" && i+1 < len(serve) {
			named = serve[i+1]
		}
	}
	if named == "" {
		return ""
	}
	dir := t.TempDir()
	out, err := exec.Command(harness.BuildTollgate(t), "envoy-module", "install", "--from", harness.BuildEnvoyModule(t), "--to", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("tollgate envoy-module install: %v\n%s", err, out)
	}
	installed := filepath.Join(dir, filepath.Base(named))
	if _, err := os.Stat(installed); err != nil {
		t.Fatalf("the install put no %s where serve names it: %v (%s)", filepath.Base(named), err, out)
	}
	return installed
}
