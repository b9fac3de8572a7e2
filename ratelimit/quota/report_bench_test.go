package quota

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/policy/ir"
)

// bigReport is one Envoy usage report of n consumer buckets, as Envoy
// sends every 5 s.
func bigReport(n int) *rlqsv3.RateLimitQuotaUsageReports {
	r := &rlqsv3.RateLimitQuotaUsageReports{Domain: ir.RateLimitQuotaDomain}
	for i := range n {
		id := consumerBucket("tiny")
		id[ir.BucketKeyConsumer] = "consumer-" + strconv.Itoa(i)
		r.BucketQuotaUsages = append(r.BucketQuotaUsages, &rlqsv3.RateLimitQuotaUsageReports_BucketQuotaUsage{
			BucketId: &rlqsv3.BucketId{Bucket: id}, TimeElapsed: durationpb.New(5 * time.Second), NumRequestsAllowed: 1})
	}
	return r
}

// processCPU is this process's user + system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is a redis-server's CPU time (INFO cpu).
func redisCPU(tb testing.TB, c *redis.Client) time.Duration {
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var total float64
	for _, l := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

// BenchmarkServerReport1000 is the RLQS server's cost of one Envoy usage
// report of 1,000 buckets (what each Envoy sends every 5 s with 1,000
// active consumers) against a real Redis: wall time per report (ns/op),
// the server's CPU per report (cpu-ms/report, the whole test process: GC
// included) and Redis's (redis-cpu-ms/report).
func BenchmarkServerReport1000(b *testing.B) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		b.Skip("redis-server not installed")
	}
	client := redis.NewClient(&redis.Options{Addr: harness.StartRedis(b), ContextTimeoutEnabled: true})
	b.Cleanup(func() { _ = client.Close() })
	s := New(Options{Account: NewRedisAccount(client, "", time.Second)})
	if _, err := s.Swap(testConfig(ir.FailOpen)); err != nil {
		b.Fatal(err)
	}
	st := &stream{id: "bench", buckets: map[string]*bucketState{}, send: func(*rlqsv3.RateLimitQuotaResponse) error { return nil }}
	report := bigReport(1000)
	ctx := context.Background()
	if resp := s.answer(ctx, st, report, nil); len(resp.GetBucketAction()) != 2000 {
		b.Fatal(fmt.Sprint("first answer: ", len(resp.GetBucketAction()), " actions"))
	}
	b.ReportAllocs()
	cpu0, r0 := processCPU(), redisCPU(b, client)
	b.ResetTimer()
	for b.Loop() {
		if s.answer(ctx, st, report, nil) == nil {
			b.Fatal("no answer")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/1e6/float64(b.N), "cpu-ms/report")
	b.ReportMetric(float64(redisCPU(b, client)-r0)/1e6/float64(b.N), "redis-cpu-ms/report")
}
