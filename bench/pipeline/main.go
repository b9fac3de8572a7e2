// Command pipeline measures the request hot path through real Envoys side
// by side in one run (issue 11): plain proxying; JWT and API key with rate
// limits in Tollgate's quota mode (RLQS, no call per request) and exact
// mode (one hop); and the Envoy Gateway shape (native jwt_authn +
// envoyproxy/ratelimit over RLS, from RATELIMIT_REF_BIN). Every Envoy is
// the same binary with --concurrency 1; one redis-server serves all.
// `make bench` runs it; results go to bench/README.md.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	warm      = time.Second     // before every measured run
	satFor    = 3 * time.Second // closed loop, per row
	fixedFor  = 4 * time.Second // open loop, per row
	satConns  = 16              // closed-loop connections
	openConns = 64              // open-loop connections
)

func main() {
	only := flag.String("only", "", "measure only the rows whose name contains this, besides plain proxying (a smoke run; skips the arrivals table)")
	rounds := flag.Int("rounds", 0, "after the table, measure every row at saturation this many more times in paired rounds and print the ratios to plain (median, quartiles)")
	var o ablateOpts
	ab := flag.Bool("ablate", false, "measure Envoy CPU per request of the JWT quota path with one feature removed at a time (bench/README.md, hot path)")
	flag.Float64Var(&o.rate, "rate", 1000, "-ablate: fixed request rate (0: closed loop at saturation, 16 connections)")
	flag.DurationVar(&o.dur, "for", 4*time.Second, "-ablate: duration of one measurement")
	flag.IntVar(&o.reps, "reps", 3, "-ablate: measurements per variant (the median is reported)")
	flag.StringVar(&o.dumpOnly, "dump", "", "-ablate: write the static Envoy configuration to this file and stop")
	flag.StringVar(&o.only, "variants", "", "-ablate: comma-separated variants to measure besides the full configuration (default all)")
	flag.IntVar(&o.consumers, "consumers", active, "-ablate: distinct credentials cycled per route, one RLQS bucket each (fewer make the 5 s RLQS report, which valgrind's slowness overweights, negligible)")
	flag.BoolVar(&o.ietf, "ietf-headers", false, "-ablate: the quota stack's policy sets rateLimits.ietfHeaders (variant -ietf-headers removes its filter)")
	flag.DurationVar(&o.idle, "idle", 0, "-ablate (CPU mode): also measure every variant's Envoy CPU while idle for this long, before and after the rounds")
	flag.BoolVar(&o.module, "module", false, "-ablate: the quota stack runs tollgate serve --envoy-module (the module, built from envoymodule/, decides the JWT route; variants -module, ...)")
	flag.Func("envoy-env", "-ablate: KEY=VALUE added to every variant Envoy's environment (repeatable; e.g. GOMAXPROCS=1 for the dynamic module's Go runtime)", func(kv string) error {
		if !strings.Contains(kv, "=") {
			return fmt.Errorf("want KEY=VALUE, got %q", kv)
		}
		o.envoyEnv = append(o.envoyEnv, kv)
		return nil
	})
	flag.BoolVar(&o.callgrind, "callgrind", false, "-ablate: count Envoy's instructions per request under valgrind (one variant at a time)")
	flag.StringVar(&o.cgKeep, "cg-keep", "", "-ablate -callgrind: copy every variant's callgrind dumps into DIR/<variant> (for callgrind_annotate)")
	tail := flag.Bool("tail", false, "trace the latency tail at a fixed rate (-rate, -for, -reps): plain and the quota rows alternately, with per-thread CPU of every process per window")
	var t tailOpts
	flag.DurationVar(&t.win, "window", 100*time.Millisecond, "-tail: window of the slow-window table")
	flag.IntVar(&t.top, "top", 6, "-tail: slowest windows printed per run")
	flag.StringVar(&t.csvDir, "csv", "", "-tail: write every window of every run to CSV files in this directory")
	flag.StringVar(&t.before, "before", "", "-tail: a tollgate binary (e.g. built from main) for a second quota stack measured alternately")
	flag.Parse()
	err := error(nil)
	if *tail {
		t.rate, t.dur, t.reps, t.warm = o.rate, o.dur, o.reps, time.Second
		err = runTail(os.Stdout, t)
	} else if *ab {
		err = runAblation(os.Stdout, o)
	} else {
		err = run(os.Stdout, *only, *rounds)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline bench:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, only string, rounds int) error {
	dir, err := os.MkdirTemp("", "tollgate-pipeline-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var ps procs
	defer ps.stop()
	sh, err := startShared(dir, &ps)
	if err != nil {
		return err
	}
	minted := make(chan error, 1)
	var ts *tokenSet
	go func() { // signing ~23,000 RS256 tokens overlaps the start-up
		var err error
		ts, err = mintAll(sh.iss)
		minted <- err
	}()
	stacks, err := startStacks(sh, &ps, w)
	if err != nil {
		return err
	}
	if err := <-minted; err != nil {
		return err
	}
	rows, err := buildRows(stacks, ts)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, machine())
	rows = onlyRows(rows, only)
	sat, fixed, rate := runRows(rows, sh.redisPID)
	report(w, rows, sat, fixed, rate)
	if rounds > 0 {
		roundsRun(w, rows, sh.redisPID, rounds)
	}
	if only != "" {
		return nil
	}
	if err := arrivalsRun(w, "quota mode", stacks["quota"], ts.arrivals, sh.redisPID); err != nil {
		return err
	}
	if st := stacks["quota-module"]; st != nil {
		if err := arrivalsRun(w, "quota mode, the Envoy module enforcing the limits", st, ts.moduleArrivals, sh.redisPID); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "\nload after:", loadavg())
	return nil
}

// startStacks starts the exact and quota Tollgate stacks and, when the
// reference binary is there, the Envoy Gateway shape.
func startStacks(sh *shared, ps *procs, w io.Writer) (map[string]*stack, error) {
	out := map[string]*stack{}
	for i, mode := range []string{"exact", "quota"} {
		st, err := startTollgate(sh, ps, mode, i+1)
		if err != nil {
			return nil, fmt.Errorf("%s stack: %w", mode, err)
		}
		out[mode] = st
	}
	if sh.module != "" {
		st, err := startTollgateNamed(sh, ps, "quota-module", "quota", 4, "--envoy-module", sh.module)
		if err != nil {
			return nil, fmt.Errorf("quota stack with the Envoy module: %w", err)
		}
		out["quota-module"] = st
	}
	ref := os.Getenv("RATELIMIT_REF_BIN")
	if ref == "" {
		ref = filepath.Join(".tools", "bin", "ratelimit")
	}
	if _, err := os.Stat(ref); err != nil {
		fmt.Fprintf(w, "envoyproxy/ratelimit %s missing (make bench installs it): no Envoy Gateway rows\n", ref)
		return out, nil
	}
	st, err := startEGShape(sh, ps, ref)
	if err != nil {
		return nil, fmt.Errorf("Envoy Gateway shape: %w", err)
	}
	out["eg"] = st
	return out, nil
}
