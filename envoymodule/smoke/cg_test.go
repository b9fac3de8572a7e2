package smoke

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestModuleCallgrind (TOLLGATE_MODULE_CALLGRIND=1, valgrind on PATH)
// counts Envoy's instructions per request under callgrind, as
// TestModuleCPU's kinds: /jwt and /roomy (the same route with limits the
// module enforces, every request admitted) with a token from the C table,
// each minus an idle period as long. The difference is what the limiter
// costs on the C fast path, lookup included. TOLLGATE_MODULE_CG_KEEP=DIR
// keeps the dumps (cg.out.1: the first /jwt period, .3 the first /roomy).
func TestModuleCallgrind(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" || os.Getenv("TOLLGATE_MODULE_CALLGRIND") == "" {
		t.Skip("set ENVOY_BIN and TOLLGATE_MODULE_CALLGRIND=1")
	}
	dir := t.TempDir()
	if keep := os.Getenv("TOLLGATE_MODULE_CG_KEEP"); keep != "" { // the dumps, for callgrind_annotate
		dir = keep
	}
	wrapper := filepath.Join(dir, "envoy-cg")
	script := fmt.Sprintf("#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=%s %s \"$@\"\n",
		filepath.Join(dir, "cg.out"), envoyBin)
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GODEBUG", "asyncpreemptoff=1") // callgrind aborts on the Go runtime's preemption signal
	fx := newFixture(t)
	cfg := envoyConfig(filterConfig(fx.iss), fx.listen, fx.admin, fx.upstream)
	withRoomyRoute(cfg)
	withoutMetadataHeaders(cfg) // after: /roomy too
	p := startEnvoy(t, wrapper, fx.soDir, cfg, fx.listen, fx.admin)
	pid := p.cmd.Process.Pid
	tok, _ := fx.iss.Token("alice", []string{"user"}, time.Hour, 0)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: time.Minute}
	const n = 1000
	send(t, hc, fx.listen, "/roomy", "Bearer "+tok, 10)
	cgControl(t, "-i on", pid)
	for _, path := range []string{"/jwt", "/roomy", "/jwt", "/roomy"} {
		send(t, hc, fx.listen, path, "Bearer "+tok, 300) // warm (valgrind translates)
		cgControl(t, "-z", pid)
		start := time.Now()
		send(t, hc, fx.listen, path, "Bearer "+tok, n)
		busyFor := time.Since(start)
		busy := cgDump(t, dir, pid)
		time.Sleep(busyFor)
		idle := cgDump(t, dir, pid)
		t.Logf("%-7s %8.0f instructions/request (busy %.0f, idle %.0f over %s)", path, (busy-idle)/n, busy/n, idle/n, busyFor.Round(time.Millisecond))
	}
}

func cgControl(t *testing.T, flag string, pid int) {
	t.Helper()
	args := append(strings.Fields(flag), fmt.Sprint(pid))
	if out, err := exec.Command("callgrind_control", args...).CombinedOutput(); err != nil {
		t.Fatalf("callgrind_control %s: %v %s", flag, err, out)
	}
}

var cgTotals = regexp.MustCompile(`(?m)^(?:totals|summary): (\d+)`)

// cgDump dumps (and zeroes) callgrind's counters and returns the new
// dump's instructions.
func cgDump(t *testing.T, dir string, pid int) float64 {
	t.Helper()
	before, _ := filepath.Glob(filepath.Join(dir, "cg.out*"))
	cgControl(t, "-d", pid)
	files, _ := filepath.Glob(filepath.Join(dir, "cg.out*"))
	seen := map[string]bool{}
	for _, f := range before {
		seen[f] = true
	}
	sum := 0.0
	for _, f := range files {
		if seen[f] {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := cgTotals.FindSubmatch(b); m != nil {
			v, _ := strconv.ParseFloat(string(m[1]), 64)
			sum += v
		}
	}
	return sum
}
