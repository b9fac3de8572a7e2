package e2e

import (
	"bufio"
	"bytes"
	"fmt"
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

// tutorials are the tested tutorials, in the order they run against one
// `tollgate dev`: the canary tutorial rolls back to the version it starts
// from, which must still be the demo policy (quick start only changes a
// timeout); the tiers tutorial replaces the demo routes.
var tutorials = []string{"quick-start", "canary-and-rollback", "api-keys-and-tiers"}

// TestTutorials runs the shell blocks of the tested tutorials
// (docs/tutorials/*.md, marked <!-- tutorial-test: NAME -->) with bash
// against a real `tollgate dev`, in a temporary directory holding
// ./bin/tollgate and the policies the tutorial says to save
// (`# save as: FILE`). Every block must exit 0, and every status code a
// comment claims (a curl -w '%{http_code}' line ending in "# 401 ...", or a
// loop followed by a "# 200 200 ... 429" line) must be what the gateway
// answered. It skips when one of dev's fixed ports is taken.
func TestTutorials(t *testing.T) {
	t.Parallel() // waits on timers and asserts no latency (e2e/doc.go); dev's fixed ports are below the ephemeral range FreePort draws from
	for _, p := range devPorts {
		ln, err := net.Listen("tcp", "127.0.0.1:"+p)
		if err != nil {
			t.Skipf("port %s is in use; tollgate dev needs it", p)
		}
		ln.Close()
	}
	bin, cfg := harness.BuildTollgate(t), t.TempDir()
	dev := harness.StartProcessSpec(t, harness.ProcessSpec{Name: "dev", Bin: bin,
		Args: []string{"dev", "--data-dir", t.TempDir()}, Env: devCLIEnv(cfg)})
	if err := dev.WaitLog(testCtx(t, 60*time.Second), "Try:"); err != nil {
		t.Fatalf("tollgate dev did not come up: %v\n%s", err, dev.LogTail(40))
	}
	key := regexp.MustCompile(`demo API key\s+(tg[._]\S+)`).FindStringSubmatch(dev.Logs())
	if key == nil {
		t.Fatalf("no demo API key in the dev output:\n%s", dev.LogTail(40))
	}
	for _, name := range tutorials {
		if !t.Run(name, func(t *testing.T) { runTutorial(t, name, bin, cfg, key[1]) }) {
			break // later tutorials start from this one's state
		}
	}
	if err := dev.StopWithin(10 * time.Second); err != nil {
		t.Errorf("tollgate dev did not stop cleanly on SIGTERM: %v\n%s", err, dev.LogTail(20))
	}
}

// runTutorial writes the tutorial's policies and runs its blocks, one bash
// process per block, sharing variables through a state file.
func runTutorial(t *testing.T, name, bin, cfg, key string) {
	src, err := os.ReadFile(filepath.Join("..", "docs", "tutorials", name+".md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, files := tutorialBlocks(string(src), name)
	if len(blocks) == 0 {
		t.Fatalf("%s.md has no <!-- tutorial-test: %s --> block", name, name)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(dir, "bin", "tollgate")); err != nil {
		t.Fatal(err)
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(dir, ".tutorial-state")
	for i, b := range blocks {
		script := "set -e -o pipefail\n[ -f " + state + " ] && . " + state + "\n" +
			tutorialScript(b, key) + "\ndeclare -p | grep -E '^declare -- [A-Z][A-Z_]*=' > " + state + "\n"
		cmd := exec.CommandContext(testCtx(t, 120*time.Second), "bash", "-c", script)
		cmd.Dir = filepath.Clean(dir)
		cmd.Env = append(os.Environ(), devCLIEnv(cfg)...)
		cmd.Env = append(cmd.Env, "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s.md block %d failed: %v\n--- block\n%s\n--- output\n%s", name, i+1, err, b, out.String())
		}
		t.Logf("block %d:\n%s", i+1, out.String())
	}
}

var (
	tutorialMarker = regexp.MustCompile(`^<!-- tutorial-test: ([a-z0-9-]+) -->$`)
	saveAs         = regexp.MustCompile(`(?m)^# save as: (\S+)$`)
)

// tutorialBlocks returns the shell blocks marked for tutorial name and the
// files its yaml blocks say to save, by name.
func tutorialBlocks(src, name string) (blocks []string, files map[string]string) {
	files = map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(src))
	marked, lang, in := false, "", false
	var cur strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && tutorialMarker.MatchString(line):
			marked = tutorialMarker.FindStringSubmatch(line)[1] == name
		case !in && strings.HasPrefix(line, "```"):
			in, lang = true, strings.TrimPrefix(line, "```")
			cur.Reset()
		case in && line == "```":
			in = false
			if m := saveAs.FindStringSubmatch(cur.String()); lang == "yaml" && m != nil {
				files[m[1]] = cur.String()
			} else if marked && lang == "sh" {
				blocks = append(blocks, cur.String())
			}
			marked = false
		case in:
			cur.WriteString(line + "\n")
		}
	}
	return blocks, files
}

var (
	// codeComment is a curl -w '%{http_code}' line's claim: "# 401: ...".
	codeComment = regexp.MustCompile(`^(.*%\{http_code\}.*?)\s+#\s*(\d{3})\b`)
	// codesLine is a comment line listing the codes of the loop above it.
	codesLine = regexp.MustCompile(`^#\s*((?:\d{3}\s*)+)`)
	// keyPlaceholder is the line where the reader pastes the demo key.
	keyPlaceholder = regexp.MustCompile(`^KEY=tg[._]`)
)

// tutorialScript turns a block into bash that checks the status codes its
// comments claim.
func tutorialScript(block, key string) string {
	lines := strings.Split(strings.TrimRight(block, "\n"), "\n")
	var out []string
	for i, l := range lines {
		var next string
		if i+1 < len(lines) {
			next = lines[i+1]
		}
		switch m, n := codeComment.FindStringSubmatch(l), codesLine.FindStringSubmatch(next); {
		case keyPlaceholder.MatchString(l):
			out = append(out, "KEY="+key)
		case m != nil:
			out = append(out, checkCodes(m[1], m[2], i+1))
		case n != nil && strings.Contains(l, "http_code"):
			out = append(out, checkCodes(l, strings.TrimSpace(n[1]), i+1))
		default:
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// checkCodes runs cmd and fails unless its output's words are want.
func checkCodes(cmd, want string, line int) string {
	return fmt.Sprintf(`got=$(%s); got=$(echo $got); echo "$got"; `+
		`[ "$got" = %q ] || { echo "block line %d: got $got, the tutorial says %s" >&2; exit 1; }`, cmd, want, line, want)
}
