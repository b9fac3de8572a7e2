package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/internal/loadgen"
)

// cgRequests is the number of requests each variant serves while
// callgrind counts its instructions (after cgRequests of warm-up).
const cgRequests = 2000

// ablateCallgrind runs each variant's Envoy under valgrind's callgrind,
// one at a time, and prints the instructions Envoy executed per request
// (all threads, user space): deterministic where CPU time on a shared
// machine is not.
func ablateCallgrind(w io.Writer, dir string, ps *procs, sh *shared, cfgs ablateConfigs, authFor func(variant) func(int) string, o ablateOpts) error {
	fmt.Fprintf(w, "callgrind: %d requests per variant after %d of warm-up, 4 connections\n\n| variant | what | Envoy instructions/request | Δ vs full |\n|---|---|---:|---:|\n",
		cgRequests, cgRequests)
	base := 0.0
	for _, v := range selected(o.only) {
		ir, err := callgrindVariant(dir, ps, sh, cfgs.of(v), v, authFor(v), o.envoyEnv)
		if err != nil {
			return fmt.Errorf("variant %s: %w", v.name, err)
		}
		if v.name == "none" {
			base = ir
		}
		if o.cgKeep != "" {
			if err := keepCallgrind(filepath.Join(dir, "variant"+v.name), filepath.Join(o.cgKeep, v.name)); err != nil {
				return fmt.Errorf("variant %s: %w", v.name, err)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %+.0f |\n", v.name, v.what, ir, ir-base)
	}
	return nil
}

// selected returns the variants named in only (comma-separated; all when
// empty), always with the full configuration ("none") first.
func selected(only string) []variant {
	var out []variant
	for _, v := range variants() {
		if v.name == "none" || only == "" || strings.Contains(","+only+",", ","+v.name+",") {
			out = append(out, v)
		}
	}
	return out
}

// callgrindVariant starts v under callgrind (env added to Envoy's
// environment, after GODEBUG=asyncpreemptoff=1: callgrind aborts on the
// Go runtime's preemption signal of a Go dynamic module, and an Envoy
// without Go ignores it), warms it up, counts the instructions of
// cgRequests requests and stops it.
func callgrindVariant(dir string, ps *procs, sh *shared, cfg map[string]any, v variant, auth func(int) string, env []string) (float64, error) {
	vdir, boot, ports, err := variantBootstrap(dir, sh, cfg, v)
	if err != nil {
		return 0, err
	}
	f := filepath.Join(vdir, "envoy.yaml")
	if err := os.WriteFile(f, boot, 0o600); err != nil {
		return 0, err
	}
	bin := os.Getenv("ENVOY_BIN")
	if bin == "" {
		bin = ".tools/bin/envoy"
	}
	out := filepath.Join(vdir, "cg.out")
	pid, err := ps.start(vdir, "envoy", "valgrind", []string{"--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + out,
		bin, "-c", f, "--concurrency", "1", "--disable-hot-restart", "--log-level", "warn", "--base-id", fmt.Sprint(ports[1])},
		append([]string{"GODEBUG=asyncpreemptoff=1"}, env...)...)
	if err != nil {
		return 0, err
	}
	defer syscall.Kill(-pid, syscall.SIGKILL)
	if err := loadgen.WaitHTTP(fmt.Sprintf("http://127.0.0.1:%d/ready", ports[1]), "", 180*time.Second); err != nil {
		return 0, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d%s/x", ports[0], v.path)
	_, _ = sendN(url, auth, cgRequests, 4) // the first requests may time out while valgrind translates
	if err := exec.Command("callgrind_control", "-i", "on", fmt.Sprint(pid)).Run(); err != nil {
		return 0, fmt.Errorf("callgrind_control -i on: %w", err)
	}
	start := time.Now()
	if bad, codes := sendN(url, auth, cgRequests, 4); bad > 0 {
		fmt.Fprintf(os.Stderr, "variant %s: %d non-200 answers %v\n", v.name, bad, codes)
	}
	busyFor := time.Since(start)
	busy, err := callgrindDump(vdir, pid)
	if err != nil {
		return 0, err
	}
	// Timers (stats flush, RLQS reports every 5 s) run on wall time, which
	// valgrind stretches: the same time idle is subtracted.
	time.Sleep(busyFor)
	idle, err := callgrindDump(vdir, pid)
	if err != nil {
		return 0, err
	}
	return (busy - idle) / cgRequests, nil
}

// keepCallgrind copies the callgrind dumps of the variant directory vdir
// into dst (for callgrind_annotate; the run's directory is removed at
// the end). The first dump of the measured period is cg.out.1, the idle
// period's cg.out.2.
func keepCallgrind(vdir, dst string) error {
	files, _ := filepath.Glob(filepath.Join(vdir, "cg.out*"))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// callgrindDump makes callgrind dump (and zero) its counters and returns
// the instructions of the new dump.
func callgrindDump(dir string, pid int) (float64, error) {
	before, err := callgrindTotal(dir)
	if err != nil {
		before = 0
	}
	if b, err := exec.Command("callgrind_control", "-d", fmt.Sprint(pid)).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("callgrind_control -d: %w: %s", err, b)
	}
	after, err := callgrindTotal(dir)
	return after - before, err
}

var cgTotals = regexp.MustCompile(`(?m)^(?:totals|summary): (\d+)`)

// callgrindTotal sums the instruction totals of the dumps in dir.
func callgrindTotal(dir string) (float64, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "cg.out*"))
	sum := 0.0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		if m := cgTotals.FindSubmatch(b); m != nil {
			n, _ := strconv.ParseFloat(string(m[1]), 64)
			sum += n
		}
	}
	if sum == 0 {
		return 0, fmt.Errorf("no callgrind totals in %s (%d files)", dir, len(files))
	}
	return sum, nil
}

// sendN sends n requests over conns keep-alive connections and returns
// how many were not answered 200, and the count of each other answer
// (status code, or -1 for a transport error).
func sendN(url string, auth func(int) string, n, conns int) (int, map[int]int) {
	var mu sync.Mutex
	next, bad := 0, 0
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 60 * time.Second}
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if a := auth(i); a != "" {
					req.Header.Set("Authorization", a)
				}
				resp, err := hc.Do(req)
				code := -1
				if err == nil {
					code = resp.StatusCode
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if code != http.StatusOK {
					mu.Lock()
					bad++
					codes[code]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return bad, codes
}
