package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/internal/loadgen"
)

// tailOpts configure the -tail run.
type tailOpts struct {
	rate      float64
	dur, warm time.Duration
	reps      int
	win       time.Duration
	top       int
	csvDir    string // when set, every window of every run is written there as CSV
	// before is a tollgate binary (e.g. built from main) for a second
	// quota stack: its rows run alternately with this tree's, each stack
	// stopped (SIGSTOP) while the other's rows run.
	before string
}

// tailGroups are the CPU columns of the -tail tables.
var tailGroups = []string{"envoy-wrk", "envoy-main", "envoy-other", "tollgate", "redis", "bench"}

// runTail measures the latency tail at a fixed rate (issue 11): plain
// proxying and the quota rows alternately, every request with its time,
// the CPU of every process (Envoy per thread) sampled every 10 ms, and
// the slowest windows of each run with what ran meanwhile.
func runTail(w io.Writer, o tailOpts) error {
	dir, err := os.MkdirTemp("", "tollgate-tail-")
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
	rows, quota, err := tailRows(sh, &ps, o.before)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, machine())
	fmt.Fprintf(w, "open loop %.0f req/s, %d connections, %s per run (first %s not counted), windows of %s\n",
		o.rate, openConns, o.dur, o.warm, o.win)
	for rep := range o.reps {
		for _, r := range rows {
			pause(quota, r.st) // only the measured quota stack reports
			tailRun(w, rep, r, sh.redisPID, o)
		}
	}
	fmt.Fprintln(w, "\nload after:", loadavg())
	return nil
}

// tailRows starts the stacks (exact for plain proxying, quota, the
// before stack when before names a binary, and quota with the Envoy
// module when it was built), lists the rows in the order
// they run and warms each up; quota are the quota stacks.
func tailRows(sh *shared, ps *procs, before string) (rows []row, quota []*stack, err error) {
	ex, err := startTollgate(sh, ps, "exact", 1)
	if err != nil {
		return nil, nil, err
	}
	qu, err := startTollgate(sh, ps, "quota", 2)
	if err != nil {
		return nil, nil, err
	}
	toks, err := mint(sh.iss, active, func(i int) string { return fmt.Sprintf("user-%d", i) })
	if err != nil {
		return nil, nil, err
	}
	signed, err := signedKeys(active)
	if err != nil {
		return nil, nil, err
	}
	rows = []row{{"plain", ex, "/plain", func(int) string { return "" }}}
	quota = []*stack{qu}
	if before != "" {
		bq, err := startBefore(sh, ps, before)
		if err != nil {
			return nil, nil, err
		}
		quota = append(quota, bq)
		rows = append(rows, row{"JWT quota (before)", bq, "/jwt", cycle("Bearer ", toks)})
	}
	rows = append(rows, row{"JWT quota", qu, "/jwt", cycle("Bearer ", toks)}, row{"signed key quota", qu, "/key", cycle("ApiKey ", signed)})
	if before != "" {
		rows = append(rows, row{"signed key quota (before)", quota[1], "/key", cycle("ApiKey ", signed)})
	}
	if sh.module != "" {
		mq, err := startTollgateNamed(sh, ps, "quota-module", "quota", 4, "--envoy-module", sh.module)
		if err != nil {
			return nil, nil, fmt.Errorf("quota stack with the Envoy module: %w", err)
		}
		quota = append(quota, mq)
		rows = append(rows, row{"JWT quota, module", mq, "/jwt", cycle("Bearer ", toks)},
			row{"signed key quota, module", mq, "/key", cycle("ApiKey ", signed)})
	}
	for _, r := range rows {
		if err := loadgen.WaitHTTP(r.url(), r.auth(0), 30*time.Second); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", r.name, err)
		}
		loadgen.Run(r.url(), r.auth, satConns, 0, time.Second) // every bucket exists
	}
	return rows, quota, nil
}

// startBefore starts a quota stack on the tollgate binary bin.
func startBefore(sh *shared, ps *procs, bin string) (*stack, error) {
	b := *sh
	b.bin, b.dir = bin, filepath.Join(sh.dir, "before")
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, err
	}
	st, err := startTollgate(&b, ps, "quota", 3)
	if err != nil {
		return nil, fmt.Errorf("before stack: %w", err)
	}
	return st, nil
}

// pause stops (SIGSTOP) the Envoy and tollgate of every quota stack but
// keep, and resumes keep's: an idle stack's Envoy still reports its
// buckets every 5 s, which would land in the other stack's runs.
func pause(quota []*stack, keep *stack) {
	for _, st := range quota {
		sig := syscall.SIGSTOP
		if st == keep {
			sig = syscall.SIGCONT
		}
		for _, pid := range st.pids {
			_ = syscall.Kill(pid, sig)
		}
	}
}

// tailRun is one traced run of one row and its report.
func tailRun(w io.Writer, rep int, r row, redisPID int, o tailOpts) {
	pids := maps.Clone(r.st.pids)
	pids["redis"], pids["bench"] = redisPID, os.Getpid()
	ecds := ecdsReloads(r.st.envoyAdmin)
	stop := make(chan struct{})
	done := make(chan *cpuTrace)
	start := time.Now()
	go func() { done <- sampleCPU(pids, start, 10*time.Millisecond, stop) }()
	samples := loadgen.OpenTrace(r.url(), r.auth, o.rate, openConns, o.dur)
	close(stop)
	tr := <-done
	var lat []time.Duration
	bad := 0
	for _, s := range samples {
		if s.At < o.warm {
			continue
		}
		if !s.OK {
			bad++
		}
		lat = append(lat, s.Lat)
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		fmt.Fprintf(w, "\n%s: no requests\n", r.name)
		return
	}
	run, wait := tr.window(o.warm, o.dur)
	fmt.Fprintf(w, "\n## rep %d, %s: %d requests, %d bad, p50 %s p99 %s p99.9 %s max %s; load %s\n", rep, r.name, len(lat), bad,
		ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)*999/1000]), ms(lat[len(lat)-1]), loadavg())
	fmt.Fprintf(w, "CPU ms in the run: %s; run-queue wait ms: %s; ECDS reloads in Envoy: %d\n", groupCells(run), groupCells(wait),
		ecdsReloads(r.st.envoyAdmin)-ecds)
	tailWindows(w, samples, tr, o)
	if o.csvDir != "" {
		if err := tailCSV(filepath.Join(o.csvDir, fmt.Sprintf("%d-%s.csv", rep, strings.ReplaceAll(r.name, " ", "_"))), samples, tr, o); err != nil {
			fmt.Fprintln(w, "csv:", err)
		}
	}
}

// tailCSV writes one line per window: its start, requests, p99 and max
// latency (ms), and each group's CPU and run-queue wait (ms).
func tailCSV(path string, samples []loadgen.Sample, tr *cpuTrace, o tailOpts) error {
	byWin := map[time.Duration][]time.Duration{}
	for _, s := range samples {
		k := s.At.Truncate(o.win)
		byWin[k] = append(byWin[k], s.Lat)
	}
	var b strings.Builder
	b.WriteString("t,n,p99,max")
	for _, g := range tailGroups {
		fmt.Fprintf(&b, ",%s,%s_wait", g, g)
	}
	b.WriteString("\n")
	for k := time.Duration(0); k < o.dur; k += o.win {
		l := byWin[k]
		slices.Sort(l)
		p99, mx := 0.0, 0.0
		if len(l) > 0 {
			p99, mx = float64(l[len(l)*99/100])/1e6, float64(l[len(l)-1])/1e6
		}
		run, wait := tr.window(k, k+o.win)
		fmt.Fprintf(&b, "%.1f,%d,%.2f,%.2f", k.Seconds(), len(l), p99, mx)
		for _, g := range tailGroups {
			fmt.Fprintf(&b, ",%.1f,%.1f", run[g], wait[g])
		}
		b.WriteString("\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// ecdsReloads is the number of extension configs (ECDS) Envoy has
// reloaded, from its admin stats.
func ecdsReloads(adminPort int) int {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/stats?filter=extension_config_discovery.*config_reload$", adminPort))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if _, v, ok := strings.Cut(l, ": "); ok {
			k, _ := strconv.Atoi(v)
			n += k
		}
	}
	return n
}

// tailWindows prints the o.top windows with the slowest requests and the
// CPU each group used in them (and in the window before).
func tailWindows(w io.Writer, samples []loadgen.Sample, tr *cpuTrace, o tailOpts) {
	type win struct {
		from    time.Duration
		n, slow int
		max     time.Duration
	}
	ws := map[time.Duration]*win{}
	for _, s := range samples {
		if s.At < o.warm {
			continue
		}
		k := s.At.Truncate(o.win)
		x := ws[k]
		if x == nil {
			x = &win{from: k}
			ws[k] = x
		}
		x.n++
		x.max = max(x.max, s.Lat)
		if s.Lat > 5*time.Millisecond {
			x.slow++
		}
	}
	all := slices.Collect(maps.Values(ws))
	slices.SortFunc(all, func(a, b *win) int { return int(b.max - a.max) })
	fmt.Fprintf(w, "| window start | requests | > 5 ms | max | CPU ms %s | wait ms envoy-wrk |\n", strings.Join(tailGroups, " / "))
	for _, x := range all[:min(o.top, len(all))] {
		run, wait := tr.window(x.from, x.from+o.win)
		fmt.Fprintf(w, "| %6.1f s | %d | %d | %s | %s | %.1f |\n", x.from.Seconds(), x.n, x.slow, ms(x.max), groupCells(run), wait["envoy-wrk"])
	}
}

func groupCells(m map[string]float64) string {
	var b strings.Builder
	for i, g := range tailGroups {
		if i > 0 {
			b.WriteString(" / ")
		}
		fmt.Fprintf(&b, "%.1f", m[g])
	}
	return b.String()
}
