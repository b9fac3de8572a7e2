package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// stats summarises the latencies of one measured row.
type stats struct {
	ok, errs int           // successful and failed operations measured
	elapsed  time.Duration // measured wall time
	p50, p99 time.Duration
}

// summarise merges per-worker latencies (successful operations only),
// sorts them and takes the percentiles (nearest rank).
func summarise(lat [][]time.Duration, errs int, elapsed time.Duration) stats {
	n := 0
	for _, l := range lat {
		n += len(l)
	}
	all := make([]time.Duration, 0, n)
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	s := stats{ok: n, errs: errs, elapsed: elapsed}
	if n > 0 {
		s.p50, s.p99 = all[rank(n, 50)], all[rank(n, 99)]
	}
	return s
}

// rank is the 0-based nearest-rank index of percentile p among n values.
func rank(n, p int) int { return max(0, (n*p+99)/100-1) }

// rate is successful operations per second.
func (s stats) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ok) / s.elapsed.Seconds()
}

// stopFlag is set after d, or as soon as ctx is done. Hot loops read it
// with one atomic load instead of a clock read or a channel poll.
func stopFlag(ctx context.Context, d time.Duration) (*atomic.Bool, func()) {
	var f atomic.Bool
	timer := time.AfterFunc(d, func() { f.Store(true) })
	stopCtx := context.AfterFunc(ctx, func() { f.Store(true) })
	return &f, func() { timer.Stop(); stopCtx() }
}

// table writes a Markdown table header; align holds one of "l" or "r"
// per column.
func table(w io.Writer, align string, cols ...string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(cols, " | "))
	seps := make([]string, len(cols))
	for i := range seps {
		seps[i] = "---"
		if i < len(align) && align[i] == 'r' {
			seps[i] = "---:"
		}
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
}

func row(w io.Writer, cells ...string) { fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | ")) }

// micros formats d in microseconds: one decimal below 10 µs, whole above.
func micros(d time.Duration) string {
	us := float64(d.Nanoseconds()) / 1000
	if us > -10 && us < 10 {
		return strconv.FormatFloat(us, 'f', 1, 64) + " µs"
	}
	return group(int64(math.Round(us))) + " µs"
}

// group formats n in digit groups of three separated by spaces ("21 272").
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func perSecond(r float64) string { return group(int64(r + 0.5)) }

// ratio formats a/b as "1.23×", or "–" when b is zero.
func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64) + "×"
}

// printRatios compares ours with native for each Envoy run and token
// mode: throughput and latency ratios, and the latency each auth filter
// adds over the no-auth listener of the same run.
func printRatios(w io.Writer, results []result) {
	fmt.Fprintf(w, "\nTollgate ext_authz ÷ Envoy jwt_authn (throughput above 1× and latency below 1× favour ours), "+
		"and the latency each adds over no auth in the same Envoy run:\n\n")
	table(w, "rlrrrrr", "Envoy workers", "token", "requests/s ours ÷ native", "p50 ours ÷ native", "p99 ours ÷ native",
		"p50 added: ours / native", "p99 added: ours / native")
	find := func(workers int, auth, token string) (loadResult, bool) {
		for _, r := range results {
			if r.workers == workers && r.auth == auth && r.token == token {
				return r.load, true
			}
		}
		return loadResult{}, false
	}
	for _, r := range results {
		if r.auth != authOurs {
			continue
		}
		ours := r.load
		native, ok1 := find(r.workers, authNative, r.token)
		plain, ok2 := find(r.workers, authNone, tokenNone)
		if !ok1 || !ok2 {
			continue
		}
		row(w, strconv.Itoa(r.workers), r.token, ratio(ours.rate(), native.rate()),
			ratio(float64(ours.p50), float64(native.p50)), ratio(float64(ours.p99), float64(native.p99)),
			micros(ours.p50-plain.p50)+" / "+micros(native.p50-plain.p50),
			micros(ours.p99-plain.p99)+" / "+micros(native.p99-plain.p99))
	}
}
