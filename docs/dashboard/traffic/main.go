// Command traffic sends the traffic of the dashboard screenshot run
// (docs/dashboard/run.sh): four workers, each about 12 requests/s, mixing
// users, search (with upstream delays growing in the second half), orders
// (8 % answered 503 by the upstream), anonymous calls (401) and a trial
// consumer that exceeds its 60/minute (429). Usage:
//
//	traffic GATEWAY_URL PRO_KEY TRIAL_KEY SECONDS
package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

const (
	workers = 4
	pace    = 80 * time.Millisecond // least time between a worker's requests
)

// run is one traffic run: the gateway, the two consumers' keys and the span.
type run struct {
	base, pro, trial string
	start, end       time.Time
	client           *http.Client
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: traffic GATEWAY_URL PRO_KEY TRIAL_KEY SECONDS")
		os.Exit(2)
	}
	secs, err := strconv.ParseFloat(os.Args[4], 64)
	if err != nil || secs <= 0 {
		fmt.Fprintf(os.Stderr, "traffic: SECONDS %q: want a positive number\n", os.Args[4])
		os.Exit(2)
	}
	now := time.Now()
	r := run{
		base: os.Args[1], pro: os.Args[2], trial: os.Args[3],
		start: now, end: now.Add(time.Duration(secs * float64(time.Second))),
		// One connection per request, as the screenshot's clients do.
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { r.worker(uint64(i)) })
	}
	wg.Wait()
}

// worker sends requests until the end of the run, at most one per pace.
func (r run) worker(seed uint64) {
	rnd := rand.New(rand.NewPCG(seed, seed))
	for {
		t := time.Now()
		if !t.Before(r.end) {
			return
		}
		path, key := r.pick(rnd, t)
		r.call(path, key)
		time.Sleep(pace - time.Since(t))
	}
}

// pick chooses the next request at time t: its path and API key ("" for
// none).
func (r run) pick(rnd *rand.Rand, t time.Time) (string, string) {
	x := rnd.Float64()
	switch {
	case x < 0.35:
		return fmt.Sprintf("/api/users/%d", 1+rnd.IntN(999)), r.pro
	case x < 0.60:
		return fmt.Sprintf("/api/search/delay/%.1fms", rnd.ExpFloat64()*r.searchDelay(t)), r.pro
	case x < 0.78:
		if rnd.Float64() < 0.08 {
			return "/api/orders/status/503", r.pro
		}
		return fmt.Sprintf("/api/orders/delay/%.1fms", 1+11*rnd.Float64()), r.pro
	case x < 0.86:
		return "/api/users/anonymous", "" // 401
	case x < 0.95:
		return "/api/search/delay/2ms", r.trial // 429 once over 60/minute
	}
	return "/healthz", ""
}

// searchDelay is the mean upstream delay of search in ms at time t: 5 ms in
// the first half of the run, then growing to 65 ms ("since when").
func (r run) searchDelay(t time.Time) float64 {
	frac := t.Sub(r.start).Seconds() / r.end.Sub(r.start).Seconds()
	return 5 + 60*max(0, frac-0.5)*2
}

// call sends one GET and reads the answer; errors and statuses are ignored
// (the dashboard counts them).
func (r run) call(path, key string) {
	req, err := http.NewRequest(http.MethodGet, r.base+path, nil)
	if err != nil {
		return
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
}
