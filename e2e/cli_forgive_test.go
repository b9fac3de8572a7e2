package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// TestCLIPushMessageHistoryAndRollback drives the forgiving CLI against a
// real serve and Envoy: diff's per-resource summary, push -m recorded in
// the history, the served version starred, rollback --previous and
// rollback by a unique prefix, each served by Envoy.
func TestCLIPushMessageHistoryAndRollback(t *testing.T) {
	us := upstreams(t, "one", "two")
	port := harness.FreePort(t)
	s := startStack(t, pushPolicy(port, us["one"].Addr(), us["two"].Addr(), ""))
	s.envoy("public", "cli-0", "delta")
	next := writeFile(t, "next.yaml", pushPolicy(port, us["one"].Addr(), us["two"].Addr(),
		"  - {name: new, match: {pathPrefix: /new}, backend: two, auth: none}"))
	diff := s.cli(0, "diff", next)
	if !regexp.MustCompile(`(?m)^changes to gateway public:\n(  [+~-] .*\n)*  ~ route http\S* \(\+new\)$`).MatchString(diff) ||
		!strings.Contains(diff, "  + cluster two") || strings.Contains(diff, "\"name\"") {
		t.Errorf("diff summary:\n%s\nwant per-gateway lines such as '~ route http (+new)' and no JSON", diff)
	}
	if full, stderr, code := s.run("diff", "--full", next); code != 0 || !regexp.MustCompile(`\+\s+"name":\s+"new"`).MatchString(full) {
		t.Errorf("diff --full: exit %d, no JSON line diff:\n%s%s", code, full, stderr)
	}
	pushed := versionOf(t, s.cli(0, "push", next, "-m", "add the new route"))
	h := s.cli(0, "history")
	if !regexp.MustCompile(`(?m)^\*\s+2\s+` + pushed + `\s+push\s+applied.*add the new route$`).MatchString(h) {
		t.Errorf("history does not star the pushed version with its message:\n%s", h)
	}
	waitStatus(t, port, "/new", 200)
	if got := s.cli(0, "get", "--version", pushed[:6]); !strings.Contains(got, "name: new") {
		t.Errorf("get --version %s (a prefix):\n%s", pushed[:6], got)
	}
	back := versionOf(t, s.cli(0, "rollback", "--previous", "-m", "undo"))
	waitStatus(t, port, "/new", 404)
	if again := versionOf(t, s.cli(0, "rollback", pushed[:6])); again != pushed || back == pushed {
		t.Fatalf("rollback by prefix %s served %s (after --previous served %s)", pushed[:6], again, back)
	}
	waitStatus(t, port, "/new", 200)
	var events []struct{ Version, Action, Reason string }
	if err := json.Unmarshal([]byte(s.cli(0, "history", "-o", "json")), &events); err != nil || len(events) != 4 ||
		events[2].Action != "rollback" || events[2].Reason != "undo" || events[1].Reason != "add the new route" {
		t.Errorf("history -o json = %+v, %v; want the reasons stored with the events", events, err)
	}
	if _, stderr, code := s.run("rollback", "ffffff"); code != 1 || !strings.Contains(stderr, `no version in the history starts with "ffffff"`) {
		t.Errorf("rollback to an unknown prefix: exit %d, %s", code, stderr)
	}
}

// versionOf returns the version a push or rollback applied.
func versionOf(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`applied version ([0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no applied version in:\n%s", out)
	}
	return m[1]
}

// TestCLIKeysTierAndUpdate: a typo in --tier is an error naming the
// policy's tiers; keys update moves a key to another tier without
// reissuing it, effective through Envoy in well under a second (Redis key
// store, cached lookups invalidated).
func TestCLIKeysTierAndUpdate(t *testing.T) {
	r := startRateLimitStack(t, "open")
	_, stderr, code := r.run("keys", "create", "--consumer", "typo", "--tier", "prro")
	if code != 1 || !strings.Contains(stderr, `unknown tier "prro": the served policy's tiers are enterprise, free, pro, tiny`) {
		t.Fatalf("keys create --tier prro: exit %d, stderr %q; want an error naming the tiers", code, stderr)
	}
	out := r.cli(0, "keys", "create", "--consumer", "upgrader", "--tier", "tiny")
	lines := strings.Split(out, "\n")
	m := regexp.MustCompile(`the line above is the API key \(id ([0-9A-Za-z]{8}),`).FindStringSubmatch(lines[1])
	if !strings.HasPrefix(lines[0], "tg.") || m == nil {
		t.Fatalf("keys create text output (a signed key, then the note naming its id):\n%s", out)
	}
	key, id := lines[0], m[1]
	hdr := map[string]string{"x-api-key": key}
	codes, _ := r.burst(t, 4, 1, "/api/x", hdr) // tiny: 3 a day
	if codes[200] != 3 || codes[429] != 1 {
		t.Fatalf("tiny tier: %v, want 3 × 200 then 429", codes)
	}
	updated := time.Now()
	if out := r.cli(0, "keys", "update", id, "--tier", "pro", "--roles", "user"); !strings.Contains(out, "pro") {
		t.Fatalf("keys update output:\n%s", out)
	}
	client := harness.NewHTTPClient(false)
	for {
		resp, err := client.Get(testCtx(t, 5*time.Second), fmt.Sprintf("http://127.0.0.1:%d/api/x", r.port), "", hdr)
		if err == nil && resp.Status == 200 && strings.Contains(strings.ToLower(string(resp.Body)), `"x-consumer-tier": "pro"`) &&
			strings.Contains(resp.Header.Get("RateLimit-Policy"), `"pro"`) {
			break
		}
		if time.Since(updated) > time.Second {
			t.Fatalf("a second after keys update: %v %v, want 200 on tier pro", resp, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("keys update to first request served on the new tier: %v", time.Since(updated).Round(time.Millisecond))
}
