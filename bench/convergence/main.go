// Command convergence measures the control plane against a real Envoy:
// policy compile and snapshot build time for 10, 1k and 10k routes, and
// push-to-served convergence (from the start of a push until Envoy serves
// the new route) for 100, 1k and 10k routes, with and without per-route
// stats, with where each push's time goes (compile, store, each
// make-before-break step, Envoy's CPU) and the control plane's resident
// memory (each size runs in a child process of its own). It prints
// Markdown tables; `make bench` runs it, and bench/README.md keeps the
// results.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/tollgate/tollgate/policy"
	"github.com/tollgate/tollgate/xds"
	"github.com/tollgate/tollgate/xds/translator"
)

func main() {
	pushes := flag.Int("pushes", 7, "pushes per size for the convergence table")
	row := flag.Int("row", 0, "internal: measure one convergence row of this many routes and print it")
	stats := flag.String("stats", "", "internal: with -row, the policy's observability.routeStats: true, false or empty (the default)")
	sizes := flag.String("sizes", "100,1000,10000,1000-nostats,10000-stats",
		"route counts of the convergence table; -stats, -nostats: with observability.routeStats true, false (else the default)")
	compile := flag.Bool("compile", true, "print the compile table")
	cpuProfile := flag.String("cpuprofile", "", "with -row: write a CPU profile of the pushes to this file")
	memProfile := flag.String("memprofile", "", "with -row: write a heap profile after the pushes to this file")
	stageProfile := flag.String("stageprofile", "", "with -row: write heap profiles of the live objects at the last push's stages (version stored, pending event begun or its staged Begin committed, make-before-break step applied) to this prefix + .put, .begin, .step")
	var eo envoyOptions
	flag.BoolVar(&eo.callgrind, "callgrind", false, "with -row: run Envoy under valgrind's callgrind and print its instructions per push")
	flag.StringVar(&eo.statsTags, "stats-tags", "", "with -row, an ablation: only these of Envoy's default tag extractors (comma-separated tag names, or none)")
	flag.StringVar(&eo.reject, "stats-reject", "", "with -row, an ablation: a regular expression of stat names Envoy does not create")
	flag.Parse()
	var err error
	if *row > 0 {
		err = printRow(os.Stdout, *row, *pushes, *stats, profiles{cpu: *cpuProfile, mem: *memProfile, stages: *stageProfile}, eo)
	} else {
		err = run(os.Stdout, *pushes, *sizes, *compile)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "convergence:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, pushes int, sizes string, compile bool) error {
	fmt.Fprintf(w, "machine: %s/%s, %d CPUs, %s\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel())
	fmt.Fprintf(w, "load average at start: %s\n\n", loadAvg())
	if compile {
		if err := compileTable(w); err != nil {
			return err
		}
	}
	return convergenceTable(w, pushes, sizes)
}

func compileTable(w io.Writer) error {
	fmt.Fprintln(w, "| routes | YAML load (parse, shape) | validate+compile (IR) | translate+validate (xDS) | snapshot build | compile total (IR→snapshot) | total from YAML |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|")
	for _, n := range []int{10, 1000, 10000} {
		row, err := compileRow(n)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, row)
	}
	fmt.Fprintln(w)
	return nil
}

// compileRow times each stage for n routes, median of 5 runs.
func compileRow(n int) (string, error) {
	files := []policy.File{{Name: "bench.yaml", Content: []byte(policyYAML(n, 18080, "127.0.0.1:9", 0, ""))}}
	var load, comp, trans, snap []time.Duration
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		p, diags := policy.Load(files)
		t1 := time.Now()
		if diags = append(diags, p.Validate()...); diags.HasErrors() {
			return "", fmt.Errorf("bench policy invalid: %v", diags.Errors())
		}
		cfg := policy.Compile(p)
		t2 := time.Now()
		res, err := translator.Translate(cfg, "bench", translator.Options{})
		if err == nil {
			err = translator.Validate(res)
		}
		if err != nil {
			return "", err
		}
		t3 := time.Now()
		srv := xds.New(context.Background(), xds.Options{Logger: quiet()})
		if _, err := srv.Apply(context.Background(), map[string]*translator.Resources{"bench": res}); err != nil {
			return "", err
		}
		t4 := time.Now()
		load, comp = append(load, t1.Sub(t0)), append(comp, t2.Sub(t1))
		trans, snap = append(trans, t3.Sub(t2)), append(snap, t4.Sub(t3))
	}
	l, c, t, s := median(load), median(comp), median(trans), median(snap)
	return fmt.Sprintf("| %d | %s | %s | %s | %s | %s | %s |", n, ms(l), ms(c), ms(t), ms(s), ms(c+t+s), ms(l+c+t+s)), nil
}

// policyYAML renders a gateway with n prefix routes over 10 backends, plus
// extra probe routes /probe-0 … /probe-(probes-1); stats "true" or "false"
// sets observability.routeStats (empty leaves the default), which turns
// Envoy's per-route stats off.
func policyYAML(n, port int, endpoint string, probes int, stats string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\ngateways:\n  - name: bench\n    listeners: [{name: http, port: %d, address: 127.0.0.1}]\nroutes:\n", port)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {name: r%d, match: {pathPrefix: /svc%d/r%d}, backend: b%d, auth: none}\n", i, i%10, i, i%10)
	}
	for i := 0; i < probes; i++ {
		fmt.Fprintf(&b, "  - {name: probe-%d, match: {pathPrefix: /probe-%d}, backend: b0, auth: none}\n", i, i)
	}
	if stats != "" {
		fmt.Fprintf(&b, "observability: {routeStats: %s}\n", stats)
	}
	b.WriteString("backends:\n")
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&b, "  - {name: b%d, endpoints: [%q]}\n", i, endpoint)
	}
	return b.String()
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func maxOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			return strings.TrimSpace(l[strings.Index(l, ":")+1:])
		}
	}
	return "unknown CPU"
}

// loadAvg returns the 1, 5 and 15 minute load averages of the machine.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
