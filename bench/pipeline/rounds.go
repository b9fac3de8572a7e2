package main

import (
	"fmt"
	"io"
	"slices"

	"github.com/tollgate/tollgate/internal/loadgen"
)

// roundsRun measures every row closed-loop at saturation n times, the rows
// in turn within each round, and prints per row the median and quartiles
// of its throughput and of its Envoy CPU per request, each as a ratio to
// plain proxying's in the same round: on a shared, noisy machine a ratio
// taken from rows measured seconds apart says more than one run's table.
func roundsRun(w io.Writer, rows []row, redisPID, n int) {
	thr := make([][]float64, len(rows))
	cpu := make([][]float64, len(rows))
	for range n {
		var round []sample
		for _, r := range rows {
			loadgen.Run(r.url(), r.auth, satConns, 0, warm)
			round = append(round, measure(r.pids(redisPID), func() loadgen.Result {
				return loadgen.Run(r.url(), r.auth, satConns, 0, satFor)
			}))
		}
		for i, s := range round {
			thr[i] = append(thr[i], s.res.RPS/round[0].res.RPS)
			cpu[i] = append(cpu[i], round[0].cpuUS["envoy"]/s.cpuUS["envoy"])
		}
	}
	fmt.Fprintf(w, "\n%d paired rounds at saturation (%d connections, %s each): ratio to plain proxying in the same round, median (quartiles)\n\n",
		n, satConns, satFor)
	fmt.Fprintln(w, "| pipeline | throughput × plain | plain's Envoy CPU per request ÷ the row's |")
	fmt.Fprintln(w, "|---|---:|---:|")
	for i, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s |\n", r.name, quartiles(thr[i]), quartiles(cpu[i]))
	}
}

// quartiles formats the median and the first and third quartiles of v.
func quartiles(v []float64) string {
	s := slices.Sorted(slices.Values(v))
	at := func(q float64) float64 { return s[int(q*float64(len(s)-1)+0.5)] }
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", at(0.5), at(0.25), at(0.75))
}
