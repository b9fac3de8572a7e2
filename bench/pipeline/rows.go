package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/loadgen"
)

// row is one line of the table: a path through one stack with a
// credential stream.
type row struct {
	name string
	st   *stack
	path string
	auth func(int) string
}

func (r row) url() string { return fmt.Sprintf("http://127.0.0.1:%d%s/x", r.st.port, r.path) }

// pids are the processes the row's CPU columns count.
func (r row) pids(redisPID int) map[string]int {
	p := maps.Clone(r.st.pids)
	p["redis"] = redisPID
	return p
}

// buildRows creates the API keys and lists the rows; each must answer 200
// before any is measured.
func buildRows(stacks map[string]*stack, ts *tokenSet) ([]row, error) {
	ex, qu := stacks["exact"], stacks["quota"]
	keysEx, err := createKeys(ex.api)
	if err != nil {
		return nil, err
	}
	keysQu, err := createKeys(qu.api)
	if err != nil {
		return nil, err
	}
	signed, err := signedKeys(active)
	if err != nil {
		return nil, err
	}
	none := func(int) string { return "" }
	rows := []row{
		{"plain proxying", ex, "/plain", none},
		{"JWT + rate limit, quota", qu, "/jwt", cycle("Bearer ", ts.active)},
		{"JWT + rate limit, quota, all fresh", qu, "/jwt", cycle("Bearer ", ts.fresh)},
		{"JWT + rate limit, exact", ex, "/jwt", cycle("Bearer ", ts.active)},
		{"JWT + rate limit, exact, all fresh", ex, "/jwt", cycle("Bearer ", ts.fresh)},
		{"API key + rate limit, exact", ex, "/key", cycle("ApiKey ", keysEx)},
		{"API key + rate limit, quota", qu, "/key", cycle("ApiKey ", keysQu)},
		{"signed API key + rate limit, exact", ex, "/key", cycle("ApiKey ", signed)},
		{"signed API key + rate limit, quota", qu, "/key", cycle("ApiKey ", signed)},
	}
	if qm := stacks["quota-module"]; qm != nil {
		keysQm, err := createKeys(qm.api)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row{"JWT + rate limit, quota, Envoy module", qm, "/jwt", cycle("Bearer ", ts.active)},
			row{"JWT + rate limit, quota, Envoy module, all fresh", qm, "/jwt", cycle("Bearer ", ts.fresh)},
			row{"signed API key + rate limit, quota, Envoy module", qm, "/key", cycle("ApiKey ", signed)},
			row{"API key + rate limit, quota, Envoy module", qm, "/key", cycle("ApiKey ", keysQm)})
	}
	if eg := stacks["eg"]; eg != nil {
		rows = append(rows, row{"Envoy Gateway shape (jwt_authn + envoyproxy/ratelimit)", eg, "/jwt", cycle("Bearer ", ts.active)},
			row{"Envoy Gateway shape, all fresh", eg, "/jwt", cycle("Bearer ", ts.fresh)})
	}
	for _, r := range rows {
		if err := loadgen.WaitHTTP(r.url(), r.auth(0), 30*time.Second); err != nil {
			return nil, fmt.Errorf("%s: %w", r.name, err)
		}
	}
	return rows, nil
}

// runRows measures every row closed-loop at saturation, then open-loop at
// half of plain proxying's saturated rate.
func runRows(rows []row, redisPID int) (sat, fixed []sample, rate float64) {
	for _, r := range rows {
		loadgen.Run(r.url(), r.auth, satConns, 0, warm)
		sat = append(sat, measure(r.pids(redisPID), func() loadgen.Result {
			return loadgen.Run(r.url(), r.auth, satConns, 0, satFor)
		}))
	}
	rate = sat[0].res.RPS / 2
	for _, r := range rows {
		loadgen.Open(r.url(), r.auth, rate, openConns, 0, warm)
		fixed = append(fixed, measure(r.pids(redisPID), func() loadgen.Result {
			return loadgen.Open(r.url(), r.auth, rate, openConns, 0, fixedFor)
		}))
	}
	return sat, fixed, rate
}

// report prints the main table (saturation, latency at the fixed rate,
// CPU per request at saturation) and the CPU per request at the fixed rate.
func report(w io.Writer, rows []row, sat, fixed []sample, rate float64) {
	fmt.Fprintf(w, "\nclosed loop: %d connections, %s warm-up + %s per row; open loop: %.0f req/s (half of plain's saturation), %d connections, %s + %s per row\n\n",
		satConns, warm, satFor, rate, openConns, warm, fixedFor)
	fmt.Fprintln(w, "| pipeline | req/s at saturation | × plain | p50 at fixed rate | p99 at fixed rate | p99 − plain's | errors (sat/fixed) | Envoy µs/req | tollgate µs/req | Redis µs/req | ratelimit µs/req | total µs/req |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	plain := sat[0].res.RPS
	for i, r := range rows {
		s, f := sat[i], fixed[i]
		fmt.Fprintf(w, "| %s | %.0f | %.2f× | %s | %s | %+.2f ms | %d/%d |%s\n", r.name, s.res.RPS, s.res.RPS/plain,
			ms(f.res.P50), ms(f.res.P99), float64(f.res.P99-fixed[0].res.P99)/1e6, s.res.Bad, f.res.Bad, cpuCells(s))
	}
	fmt.Fprintf(w, "\nCPU per request at the fixed rate (%.0f req/s; idle wake-ups inflate every row):\n\n", rate)
	fmt.Fprintln(w, "| pipeline | admitted req/s | Envoy µs/req | tollgate µs/req | Redis µs/req | ratelimit µs/req | total µs/req |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for i, r := range rows {
		fmt.Fprintf(w, "| %s | %.0f |%s\n", r.name, fixed[i].res.RPS, cpuCells(fixed[i]))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// machine describes the run: CPUs, model, memory, load, time.
func machine() string {
	model, mem := "?", "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimLeft(v, "\t :")
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Join(strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1:], " ")
	}
	return fmt.Sprintf("machine: %s/%s, %d CPUs (%s), MemTotal %s, %s; %s; load before: %s",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), model, mem, runtime.Version(), time.Now().UTC().Format(time.RFC3339), loadavg())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// onlyRows returns plain proxying (the first row, the ratio's base) and the
// rows whose name contains sub; every row when sub is empty.
func onlyRows(rows []row, sub string) []row {
	if sub == "" {
		return rows
	}
	out := rows[:1:1]
	for _, r := range rows[1:] {
		if strings.Contains(r.name, sub) {
			out = append(out, r)
		}
	}
	return out
}
