package loadgen

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Sample is one request of a traced open-loop run: when it was scheduled
// (since the run's start, warm-up included), its latency from that time,
// and whether it answered 200.
type Sample struct {
	At, Lat time.Duration
	OK      bool
}

// OpenTrace is Open without a warm-up that returns every request: an
// open-loop load at rate req/s over conns keep-alive connections for d,
// latency from each request's scheduled time. Samples are in no order.
func OpenTrace(url string, headers func(i int) string, rate float64, conns int, d time.Duration) []Sample {
	start := time.Now()
	end := start.Add(d)
	sched := make(chan time.Time, conns)
	go func() {
		defer close(sched)
		step := time.Duration(float64(time.Second) / rate)
		for t := start; t.Before(end); t = t.Add(step) {
			sched <- t
		}
	}()
	var mu sync.Mutex
	var out []Sample
	var next atomic.Int64
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			var mine []Sample
			for t := range sched {
				time.Sleep(time.Until(t))
				status := get(hc, url, headers(int(next.Add(1))))
				mine = append(mine, Sample{At: t.Sub(start), Lat: time.Since(t), OK: status == http.StatusOK})
			}
			mu.Lock()
			out = append(out, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}
