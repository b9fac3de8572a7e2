package loadgen

import (
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Open runs an open-loop load: requests are scheduled at a fixed rate
// (req/s) whether or not earlier ones have answered, served by conns
// keep-alive connections, for d after a warm-up. Latency runs from each
// request's scheduled time, so a stalled server's queueing counts
// (no coordinated omission). RPS is the rate of 200 answers reached.
func Open(url string, headers func(i int) string, rate float64, conns int, warm, d time.Duration) Result {
	start := time.Now()
	measureFrom, end := start.Add(warm), start.Add(warm+d)
	sched := make(chan time.Time, conns)
	go func() {
		defer close(sched)
		step := time.Duration(float64(time.Second) / rate)
		for t := start; t.Before(end); t = t.Add(step) {
			sched <- t
		}
	}()
	var mu sync.Mutex
	var lat []time.Duration
	var ok, bad int
	var next atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < conns; c++ {
		wg.Go(func() {
			l, o, b := openClient(url, headers, &next, sched, measureFrom)
			mu.Lock()
			lat, ok, bad = append(lat, l...), ok+o, bad+b
			mu.Unlock()
		})
	}
	wg.Wait()
	return result(lat, ok, bad, d)
}

// openClient is one connection of Open: it takes the next scheduled time,
// waits for it and sends the request.
func openClient(url string, headers func(i int) string, next *atomic.Int64, sched <-chan time.Time, from time.Time) ([]time.Duration, int, int) {
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var lat []time.Duration
	ok, bad := 0, 0
	for t := range sched {
		time.Sleep(time.Until(t))
		status := get(hc, url, headers(int(next.Add(1))))
		if t.Before(from) {
			continue
		}
		if status != http.StatusOK {
			bad++
			continue
		}
		ok++
		lat = append(lat, time.Since(t))
	}
	return lat, ok, bad
}

// result sorts the latencies and summarises a run of length d.
func result(lat []time.Duration, ok, bad int, d time.Duration) Result {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := Result{OK: ok, Bad: bad, RPS: float64(ok) / d.Seconds()}
	if len(lat) > 0 {
		r.P50, r.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}
