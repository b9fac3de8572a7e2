package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/xds"
)

// convergenceTable prints the push-to-served table and its breakdown. Each
// size runs in a child process of its own (this binary with -row), so the
// resident memory measured is that of a control plane serving that size
// alone.
func convergenceTable(w io.Writer, pushes int, sizes string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var rows, parts []string
	for _, f := range strings.Split(sizes, ",") {
		size, stats := strings.TrimSpace(f), ""
		if s, ok := strings.CutSuffix(size, "-nostats"); ok {
			size, stats = s, "false"
		} else if s, ok := strings.CutSuffix(size, "-stats"); ok {
			size, stats = s, "true"
		}
		n, err := strconv.Atoi(size)
		if err != nil {
			return fmt.Errorf("-sizes: %w", err)
		}
		var out bytes.Buffer
		cmd := exec.Command(exe, "-row", strconv.Itoa(n), "-pushes", strconv.Itoa(pushes), "-stats="+stats)
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%d routes: %w", n, err)
		}
		lines := strings.SplitN(strings.TrimSpace(out.String()), "\n", 2)
		if len(lines) != 2 {
			return fmt.Errorf("%d routes: unexpected output %q", n, out.String())
		}
		rows, parts = append(rows, lines[0]), append(parts, lines[1])
	}
	fmt.Fprintln(w, "| routes | pushes | push→served median | push→served max | push→ACKed median | control-plane RSS: served, settled / 3 s after the pushes / peak |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|")
	fmt.Fprintln(w, strings.Join(rows, "\n"))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Where a push's time goes (medians):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| routes | compile (YAML→xDS, validated) | store (put, begin, resolve) | apply step 1 set+ACK | step 2 | step 3 | ACK→served | control-plane CPU per push | Envoy CPU per push |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Fprintln(w, strings.Join(parts, "\n"))
	fmt.Fprintf(w, "\nload average at end: %s\n", loadAvg())
	return nil
}

// printRow measures n routes (the child side of convergenceTable): the
// table row, then the breakdown row.
func printRow(w io.Writer, n, pushes int, stats string, prof profiles, eo envoyOptions) error {
	if prof.stages != "" {
		runtime.MemProfileRate = 1 // every allocation: the stages' profiles are compared
		return emit(w, n, pushes, stats, &measure{stageProfile: prof.stages, envoy: eo}, nil)
	}
	if prof.mem != "" {
		m := &measure{afterPushes: func() { writeHeap(prof.mem) }, envoy: eo}
		return emit(w, n, pushes, stats, m, nil)
	}
	var stop func()
	if prof.cpu != "" {
		f, err := os.Create(prof.cpu)
		if err != nil {
			return err
		}
		defer f.Close()
		stop = pprof.StopCPUProfile
		m := &measure{onFirst: func() { _ = pprof.StartCPUProfile(f) }, envoy: eo}
		return emit(w, n, pushes, stats, m, stop)
	}
	return emit(w, n, pushes, stats, &measure{envoy: eo}, nil)
}

func emit(w io.Writer, n, pushes int, stats string, m *measure, stop func()) error {
	row, err := convergenceRow(n, pushes, stats, m)
	if stop != nil {
		stop()
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(w, row)
	fmt.Fprintln(w, m.breakdown(label(n, stats)))
	if l := m.instructionsLine(); l != "" {
		fmt.Fprintln(w, l)
	}
	return nil
}

// profiles are the profiles a row writes (file names; "" for none): CPU
// during the pushes, the heap after them, the heap at each stage of the
// last push (a prefix).
type profiles struct{ cpu, mem, stages string }

// measure collects the stages of each push.
type measure struct {
	onFirst     func() // called before the first measured push
	afterPushes func() // called after the last one, Envoy still serving
	// stageProfile, when set, is the prefix of the heap profiles written
	// at the last push's stages (see stage).
	stageProfile string
	envoy        envoyOptions
	envoyIr      int64 // Envoy's instructions per push (callgrind), else 0

	mu                      sync.Mutex
	store, compile, served  []time.Duration
	envoyCPU                []time.Duration
	selfCPU                 []time.Duration // control plane, push start to ACKed
	steps                   [3][]time.Duration
	cur                     pushTimes
	rssServed, rssAfter, hw int64
	last                    bool // the last push is in progress
}

// pushTimes are the stages of the push in progress.
type pushTimes struct {
	store time.Duration
	steps []time.Duration
}

func (m *measure) addStore(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cur.store += d
}

func (m *measure) addStep(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cur.steps = append(m.cur.steps, d)
}

// reset starts measuring a push.
func (m *measure) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cur = pushTimes{}
}

// done records a push that took total until ACKed and served until
// served, during which Envoy used envoyCPU of CPU time.
func (m *measure) done(total, served, envoyCPU time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var apply time.Duration
	for i, d := range m.cur.steps {
		apply += d
		if i < 3 {
			m.steps[i] = append(m.steps[i], d)
		}
	}
	m.store = append(m.store, m.cur.store)
	m.compile = append(m.compile, total-apply-m.cur.store)
	m.served = append(m.served, served-total)
	m.envoyCPU = append(m.envoyCPU, envoyCPU)
}

// label names a row: its route count, and its routeStats setting if any.
func label(n int, stats string) string {
	if stats == "" {
		return strconv.Itoa(n)
	}
	return fmt.Sprintf("%d, routeStats: %s", n, stats)
}

// instructionsLine is the line printed after a row run under callgrind.
func (m *measure) instructionsLine() string {
	if m.envoyIr == 0 {
		return ""
	}
	return fmt.Sprintf("Envoy instructions per push (callgrind): %dM", m.envoyIr/1_000_000)
}

func (m *measure) breakdown(n string) string {
	step := func(i int) string {
		if len(m.steps[i]) == 0 {
			return "–"
		}
		return fmt.Sprintf("%s (%d/%d pushes)", ms(median(m.steps[i])), len(m.steps[i]), len(m.store))
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s |", n, ms(median(m.compile)), ms(median(m.store)),
		step(0), step(1), step(2), ms(median(m.served)), ms(median(m.selfCPU)), ms(median(m.envoyCPU)))
}

func (m *measure) rss() string {
	return fmt.Sprintf("%s / %s / %s", mb(m.rssServed), mb(m.rssAfter), mb(m.hw))
}

func mb(kb int64) string { return fmt.Sprintf("%.0f MB", float64(kb)/1024) }

// memStatus returns VmRSS and VmHWM of this process in kB.
func memStatus() (rss, hwm int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fs[1], 10, 64)
		switch fs[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm
}

// timedStore times the writes a push makes.
type timedStore struct {
	store.Store
	m *measure
}

func (s timedStore) Put(v *store.Version) error {
	s.m.stage("put")
	defer s.time(time.Now())
	return s.Store.Put(v)
}

func (s timedStore) SwapCurrent(old, id string) error {
	defer s.time(time.Now())
	return s.Store.SwapCurrent(old, id)
}

func (s timedStore) Append(ev store.Event) (store.Event, error) {
	defer s.time(time.Now())
	return s.Store.Append(ev)
}

func (s timedStore) Begin(old string, ev store.Event) (store.Event, error) {
	s.m.stage("begin")
	defer s.time(time.Now())
	return s.Store.Begin(old, ev)
}

// StageBegin times the staging's synchronous part (reading the history;
// a directory store writes the stage on other goroutines) and the commit.
func (s timedStore) StageBegin(old string, ev store.Event) store.StagedBegin {
	defer s.time(time.Now())
	return timedStage{StagedBegin: s.Store.StageBegin(old, ev), s: s}
}

// timedStage times a staged Begin's commit.
type timedStage struct {
	store.StagedBegin
	s timedStore
}

func (t timedStage) Commit() (store.Event, error) {
	t.s.m.stage("begin")
	defer t.s.time(time.Now())
	return t.StagedBegin.Commit()
}

func (s timedStore) Resolve(r store.Resolution) (store.Event, error) {
	defer s.time(time.Now())
	return s.Store.Resolve(r)
}

func (s timedStore) time(start time.Time) { s.m.addStore(time.Since(start)) }

// newController returns a controller on a fresh store in dir whose store
// writes m times.
func newController(dir string, srv *xds.Server, m *measure) (*controlplane.Controller, error) {
	st, err := store.OpenDir(dir, 0)
	if err != nil {
		return nil, err
	}
	return controlplane.New(quiet(), timedStore{Store: st, m: m}, srv, controlplane.Options{}), nil
}

// stage writes a heap profile of the live objects, named for stage,
// during the last push when m.stageProfile is set, and prints the live
// heap there. The collection it runs and the profile's cost are in that
// push's times.
func (m *measure) stage(stage string) {
	if m.stageProfile == "" || !m.last {
		return
	}
	writeHeap(m.stageProfile + "." + stage)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(os.Stderr, "stage %s: %.1f MB live\n", stage, float64(ms.HeapAlloc)/(1<<20))
}

// writeHeap writes a heap profile of the live objects to path.
func writeHeap(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "heap profile:", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "heap profile:", err)
	}
}
