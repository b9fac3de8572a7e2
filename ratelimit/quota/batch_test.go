package quota

import (
	"context"
	"errors"
	"math"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit/counter"
)

// tripCounter counts round trips to Redis: single commands and pipelines,
// leaving out go-redis's connection set-up (HELLO, CLIENT SETINFO).
type tripCounter struct{ single, pipelines atomic.Int64 }

func (c *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" {
			c.single.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() != "client" {
			c.pipelines.Add(1)
		}
		return next(ctx, cmds)
	}
}

// redisClient is a client of a throw-away redis-server, or skips.
func redisClient(tb testing.TB) *redis.Client {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Skip("redis-server not installed")
	}
	client := redis.NewClient(&redis.Options{Addr: harness.StartRedis(tb), ContextTimeoutEnabled: true})
	tb.Cleanup(func() { _ = client.Close() })
	return client
}

// batchSettlements are settlements exercising the batch: two participants
// sharing keys, a bucket of two windows, one of two hash tags, repeated
// participants (each must see the ones before it) and an invalid limit.
func batchSettlements() []Settlement {
	hour := counter.Limit{Key: "{c:alice}:tier:1000r3600s0b", Requests: 1000, Per: time.Hour}
	ip := counter.Limit{Key: "{ip:10.0.0.1}:anon:50r60s0b", Requests: 50, Per: time.Minute}
	invalid := counter.Limit{Key: "{c:bob}:tier:0r60s0b", Requests: 0, Per: time.Minute}
	st := func(p string, used uint64, demand float64, limits ...counter.Limit) Settlement {
		return Settlement{Participant: p, Limits: limits, Used: used, Demand: demand, Hold: time.Minute}
	}
	return []Settlement{
		st("A", 1, 1, minuteLimit, hour),
		st("B", 0, 2, minuteLimit),
		st("A", 19, 8, minuteLimit, hour),
		st("C", 3, 1, minuteLimit, ip),
		st("D", 1, 1, invalid),
		st("B", 5, 2, minuteLimit),
		st("A", 1000, 8, minuteLimit, hour),
	}
}

// TestRedisSettleBatchMatchesSettle: SettleBatch gives each settlement
// what Settle one by one gives (on another key prefix of the same Redis),
// the invalid one its own error without failing the others, and sends
// the script calls in one pipeline, not one round trip each; after SCRIPT
// FLUSH it loads the script and charges each settlement once.
func TestRedisSettleBatchMatchesSettle(t *testing.T) {
	client := redisClient(t)
	var trips tripCounter
	client.AddHook(&trips)
	ctx := context.Background()
	for _, flush := range []bool{false, true} {
		t.Run("flush="+strconv.FormatBool(flush), func(t *testing.T) {
			prefix := "t" + strconv.FormatBool(flush)
			one, batch := NewRedisAccount(client, prefix+"one:", time.Second), NewRedisAccount(client, prefix+"batch:", time.Second)
			ss := batchSettlements()
			if err := client.ScriptLoad(ctx, settleSource).Err(); err != nil { // and the connection is open
				t.Fatal(err)
			}
			if flush {
				if err := client.ScriptFlush(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			trips.single.Store(0)
			trips.pipelines.Store(0)
			states, errs := batch.SettleBatch(ctx, ss)
			if n := trips.single.Load(); n != 0 {
				t.Errorf("%d single commands, want 0", n)
			}
			if n, want := trips.pipelines.Load(), map[bool]int64{false: 1, true: 2}[flush]; n != want {
				t.Errorf("%d pipelines, want %d", n, want)
			}
			for i, s := range ss {
				want, werr := one.Settle(ctx, s)
				if (werr != nil) != (errs[i] != nil) || (werr != nil && !errors.Is(errs[i], counter.ErrInvalidLimit)) {
					t.Fatalf("settlement %d: batch error %v, one by one %v", i, errs[i], werr)
				}
				if len(states[i]) != len(want) {
					t.Fatalf("settlement %d: batch %v, one by one %v", i, states[i], want)
				}
				for k := range want {
					g, w := states[i][k], want[k]
					if g.Remaining != w.Remaining || math.Abs(g.Share-w.Share) > 1e-9 || math.Abs(g.Grant-w.Grant) > 0.05 {
						t.Fatalf("settlement %d limit %d: batch %+v, one by one %+v", i, k, g, w)
					}
				}
			}
		})
	}
}

// TestServerSettlesAReportInOneBatch: a usage report of 300 buckets
// costs the server 3 pipelined round trips to Redis (batchChunk = 128
// settlements each), not 300, and every bucket gets its assignment, in
// the report's order.
func TestServerSettlesAReportInOneBatch(t *testing.T) {
	client := redisClient(t)
	var trips tripCounter
	client.AddHook(&trips)
	s := New(Options{Account: NewRedisAccount(client, "", time.Second)})
	if _, err := s.Swap(testConfig(ir.FailClosed)); err != nil {
		t.Fatal(err)
	}
	st := &stream{id: "s", buckets: map[string]*bucketState{}}
	for round := range 2 {
		trips.single.Store(0)
		trips.pipelines.Store(0)
		resp := s.answer(context.Background(), st, bigReport(300), nil)
		if n := len(resp.GetBucketAction()); n != 600 {
			t.Fatalf("round %d: %d actions, want 600 (ALLOW_ALL and a token bucket per bucket)", round, n)
		}
		for i, a := range resp.GetBucketAction() {
			if want := "consumer-" + strconv.Itoa(i/2); a.GetBucketId().GetBucket()[ir.BucketKeyConsumer] != want {
				t.Fatalf("round %d: action %d is for %v, want %s (report order)", round, i, a.GetBucketId().GetBucket(), want)
			}
		}
		// the first round also loads the script (NOSCRIPT, then EVAL)
		if p, one := trips.pipelines.Load(), trips.single.Load(); round > 0 && (p != 3 || one != 0) {
			t.Fatalf("round %d: %d pipelines and %d single commands, want 3 and none", round, p, one)
		}
	}
}

// TestRedisSettleBatchStopsWhenRedisIsDown: with Redis unreachable the
// first round trip fails and the rest of the batch gets its error without
// being sent (one timeout per report, not one per chunk).
func TestRedisSettleBatchStopsWhenRedisIsDown(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)), MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	var trips tripCounter
	client.AddHook(&trips)
	ss := make([]Settlement, 3*batchChunk)
	for i := range ss {
		ss[i] = Settlement{Participant: "p" + strconv.Itoa(i), Limits: []counter.Limit{minuteLimit}, Used: 1, Demand: 1, Hold: time.Minute}
	}
	_, errs := NewRedisAccount(client, "", time.Second).SettleBatch(context.Background(), ss)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("settlement %d: no error with Redis down", i)
		}
	}
	if n := trips.pipelines.Load(); n != 1 {
		t.Fatalf("%d round trips with Redis down, want 1", n)
	}
}
