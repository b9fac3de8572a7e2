package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/loadgen"
)

// clockTick is the length of one /proc/PID/stat tick (USER_HZ, 100 on
// Linux).
const clockTick = 10 * time.Millisecond

// procNames are the processes whose CPU the table reports, in its order.
func procNames() []string { return []string{"envoy", "tollgate", "redis", "ratelimit"} }

// cpuTime returns the user + system CPU time pid has used (all threads).
func cpuTime(pid int) (time.Duration, error) {
	u, k, err := cpuUserSys(pid)
	return u + k, err
}

// cpuUserSys returns the user and the system CPU time pid has used (all
// threads).
func cpuUserSys(pid int) (user, sys time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return time.Duration(u) * clockTick, time.Duration(k) * clockTick, nil
}

// cpuSnap reads the CPU time of every named process.
func cpuSnap(pids map[string]int) map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, pid := range pids {
		if d, err := cpuTime(pid); err == nil {
			out[name] = d
		}
	}
	return out
}

// sample is one measured run: the load result and each process's CPU per
// admitted request (µs), plus the CPU totals.
type sample struct {
	res   loadgen.Result
	cpuUS map[string]float64
	cpu   map[string]time.Duration
}

// measure runs load (without a warm-up of its own) and charges the CPU
// the processes used meanwhile to its admitted requests.
func measure(pids map[string]int, load func() loadgen.Result) sample {
	before := cpuSnap(pids)
	res := load()
	after := cpuSnap(pids)
	s := sample{res: res, cpuUS: map[string]float64{}, cpu: map[string]time.Duration{}}
	reqs := float64(res.OK)
	for name, b := range before {
		s.cpu[name] = after[name] - b
		if reqs > 0 {
			s.cpuUS[name] = float64((after[name] - b).Microseconds()) / reqs
		}
	}
	return s
}

// cpuCells formats the CPU columns of a sample: one per procNames entry
// ("–" for a process the row does not use) and the total.
func cpuCells(s sample) string {
	var b strings.Builder
	total := 0.0
	for _, n := range procNames() {
		v, ok := s.cpuUS[n]
		if !ok {
			b.WriteString(" – |")
			continue
		}
		total += v
		fmt.Fprintf(&b, " %.0f |", v)
	}
	fmt.Fprintf(&b, " %.0f |", total)
	return b.String()
}
