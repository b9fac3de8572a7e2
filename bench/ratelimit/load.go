package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type result struct {
	rps      float64
	p50, p99 time.Duration
	cmds     float64
	errs     int64
}

func (r result) row(name string, limits int) string {
	return fmt.Sprintf("| %s | %d | %.0f | %.0f µs | %.0f µs | %.2f |", name, limits, r.rps,
		float64(r.p50.Nanoseconds())/1000, float64(r.p99.Nanoseconds())/1000, r.cmds)
}

// oursRequest is what Envoy sends Tollgate for consumer c.
func oursRequest(c string) *rlsv3.RateLimitRequest {
	return &rlsv3.RateLimitRequest{Domain: "tollgate", Descriptors: []*commonrl.RateLimitDescriptor{{Entries: []*commonrl.RateLimitDescriptor_Entry{
		{Key: "route", Value: "api"}, {Key: "consumer", Value: c}, {Key: "tier", Value: "bench"}}}}}
}

// refRequest is the equivalent request for the reference configuration.
func refRequest(limits int) func(string) *rlsv3.RateLimitRequest {
	return func(c string) *rlsv3.RateLimitRequest {
		req := &rlsv3.RateLimitRequest{Domain: "tollgate"}
		for i := 0; i < limits; i++ {
			req.Descriptors = append(req.Descriptors, &commonrl.RateLimitDescriptor{Entries: []*commonrl.RateLimitDescriptor_Entry{
				{Key: "route", Value: fmt.Sprintf("api%d", i)}, {Key: "consumer", Value: c}}})
		}
		return req
	}
}

// measure runs 16 clients (each its own consumer) for 3 s after a 0.5 s
// warm-up and counts Redis commands per decision.
func measure(addr, redisAddr string, mk func(string) *rlsv3.RateLimitRequest) (result, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return result{}, err
	}
	defer conn.Close()
	client := rlsv3.NewRateLimitServiceClient(conn)
	drive(client, mk, 500*time.Millisecond) // warm-up
	before, err := redisCommands(redisAddr)
	if err != nil {
		return result{}, err
	}
	lat, errs, elapsed := drive(client, mk, 3*time.Second)
	after, err := redisCommands(redisAddr)
	if err != nil {
		return result{}, err
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return result{}, fmt.Errorf("no decisions (%d errors)", errs)
	}
	return result{rps: float64(len(lat)) / elapsed.Seconds(), p50: lat[len(lat)/2], p99: lat[len(lat)*99/100],
		cmds: float64(after-before-1) / float64(len(lat)), errs: errs}, nil
}

func drive(client rlsv3.RateLimitServiceClient, mk func(string) *rlsv3.RateLimitRequest, d time.Duration) ([]time.Duration, int64, time.Duration) {
	var mu sync.Mutex
	var all []time.Duration
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			req := mk("consumer-" + strconv.Itoa(g))
			lat := make([]time.Duration, 0, 1<<15)
			for time.Since(start) < d {
				t0 := time.Now()
				if _, err := client.ShouldRateLimit(context.Background(), req); err != nil {
					errs.Add(1)
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}(g)
	}
	wg.Wait()
	return all, errs.Load(), time.Since(start)
}

func redisCommands(addr string) (int64, error) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(context.Background(), "stats").Result()
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "total_commands_processed:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no total_commands_processed")
}

// exactness sends 500 decisions for one consumer with a limit of 100 per
// minute from 50 concurrent clients to each service.
func exactness(w io.Writer, ref, dir, redisAddr string) error {
	fmt.Fprintln(w, "\nExactness: limit 100/minute, one consumer, 500 decisions from 50 concurrent clients:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| service | admitted |")
	fmt.Fprintln(w, "|---|---:|")
	oursAddr, stopOurs, err := serveOurs(redisAddr, 1, 100)
	if err != nil {
		return err
	}
	n, err := admitted(oursAddr, oursRequest("exact"))
	stopOurs()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "| tollgate | %d |\n", n)
	refAddr, stopRef, err := startRef(ref, dir, redisAddr, 1, 100)
	if err != nil {
		return err
	}
	defer stopRef()
	n, err = admitted(refAddr, refRequest(1)("exact"))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "| envoyproxy/ratelimit | %d |\n", n)
	return nil
}

func admitted(addr string, req *rlsv3.RateLimitRequest) (int64, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	client := rlsv3.NewRateLimitServiceClient(conn)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if resp, err := client.ShouldRateLimit(context.Background(), req); err == nil && resp.GetOverallCode() == rlsv3.RateLimitResponse_OK {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return ok.Load(), nil
}
