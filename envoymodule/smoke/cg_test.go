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

	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// TestModuleCallgrind (TOLLGATE_MODULE_CALLGRIND=1, valgrind on PATH)
// counts Envoy's instructions per request under callgrind, as
// TestModuleCPU's kinds: /jwt and /roomy (the same route with limits the
// module enforces, every request admitted) and /roomy-ietf (the same
// limits writing the IETF RateLimit headers too) with a token from the C
// table, each minus an idle period as long. The difference is what the limiter
// costs on the C fast path, lookup included. TOLLGATE_MODULE_CG_KEEP=DIR
// keeps the dumps (cg.out.1: the first /jwt period, .3 the first /roomy,
// .5 the first /roomy-ietf).
func TestModuleCallgrind(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" || os.Getenv("TOLLGATE_MODULE_CALLGRIND") == "" {
		t.Skip("set ENVOY_BIN and TOLLGATE_MODULE_CALLGRIND=1")
	}
	fx := newFixture(t)
	cfg := envoyConfig(filterConfig(fx.iss), fx.listen, fx.admin, fx.upstream)
	withRoomyRoute(cfg)
	withRoomyIETFRoute(cfg)
	withoutMetadataHeaders(cfg) // after: /roomy too
	cg := startCallgrind(t, envoyBin, fx, cfg)
	tok, _ := fx.iss.Token("alice", []string{"user"}, time.Hour, 0)
	send(t, cg.hc, fx.listen, "/roomy", "Bearer "+tok, 10)
	send(t, cg.hc, fx.listen, "/roomy-ietf", "Bearer "+tok, 10)
	cgControl(t, "-i on", cg.pid)
	for _, path := range []string{"/jwt", "/roomy", "/roomy-ietf", "/jwt", "/roomy", "/roomy-ietf"} {
		cg.measure(t, path, func(n int) { send(t, cg.hc, fx.listen, path, "Bearer "+tok, n) })
	}
}

// TestModuleCallgrindKeys (as TestModuleCallgrind) counts Envoy's
// instructions per request with signed keys configured: /jwt with a token
// from the C table (the marker now written too), /keys with a signed key
// from the table ("ApiKey <key>"), and /keys with a new signed key each
// request (decided in Go).
func TestModuleCallgrindKeys(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" || os.Getenv("TOLLGATE_MODULE_CALLGRIND") == "" {
		t.Skip("set ENVOY_BIN and TOLLGATE_MODULE_CALLGRIND=1")
	}
	fx := newFixture(t)
	ks := mintKeys(t, 2*(cgRequests+cgWarm))
	fc := filterConfig(fx.iss)
	fc.Keys = ks.keys
	cfg := envoyConfig(fc, fx.listen, fx.admin, fx.upstream)
	withRoute(cfg, "/keys", envoymod.RouteConfig{Extensions: map[string]string{"route": "keys", "methods": "apiKey"}})
	withoutMetadataHeaders(cfg)
	cg := startCallgrind(t, envoyBin, fx, cfg)
	tok, _ := fx.iss.Token("alice", []string{"user"}, time.Hour, 0)
	fresh := ks.fresh
	cgControl(t, "-i on", cg.pid)
	for range 2 {
		cg.measure(t, "/jwt", func(n int) { send(t, cg.hc, fx.listen, "/jwt", "Bearer "+tok, n) })
		cg.measure(t, "/keys", func(n int) { send(t, cg.hc, fx.listen, "/keys", "ApiKey "+ks.valid, n) })
		cg.measure(t, "/keys new", func(n int) {
			for _, k := range fresh[:n] {
				send(t, cg.hc, fx.listen, "/keys", "ApiKey "+k, 1)
			}
			fresh = fresh[n:]
		})
	}
}

// Requests per measured and warm-up period.
const (
	cgRequests = 1000
	cgWarm     = 300
)

// callgrind is an Envoy under callgrind and a client of one connection.
type callgrind struct {
	dir    string
	pid    int
	listen int
	hc     *http.Client
}

// startCallgrind runs Envoy with cfg under callgrind, instrumentation
// off until the caller turns it on (cgControl "-i on").
// TOLLGATE_MODULE_CG_KEEP=DIR keeps the dumps.
func startCallgrind(t *testing.T, envoyBin string, fx fixture, cfg map[string]any) callgrind {
	t.Helper()
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
	p := startEnvoy(t, wrapper, fx.soDir, cfg, fx.listen, fx.admin)
	return callgrind{dir: dir, pid: p.cmd.Process.Pid, listen: fx.listen,
		hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: time.Minute}}
}

// measure warms up with cgWarm requests (valgrind translates), then logs
// the instructions per request of cgRequests sent by send, minus an idle
// period as long.
func (cg callgrind) measure(t *testing.T, name string, send func(n int)) {
	t.Helper()
	send(cgWarm)
	cgControl(t, "-z", cg.pid)
	start := time.Now()
	send(cgRequests)
	busyFor := time.Since(start)
	busy := cgDump(t, cg.dir, cg.pid)
	time.Sleep(busyFor)
	idle := cgDump(t, cg.dir, cg.pid)
	t.Logf("%-9s %8.0f instructions/request (busy %.0f, idle %.0f over %s)", name, (busy-idle)/cgRequests, busy/cgRequests,
		idle/cgRequests, busyFor.Round(time.Millisecond))
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
