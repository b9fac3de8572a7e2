package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// threadCPU is one thread's scheduler counters: time on a CPU and time
// waiting in a run queue (ns, /proc/PID/task/TID/schedstat).
type threadCPU struct{ run, wait int64 }

// procThreads reads every thread of pid, keyed "name/tid".
func procThreads(pid int) map[string]threadCPU {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := make(map[string]threadCPU, len(ents))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		run, _ := strconv.ParseInt(f[0], 10, 64)
		wait, _ := strconv.ParseInt(f[1], 10, 64)
		name, _ := os.ReadFile(filepath.Join(dir, e.Name(), "comm"))
		out[strings.TrimSpace(string(name))+"/"+e.Name()] = threadCPU{run, wait}
	}
	return out
}

// cpuGroup names the column a thread of process proc counts in: Envoy's
// main thread, its worker, its other threads; other processes whole.
func cpuGroup(proc, thread string, pid int) string {
	if proc != "envoy" {
		return proc
	}
	name, tid, _ := strings.Cut(thread, "/")
	switch {
	case tid == strconv.Itoa(pid):
		return "envoy-main"
	case strings.HasPrefix(name, "wrk:"):
		return "envoy-wrk"
	}
	return "envoy-other"
}

// cpuTrace is a sampled CPU time line: per sample, the time since start
// and the cumulative run and wait ns per group.
type cpuTrace struct {
	at   []time.Duration
	run  []map[string]int64
	wait []map[string]int64
}

// sampleCPU samples the processes every period until stop is closed.
func sampleCPU(pids map[string]int, start time.Time, period time.Duration, stop <-chan struct{}) *cpuTrace {
	tr := &cpuTrace{}
	var mu sync.Mutex
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		run, wait := map[string]int64{}, map[string]int64{}
		for proc, pid := range pids {
			for th, c := range procThreads(pid) {
				g := cpuGroup(proc, th, pid)
				run[g] += c.run
				wait[g] += c.wait
			}
		}
		mu.Lock()
		tr.at = append(tr.at, time.Since(start))
		tr.run, tr.wait = append(tr.run, run), append(tr.wait, wait)
		mu.Unlock()
		select {
		case <-stop:
			return tr
		case <-tick.C:
		}
	}
}

// window returns the CPU (run) and run-queue wait ms of each group in
// [from, to), from the samples nearest to both ends.
func (tr *cpuTrace) window(from, to time.Duration) (run, wait map[string]float64) {
	i, j := tr.index(from), tr.index(to)
	run, wait = map[string]float64{}, map[string]float64{}
	for g, v := range tr.run[j] {
		run[g] = float64(v-tr.run[i][g]) / 1e6
		wait[g] = float64(tr.wait[j][g]-tr.wait[i][g]) / 1e6
	}
	return run, wait
}

func (tr *cpuTrace) index(t time.Duration) int {
	for k, at := range tr.at {
		if at >= t {
			return k
		}
	}
	return len(tr.at) - 1
}
