// Package loadgen is a small closed-loop HTTP load generator for the
// benchmark drivers: fixed keep-alive connections, a warm-up, latency
// percentiles of the 200 responses.
package loadgen

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Result is one closed-loop load run.
type Result struct {
	RPS      float64
	P50, P99 time.Duration
	OK, Bad  int
}

// Run runs conns closed-loop clients, each on its own keep-alive
// connection, for d after a warm-up, and measures 200 responses. headers
// returns the Authorization value of request i ("" for none).
func Run(url string, headers func(i int) string, conns int, warm, d time.Duration) Result {
	var mu sync.Mutex
	var lat []time.Duration
	var ok, bad int
	var wg sync.WaitGroup
	start := time.Now()
	measureFrom, end := start.Add(warm), start.Add(warm+d)
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			l, o, b := client(url, headers, c, measureFrom, end)
			mu.Lock()
			lat, ok, bad = append(lat, l...), ok+o, bad+b
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := Result{OK: ok, Bad: bad, RPS: float64(ok) / d.Seconds()}
	if len(lat) > 0 {
		r.P50, r.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}

// client is one connection's loop.
func client(url string, headers func(i int) string, c int, from, end time.Time) ([]time.Duration, int, int) {
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	lat := make([]time.Duration, 0, 1<<16)
	ok, bad := 0, 0
	for i := c << 24; time.Now().Before(end); i++ {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if h := headers(i); h != "" {
			req.Header.Set("Authorization", h)
		}
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if t0.Before(from) {
			continue
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			bad++
			continue
		}
		ok++
		lat = append(lat, time.Since(t0))
	}
	return lat, ok, bad
}

// Row formats the result as a Markdown table row.
func (r Result) Row(name string) string {
	return fmt.Sprintf("| %s | %.0f | %s | %s | %d |", name, r.RPS, Micros(r.P50), Micros(r.P99), r.Bad)
}

// Micros formats d in whole microseconds.
func Micros(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d.Nanoseconds())/1000) }
