package e2e

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// devPorts are the fixed ports `tollgate dev` binds (README and docs/tutorials/quick-start.md: make dev).
var devPorts = []string{"8080", "9900", "9901", "18000", "18001", "18002", "18003", "9001", "9002", "9003", "9004"}

// TestDevRunsTheReadmeCommands starts `tollgate dev` (what `make dev` runs)
// and tries the requests its help text prints: the README's first command
// must work on a fresh machine. It skips when one of dev's fixed ports is
// taken.
func TestDevRunsTheReadmeCommands(t *testing.T) {
	for _, p := range devPorts {
		ln, err := net.Listen("tcp", "127.0.0.1:"+p)
		if err != nil {
			t.Skipf("port %s is in use; tollgate dev needs it", p)
		}
		ln.Close()
	}
	bin, cfg, tmp := harness.BuildTollgate(t), t.TempDir(), t.TempDir()
	// No --data-dir: dev works in a temporary directory (under tmp) that
	// it must remove on exit.
	dev := harness.StartProcessSpec(t, harness.ProcessSpec{Name: "dev", Bin: bin,
		Args: []string{"dev"}, Env: append(devCLIEnv(cfg), "TMPDIR="+tmp)})
	if err := dev.WaitLog(testCtx(t, 60*time.Second), "Try:"); err != nil {
		t.Fatalf("tollgate dev did not come up: %v\n%s", err, dev.LogTail(40))
	}
	key := regexp.MustCompile(`demo API key\s+(tg[._]\S+)`).FindStringSubmatch(dev.Logs())
	if key == nil {
		t.Fatalf("no demo API key in the dev output:\n%s", dev.LogTail(40))
	}
	checkDevRequests(t, key[1])
	checkDevJWT(t, dev.Logs())
	checkDevCLI(t, bin, cfg, dev.Logs())
	if err := dev.StopWithin(10 * time.Second); err != nil {
		t.Errorf("tollgate dev did not stop cleanly on SIGTERM: %v\n%s", err, dev.LogTail(20))
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "tollgate-dev-*")); len(left) > 0 {
		t.Errorf("tollgate dev left its temporary directory behind: %v", left)
	}
}

func checkDevRequests(t *testing.T, key string) {
	const base = "http://127.0.0.1:8080"
	withKey := map[string]string{"x-api-key": key}
	tests := []struct {
		name, path string
		headers    map[string]string
		status     int
		bodyHas    string
	}{
		{"no credentials", "/api/users/42", nil, 401, ""},
		{"api key", "/api/users/42", withKey, 200, `"x-user-id"`},
		{"rewrite", "/api/orders/7", withKey, 200, `"/7"`},
		{"transform to XML", "/xml/orders/7", withKey, 200, "<"},
		{"public route", "/healthz", map[string]string{"x-user-id": "spoofed"}, 200, ""},
		{"no route", "/nowhere", nil, 404, ""},
	}
	client := harness.NewHTTPClient(false)
	for _, tt := range tests {
		resp, err := client.Get(testCtx(t, 10*time.Second), base+tt.path, "", tt.headers)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body := string(resp.Body)
		if resp.Status != tt.status || !strings.Contains(strings.ToLower(body), strings.ToLower(tt.bodyHas)) || strings.Contains(body, "spoofed") {
			t.Errorf("%s: GET %s = %d %s, want %d containing %q", tt.name, tt.path, resp.Status, body, tt.status, tt.bodyHas)
		}
	}
}

// devCLIEnv is the environment of dev and of the CLI lines it prints: no
// admin token anywhere but the file dev generates in the config dir cfg.
func devCLIEnv(cfg string) []string {
	return []string{"XDG_CONFIG_HOME=" + cfg, "TOLLGATE_TOKEN=", "TOLLGATE_ADMIN_TOKEN=", "TOLLGATE_TOKEN_FILE=", "TOLLGATE_SERVER="}
}

// checkDevCLI runs the ./bin/tollgate lines of dev's help text as printed
// (no token flag or variable: the CLI finds the token dev generated), and
// checks the help names the token file.
func checkDevCLI(t *testing.T, bin, cfg, help string) {
	tokenFile := filepath.Join(cfg, "tollgate", "admin-token")
	if !strings.Contains(help, "admin token file      "+tokenFile) {
		t.Errorf("the dev help does not name the admin token file %s:\n%s", tokenFile, help)
	}
	lines := regexp.MustCompile(`(?m)^  \./bin/tollgate ([a-z][^&#\n]*)$`).FindAllStringSubmatch(help, -1)
	if len(lines) < 3 {
		t.Fatalf("want at least 3 CLI lines in the dev help, found %v", lines)
	}
	for _, l := range lines {
		cmd := exec.CommandContext(testCtx(t, 30*time.Second), bin, strings.Fields(l[1])...)
		cmd.Env = append(os.Environ(), devCLIEnv(cfg)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Errorf("./bin/tollgate %s: %v\n%s", l[1], err, out.String())
		}
	}
}

// checkDevJWT runs the JWT curl line of dev's help text: the printed token
// of dev's own issuer authenticates on the JWT routes, at once.
func checkDevJWT(t *testing.T, help string) {
	line := regexp.MustCompile(`curl -s\s+-H 'Authorization: Bearer (\S+)' (http://\S+)`).FindStringSubmatch(help)
	if line == nil {
		t.Fatalf("no JWT curl line in the dev help:\n%s", help)
	}
	token, url := line[1], line[2]
	if !strings.Contains(help, "dev JWT               "+token) {
		t.Errorf("the dev help does not print the token on its own line")
	}
	client := harness.NewHTTPClient(false)
	tests := []struct {
		name, url, auth string
		status          int
	}{
		{"the printed line", url, "Bearer " + token, 200},
		{"the token on the users route", "http://127.0.0.1:8080/api/users/1", "Bearer " + token, 200},
		{"no token", url, "", 401},
		{"a tampered token", url, "Bearer " + token[:len(token)-4] + "AAAA", 401},
	}
	for _, tt := range tests {
		h := map[string]string{}
		if tt.auth != "" {
			h["Authorization"] = tt.auth
		}
		resp, err := client.Get(testCtx(t, 10*time.Second), tt.url, "", h)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if resp.Status != tt.status || (tt.status == 200 && !strings.Contains(string(resp.Body), "dev-user")) {
			t.Errorf("%s: GET %s = %d %s, want %d (as dev-user)", tt.name, tt.url, resp.Status, resp.Body, tt.status)
		}
	}
}
