package main

import (
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/tollgate/tollgate/internal/loadgen"
)

const (
	arrivalFor = 3 * time.Second  // the new consumers arrive within it
	reportFor  = 10 * time.Second // two of Envoy's 5 s report ticks
)

// arrivalsRun sends one request from each of the new consumers (tokens
// never seen, subjects never seen) to a quota stack (named name in the
// output) within arrivalFor: every request verifies a token and creates a
// bucket (RLQS and backstop, or the module's), reported at once. It prints
// the CPU the processes used, per arrival, and then over the next two
// report ticks (every bucket reported).
func arrivalsRun(w io.Writer, name string, st *stack, tokens []string, redisPID int) error {
	if st == nil {
		return fmt.Errorf("no quota stack")
	}
	pids := maps.Clone(st.pids)
	pids["redis"] = redisPID
	url := fmt.Sprintf("http://127.0.0.1:%d/jwt/x", st.port)
	rate := float64(len(tokens)) / arrivalFor.Seconds()
	s := measure(pids, func() loadgen.Result {
		return loadgen.Open(url, cycle("Bearer ", tokens), rate, openConns, 0, arrivalFor)
	})
	fmt.Fprintf(w, "\n%s, %d new consumers within %s (%.0f req/s open loop, one request each):\n\n", name, len(tokens), arrivalFor, rate)
	fmt.Fprintln(w, "| | admitted | refused/failed | p50 | p99 | Envoy | tollgate | Redis |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Fprintf(w, "| arrivals (CPU per new consumer) | %d | %d | %s | %s | %.0f µs | %.0f µs | %.0f µs |\n", s.res.OK, s.res.Bad,
		ms(s.res.P50), ms(s.res.P99), s.cpuUS["envoy"], s.cpuUS["tollgate"], s.cpuUS["redis"])
	idle := measure(pids, func() loadgen.Result { time.Sleep(reportFor); return loadgen.Result{} })
	fmt.Fprintf(w, "| next %s, no requests (CPU in total) | – | – | – | – | %s | %s | %s |\n", reportFor,
		idle.cpu["envoy"], idle.cpu["tollgate"], idle.cpu["redis"])
	return nil
}
