// Package loadgen is a small closed-loop HTTP load generator for the
// benchmark drivers: fixed keep-alive connections, a warm-up, latency
// percentiles of the 200 responses.
package loadgen

import (
	"fmt"
	"io"
	"net/http"
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
	return result(lat, ok, bad, d)
}

// client is one connection's loop.
func client(url string, headers func(i int) string, c int, from, end time.Time) ([]time.Duration, int, int) {
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	lat := make([]time.Duration, 0, 1<<16)
	ok, bad := 0, 0
	for i := c << 24; time.Now().Before(end); i++ {
		t0 := time.Now()
		status := get(hc, url, headers(i))
		if t0.Before(from) {
			continue
		}
		if status != http.StatusOK {
			bad++
			continue
		}
		ok++
		lat = append(lat, time.Since(t0))
	}
	return lat, ok, bad
}

// get sends GET url with the Authorization value authz (none when empty)
// and returns the status, or 0 on a transport error.
func get(hc *http.Client, url, authz string) int {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Row formats the result as a Markdown table row.
func (r Result) Row(name string) string {
	return fmt.Sprintf("| %s | %.0f | %s | %s | %d |", name, r.RPS, Micros(r.P50), Micros(r.P99), r.Bad)
}

// Micros formats d in whole microseconds.
func Micros(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d.Nanoseconds())/1000) }
