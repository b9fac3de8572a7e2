package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// protectedPolicy has one API-key route; %s is extra route flags.
const protectedPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo, auth: %s}
backends:
  - {name: echo, endpoints: [%q]}
`

// TestAdminAPIRefusesCrossSitePush starts `tollgate serve` the default way
// (no --admin-token) and sends the admin API what a web page the operator
// visits can send without a CORS preflight: a text/plain POST that pushes
// a policy turning authentication off, from a cross-site page, from a
// DNS-rebinding page (its own name as Host) and without any Origin. Every
// one must be refused, the served policy must stay the same and the route
// must still need a key through Envoy; the CLI, which finds the token serve
// generated, still pushes, and a restart keeps the token.
func TestAdminAPIRefusesCrossSitePush(t *testing.T) {
	us := upstreams(t, "echo")
	port := harness.FreePort(t)
	policy := func(auth string) string { return fmt.Sprintf(protectedPolicy, port, auth, us["echo"].Addr()) }
	s := startStackWith(t, policy("{methods: [apiKey]}"), stackOptions{generatedToken: true})
	s.envoy("public", "csrf-0", "delta")
	before := s.status().Version
	checkAPIStatus(t, port, 401)

	evil, _ := json.Marshal(map[string]any{"files": []map[string]string{{"name": "p.yaml", "content": policy("none")}}})
	_, adminPort, _ := strings.Cut(s.adminAddr, ":")
	attacks := []struct {
		name, host string
		headers    map[string]string
		want       int
	}{
		{"cross-site page", "", map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"}, 403},
		{"DNS-rebinding page", "evil.example:" + adminPort, map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example:" + adminPort}, 421},
		{"no Origin, no token", "", map[string]string{"Content-Type": "text/plain"}, 415},
		{"JSON without the token", "", map[string]string{"Content-Type": "application/json"}, 401},
	}
	for _, a := range attacks {
		resp, err := harness.NewHTTPClient(false).Do(testCtx(t, 10*time.Second), "POST", "http://"+s.adminAddr+"/v1/policy", a.host, a.headers, evil)
		if err != nil {
			t.Fatalf("%s: %v", a.name, err)
		}
		if resp.Status != a.want {
			t.Errorf("%s: POST /v1/policy = %d %s, want %d", a.name, resp.Status, resp.Body, a.want)
		}
	}
	if after := s.status().Version; after != before {
		t.Fatalf("the served policy changed from %s to %s", before, after)
	}
	checkAPIStatus(t, port, 401)
	checkGeneratedToken(t, s)

	s.cli(0, "push", writeFile(t, "open.yaml", policy("none"))) // the CLI finds the generated token
	checkAPIStatus(t, port, 200)
	tok := readFile(t, filepath.Join(s.configDir, "tollgate", "admin-token"))
	s.restart()
	if again := readFile(t, filepath.Join(s.configDir, "tollgate", "admin-token")); again != tok {
		t.Error("the restart generated a new admin token")
	}
	s.cli(0, "status")
}

// checkAPIStatus waits until GET /api/x through the gateway answers want.
func checkAPIStatus(t *testing.T, port, want int) {
	t.Helper()
	ctx := testCtx(t, 15*time.Second)
	client := harness.NewHTTPClient(false)
	var got int
	err := harness.WaitFor(ctx, func() (bool, error) {
		got, _ = get(ctx, client, port, "/api/x")
		return got == want, nil
	})
	if err != nil {
		t.Fatalf("GET /api/x = %d, want %d", got, want)
	}
}

// checkGeneratedToken checks serve's token file (mode 0600 in a 0700
// directory) and that serve logged its path, never the token.
func checkGeneratedToken(t *testing.T, s *stack) {
	t.Helper()
	path := filepath.Join(s.configDir, "tollgate", "admin-token")
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		if info, err := os.Stat(p); err != nil || info.Mode().Perm() != want {
			t.Fatalf("%s: %v; want mode %04o", p, err, want)
		}
	}
	tok := strings.TrimSpace(readFile(t, path))
	if len(tok) < 43 {
		t.Errorf("generated token has %d characters, want 32 random bytes (43)", len(tok))
	}
	if logs := s.cp.Logs(); !strings.Contains(logs, path) || strings.Contains(logs, tok) {
		t.Errorf("serve must log the token file %s and never the token; log:\n%s", path, s.cp.LogTail(30))
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
