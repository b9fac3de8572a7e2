package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tollgate/tollgate/extauthz"
	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/internal/jwttest"
	"github.com/tollgate/tollgate/internal/loadgen"
)

// checkTable measures Check() in-process from 2×GOMAXPROCS goroutines.
func checkTable(w io.Writer, svc *extauthz.Service, iss *jwttest.Issuer, keys apikey.Store) error {
	tok, err := iss.Token("alice", []string{"user"}, time.Hour, 0)
	if err != nil {
		return err
	}
	pool := make([]string, 3000)
	for i := range pool {
		if pool[i], err = iss.Token("alice", []string{"user"}, time.Hour, i+1); err != nil {
			return err
		}
	}
	key, _, err := keys.Create(context.Background(), apikey.Record{Consumer: "acme", Roles: []string{"user"}, CreatedAt: time.Now()})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "Check() in-process, 4 goroutines:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| credential | checks/s | p50 | p99 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	rows := []struct {
		name    string
		methods string
		hdr     func(i int) map[string]string
		n       int
	}{
		{"JWT, cached", "jwt", func(int) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }, 0},
		{"JWT, first seen (RS256 verify)", "jwt", func(i int) map[string]string { return map[string]string{"authorization": "Bearer " + pool[i]} }, len(pool)},
		{"API key, memory store", "apiKey", func(int) map[string]string { return map[string]string{"x-api-key": key} }, 0},
	}
	for _, r := range rows {
		fmt.Fprintln(w, checkRow(measure(svc, r.methods, r.hdr, r.n), r.name))
	}
	return redisRows(w, iss)
}

// measure calls Check for 2 s from 4 goroutines (or n calls in all when n > 0).
func measure(svc *extauthz.Service, methods string, hdr func(i int) map[string]string, n int) loadgen.Result {
	const g = 4
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(2 * time.Second)
	for k := 0; k < g; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			var mine []time.Duration
			for i := k; (n == 0 && time.Now().Before(end)) || (n > 0 && i < n); i += g {
				req := request(methods, hdr(i))
				t0 := time.Now()
				_, _ = svc.Check(context.Background(), req)
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(k)
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return loadgen.Result{RPS: float64(len(lat)) / elapsed.Seconds(), P50: lat[len(lat)/2], P99: lat[len(lat)*99/100], OK: len(lat)}
}

func request(methods string, headers map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		ContextExtensions: map[string]string{contract.KeyRoute: "r", contract.KeyMethods: methods, contract.KeyRoles: "user"},
		Request:           &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Headers: headers}},
	}}
}

func checkRow(r loadgen.Result, name string) string {
	return fmt.Sprintf("| %s | %.0f | %s | %s |", name, r.RPS, loadgen.Micros(r.P50), loadgen.Micros(r.P99))
}
