package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// connLatencyCap is the preallocated length of each connection's latency
// slice: more than 5 s at the plain listener's rate over 16 connections.
const connLatencyCap = 1 << 16

// load is one closed-loop run against a URL.
type load struct {
	url string
	// authz returns the Authorization value of the next request; "" sends
	// none.
	authz func() string
	conns int
	warm  time.Duration // requests sent but not measured
	dur   time.Duration // measured
}

// loadResult is a run's measurements over its measured window: requests
// answered 200 (with their latencies), and errors (other statuses and
// transport errors), the first of which is kept for the report.
type loadResult struct {
	stats
	firstErr string
}

// runLoad runs l.conns clients, each alone on its own keep-alive
// connection and sending its next request as soon as the previous one is
// answered. Requests that start during the warm-up are not measured.
func runLoad(ctx context.Context, l load) loadResult {
	from := time.Now().Add(l.warm)
	stop, cancel := stopFlag(ctx, l.warm+l.dur)
	defer cancel()
	lat := make([][]time.Duration, l.conns)
	errs := make([]int, l.conns)
	first := make([]string, l.conns)
	var wg sync.WaitGroup
	for c := range lat {
		wg.Go(func() { lat[c], errs[c], first[c] = client(l, from, stop) })
	}
	wg.Wait()
	total, firstErr := 0, ""
	for c, n := range errs {
		total += n
		if firstErr == "" {
			firstErr = first[c]
		}
	}
	return loadResult{stats: summarise(lat, total, l.dur), firstErr: firstErr}
}

// client is one connection's loop. Its transport holds exactly one
// connection.
func client(l load, from time.Time, stop *atomic.Bool) ([]time.Duration, int, string) {
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	lat := make([]time.Duration, 0, connLatencyCap)
	errs, first := 0, ""
	for !stop.Load() {
		t0 := time.Now()
		err := get(hc, l.url, l.authz())
		d := time.Since(t0)
		if t0.Before(from) {
			continue
		}
		if err != nil {
			if errs++; first == "" {
				first = err.Error()
			}
			continue
		}
		lat = append(lat, d)
	}
	return lat, errs, first
}

// get sends GET url and reads the whole answer; any status but 200 is an
// error.
func get(hc *http.Client, url, authz string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}
