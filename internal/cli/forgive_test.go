package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/internal/store"
)

func ev(seq int, version, action, outcome string) store.Event {
	return store.Event{Seq: seq, Version: version, Action: action, Outcome: outcome, At: time.Unix(int64(seq), 0).UTC()}
}

// history: a seeded, b pushed, c rejected, b's endpoints changed, a
// rolled back to, then b pushed again.
var testHistory = []store.Event{
	ev(1, "aaaa1111", "seed", store.Applied),
	ev(2, "aabb2222", "push", store.Applied),
	ev(3, "cccc3333", "push", store.Rejected),
	ev(4, "aabb2222", "endpoints", store.Applied),
	ev(5, "aaaa1111", "rollback", store.Applied),
}

func TestResolveVersion(t *testing.T) {
	tests := []struct {
		prefix, want, wantErr string
	}{
		{"aaaa", "aaaa1111", ""},
		{"aabb2222", "aabb2222", ""},
		{"cc", "cccc3333", ""}, // rejected versions are stored too
		{"aa", "", `version prefix "aa" is ambiguous: it matches aaaa1111, aabb2222`},
		{"ffff", "", `no version in the history starts with "ffff"`},
	}
	for _, tt := range tests {
		got, err := resolveVersion(testHistory, tt.prefix)
		if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("resolveVersion(%q) = %q, %v; want %q, %q", tt.prefix, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestPreviousVersion(t *testing.T) {
	tests := []struct {
		name    string
		h       []store.Event
		current string
		want    string
	}{
		{"after a rollback, the version rolled back from", testHistory, "aaaa1111", "aabb2222"},
		{"rejected pushes never count", append(testHistory[:5:5], ev(6, "dddd4444", "push", store.Rejected)), "aaaa1111", "aabb2222"},
		{"after a push, the one before", append(testHistory[:5:5], ev(6, "eeee5555", "push", store.Applied)), "eeee5555", "aaaa1111"},
		{"nothing before", testHistory[:1], "aaaa1111", ""},
	}
	for _, tt := range tests {
		got, err := previousVersion(tt.h, tt.current)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("%s: previousVersion = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestHistoryMarksTheCurrentVersion(t *testing.T) {
	h := append(testHistory[:5:5], store.Event{Seq: 6, Version: "cccc3333", Action: "push", Outcome: store.Rejected,
		Reason: "try the new limits", Message: "envoy said no"})
	var out bytes.Buffer
	printHistory(&out, h, "aaaa1111")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for i, l := range lines[1:7] {
		if starred := strings.HasPrefix(l, "*"); starred != (i == 4) {
			t.Errorf("line %q: starred = %v, want only seq 5's line starred", l, starred)
		}
	}
	for _, want := range []string{"try the new limits — envoy said no", "* served now: version aaaa1111"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("history does not show %q:\n%s", want, out.String())
		}
	}
}

func TestPrintChangesSummaryAndFull(t *testing.T) {
	cs := []controlplane.Change{
		{Gateway: "internal", Type: "listener", Name: "old", Action: "removed"},
		{Gateway: "public", Type: "route", Name: "http", Action: "changed", Fields: []string{"+api-v2", "~users"}, Diff: "-a\n+b\n"},
		{Gateway: "public", Type: "cluster", Name: "users", Action: "changed", Fields: []string{"connectTimeout"}, Diff: "-1s\n+2s\n"},
		{Gateway: "public", Type: "cluster", Name: "api-v2", Action: "added"},
	}
	var sum, full bytes.Buffer
	printChanges(&sum, cs, false)
	want := `changes to gateway internal:
  - listener old
changes to gateway public:
  ~ route http (+api-v2, ~users)
  ~ cluster users (connectTimeout)
  + cluster api-v2
`
	if sum.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", sum.String(), want)
	}
	printChanges(&full, cs, true)
	if !strings.Contains(full.String(), "  ~ cluster users (connectTimeout)\n      -1s\n      +2s\n") {
		t.Errorf("--full does not follow each change with its diff:\n%s", full.String())
	}
}

// TestEveryCommandHasAnExample walks the command tree: every command's
// --help shows an example.
func TestEveryCommandHasAnExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Example == "" && !c.Hidden && c.Name() != "help" && c.Name() != "completion" {
			t.Errorf("%q has no Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRoot(&bytes.Buffer{}, &bytes.Buffer{}))
}

func TestUsageErrorsPointToTheSubcommandsHelp(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"push"}, "Run 'tollgate push --help' for usage."},
		{[]string{"keys", "create", "--nope"}, "Run 'tollgate keys create --help' for usage."},
		{[]string{"keys", "update", "abcdefgh"}, "Run 'tollgate keys update --help' for usage."},
		{[]string{"rollback", "abc", "--previous"}, "Run 'tollgate rollback --help' for usage."},
		{[]string{"rollback"}, "Run 'tollgate rollback --help' for usage."},
		{[]string{"frobnicate"}, "Run 'tollgate --help' for usage."},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		if code := Execute(tt.args, &out, &errOut); code != ExitUsage || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("tollgate %v = exit %d, stderr %q; want exit %d and %q", tt.args, code, errOut.String(), ExitUsage, tt.want)
		}
	}
}

func TestDevHelpExplainsWhatDevStarts(t *testing.T) {
	var out bytes.Buffer
	if code := Execute([]string{"dev", "--help"}, &out, &out); code != ExitOK {
		t.Fatalf("dev --help: exit %d", code)
	}
	for _, want := range []string{"Envoy", "127.0.0.1:8080", "9900", "upstreams", "JWT issuer", "removes the temporary directory"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dev --help does not mention %q:\n%s", want, out.String())
		}
	}
}

func TestValidateJSONEvenForAnUnreadableFile(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Execute([]string{"validate", "-o", "json", "/nonexistent/policy.yaml"}, &out, &errOut)
	var res validateResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || code != ExitFailed || res.Valid || len(res.Diagnostics) != 1 ||
		res.Diagnostics[0].Range.File != "/nonexistent/policy.yaml" {
		t.Fatalf("exit %d, stdout %q (%v), stderr %q; want exit 1 and one JSON diagnostic naming the file", code, out.String(), err, errOut.String())
	}
}

func TestDevDirIsRemovedUnlessGiven(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	dir, cleanup, err := devDir("")
	if err != nil {
		t.Fatal(err)
	}
	cleanup()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temporary dev directory %s survives cleanup: %v", dir, err)
	}
	given := t.TempDir() + "/data"
	dir, cleanup, err = devDir(given)
	if err != nil || dir != given {
		t.Fatalf("devDir(%q) = %q, %v", given, dir, err)
	}
	cleanup()
	if _, err := os.Stat(given); err != nil {
		t.Errorf("--data-dir %s removed on exit: %v", given, err)
	}
}

// A pending push (its proxies are applying it, or its control plane
// stopped) is the served one and says so; an interrupted one is not.
func TestHistoryShowsPendingAndInterrupted(t *testing.T) {
	h := append(testHistory[:5:5],
		store.Event{Seq: 6, Version: "cccc3333", Action: "push", Outcome: store.Interrupted, Message: "version aaaa1111 stayed current"},
		store.Event{Seq: 7, Version: "dddd4444", Action: "push", Outcome: store.Pending, Reason: "new limits"})
	var out bytes.Buffer
	printHistory(&out, h, "dddd4444")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.HasPrefix(lines[7], "*") || strings.HasPrefix(lines[6], "*") {
		t.Errorf("want only the pending event starred:\n%s", out.String())
	}
	for _, want := range []string{"interrupted", "new limits — current; the proxies are applying it", "* served now: version dddd4444"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("history does not show %q:\n%s", want, out.String())
		}
	}
}
