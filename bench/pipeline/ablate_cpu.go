package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/loadgen"
)

// roundSample is one CPU-mode measurement of a variant: Envoy CPU per
// admitted request (all threads, /proc/PID/stat), the same split by
// thread group (schedstat: worker threads "wrk:*", the main thread, the
// others, which include the Go runtime's threads of a dynamic module),
// the admitted rate, and the machine load right after.
type roundSample struct {
	round         int
	us, rps       float64
	wrk, main, ot float64 // µs/req by thread group
	user, sys     float64 // µs/req in user space and in the kernel (all threads)
	cpu, wall     time.Duration
	bad           int
	load          string
	top           string // the busiest threads (name/tid µs/req)
}

// measureRound runs one closed-loop (rate 0) or open-loop measurement of
// ve and returns it.
func measureRound(ve *variantEnvoy, auth func(int) string, o ablateOpts, round int) roundSample {
	t0 := procThreads(ve.pid)
	u0, k0, _ := cpuUserSys(ve.pid)
	start := time.Now()
	s := measure(map[string]int{"envoy": ve.pid}, func() loadgen.Result {
		if o.rate == 0 {
			return loadgen.Run(ve.url, auth, satConns, 0, o.dur)
		}
		return loadgen.Open(ve.url, auth, o.rate, openConns, 0, o.dur)
	})
	r := roundSample{round: round, us: s.cpuUS["envoy"], rps: s.res.RPS, cpu: s.cpu["envoy"],
		wall: time.Since(start), bad: s.res.Bad, load: loadavg()}
	t1 := procThreads(ve.pid)
	u1, k1, _ := cpuUserSys(ve.pid)
	g := groupDelta(ve.pid, t0, t1)
	if n := float64(s.res.OK); n > 0 {
		r.user, r.sys = float64((u1-u0).Microseconds())/n, float64((k1-k0).Microseconds())/n
		r.wrk, r.main, r.ot = g["envoy-wrk"]/1e3/n, g["envoy-main"]/1e3/n, g["envoy-other"]/1e3/n
		r.top = topThreads(t0, t1, n, 6)
	}
	return r
}

// topThreads lists the k threads that ran longest between two
// snapshots, in µs per request of n requests.
func topThreads(before, after map[string]threadCPU, n float64, k int) string {
	keys := slices.Collect(maps.Keys(after))
	d := func(key string) int64 { return after[key].run - before[key].run }
	sort.Slice(keys, func(i, j int) bool { return d(keys[i]) > d(keys[j]) })
	var parts []string
	for _, key := range keys[:min(k, len(keys))] {
		parts = append(parts, fmt.Sprintf("%s %.1f", key, float64(d(key))/1e3/n))
	}
	return strings.Join(parts, ", ")
}

// groupDelta returns the run time (ns) each thread group of Envoy pid
// used between two procThreads snapshots.
func groupDelta(pid int, before, after map[string]threadCPU) map[string]float64 {
	out := map[string]float64{}
	for k, a := range after {
		out[cpuGroup("envoy", k, pid)] += float64(a.run - before[k].run)
	}
	return out
}

// printRounds prints every CPU-mode measurement by round with its ratios
// to the same round's plain measurement: plain's µs/req over the
// variant's (what throughput would be if Envoy's CPU were the only
// limit) and the variant's req/s over plain's. The full configuration
// ("none"), measured before every variant, shows the median of its
// measurements in the round.
func printRounds(w io.Writer, envs []*variantEnvoy) {
	var plain *variantEnvoy
	for _, ve := range envs {
		if ve.v.name == "plain" {
			plain = ve
		}
	}
	fmt.Fprintln(w, "\nper round (closed loop unless -rate; Envoy µs/req all threads, then worker / main / other threads; ratios to the round's plain):")
	fmt.Fprintln(w, "\n| round | variant | n | Envoy µs/req | user / sys µs/req | wrk / main / other µs/req | Envoy CPU / wall | req/s | plain µs ÷ variant µs | req/s ÷ plain | load after |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---|---|---:|---:|---:|---:|---|")
	rounds := 0
	for _, s := range envs[len(envs)-1].rounds {
		rounds = max(rounds, s.round+1)
	}
	defer printTop(w, envs, rounds-1)
	for r := range rounds {
		var base roundSample
		if plain != nil {
			base = roundMedian(plain.rounds, r)
		}
		for _, ve := range envs {
			s := roundMedian(ve.rounds, r)
			if s.rps == 0 {
				continue
			}
			cr, tr := "–", "–"
			if base.rps > 0 {
				cr, tr = fmt.Sprintf("%.3f", base.us/s.us), fmt.Sprintf("%.3f", s.rps/base.rps)
			}
			fmt.Fprintf(w, "| %d | %s | %d | %.1f | %.0f / %.0f | %.1f / %.1f / %.1f | %.2f | %.0f | %s | %s | %s |\n", r+1, ve.v.name,
				countRound(ve.rounds, r), s.us, s.user, s.sys, s.wrk, s.main, s.ot, s.cpu.Seconds()/s.wall.Seconds(), s.rps, cr, tr, s.load)
		}
	}
}

// roundMedian returns the sample of round r (the one with the median
// µs/req when there are several); zero when none.
func roundMedian(xs []roundSample, r int) roundSample {
	var in []roundSample
	for _, s := range xs {
		if s.round == r {
			in = append(in, s)
		}
	}
	if len(in) == 0 {
		return roundSample{}
	}
	sort.Slice(in, func(i, j int) bool { return in[i].us < in[j].us })
	return in[len(in)/2]
}

func countRound(xs []roundSample, r int) int {
	n := 0
	for _, s := range xs {
		if s.round == r {
			n++
		}
	}
	return n
}

// printIdle measures every variant's Envoy, all idle at once, over d and
// prints its CPU time by thread name (schedstat, ns precision): the
// background cost of the process, e.g. a Go runtime's.
func printIdle(w io.Writer, envs []*variantEnvoy, d time.Duration, when string) {
	before := make([]map[string]threadCPU, len(envs))
	for i, ve := range envs {
		before[i] = procThreads(ve.pid)
	}
	time.Sleep(d)
	fmt.Fprintf(w, "\nidle %s: Envoy CPU over %s with no request (load after: %s)\n\n| variant | threads | CPU ms | %% of a core | by thread name (ms) |\n|---|---:|---:|---:|---|\n", when, d, loadavg())
	for i, ve := range envs {
		after := procThreads(ve.pid)
		byName := map[string]float64{}
		total := 0.0
		for k, a := range after {
			ns := float64(a.run - before[i][k].run)
			name, _, _ := strings.Cut(k, "/")
			byName[name] += ns
			total += ns
		}
		var parts []string
		for _, n := range slices.Sorted(maps.Keys(byName)) {
			if byName[n] >= 1e5 {
				parts = append(parts, fmt.Sprintf("%s %.1f", n, byName[n]/1e6))
			}
		}
		fmt.Fprintf(w, "| %s | %d | %.1f | %.3f | %s |\n", ve.v.name, len(after), total/1e6, 100*total/float64(d.Nanoseconds()), strings.Join(parts, ", "))
	}
}

// printTop prints each variant's busiest threads in round r.
func printTop(w io.Writer, envs []*variantEnvoy, r int) {
	fmt.Fprintf(w, "\nbusiest Envoy threads in round %d (name/tid µs/req):\n\n", r+1)
	for _, ve := range envs {
		fmt.Fprintf(w, "- %s: %s\n", ve.v.name, roundMedian(ve.rounds, r).top)
	}
}

// inOrder sorts the variants in the order -variants names them (a check
// of the position in the round); unnamed ones keep theirs, last.
func inOrder(envs []*variantEnvoy, only string) {
	names := strings.Split(only, ",")
	pos := func(ve *variantEnvoy) int {
		if i := slices.Index(names, ve.v.name); i >= 0 {
			return i
		}
		return len(names)
	}
	sort.SliceStable(envs, func(i, j int) bool { return pos(envs[i]) < pos(envs[j]) })
}
