package counter

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// env is one backend under the contract suite.
type env struct {
	backend Backend
	// clock is the backend's fake clock; nil when it runs on real time
	// (Redis), where the cases use windows long enough for the few
	// milliseconds they take not to matter.
	clock *fakeClock
	// slack is how much real time may pass during a case: durations in
	// results may be that much below their exact value.
	slack time.Duration
}

// sleep lets d pass on the backend's clock.
func (e *env) sleep(d time.Duration) {
	if e.clock != nil {
		e.clock.Advance(d)
		return
	}
	time.Sleep(d)
}

func (e *env) take(t *testing.T, limits ...Limit) (bool, []Result) {
	t.Helper()
	allowed, results, err := e.backend.Take(context.Background(), limits)
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	if len(results) != len(limits) {
		t.Fatalf("Take returned %d results for %d limits", len(results), len(limits))
	}
	return allowed, results
}

// count takes n times and returns how many were admitted and the results
// of the last call.
func (e *env) count(t *testing.T, n int, limits ...Limit) (int, []Result) {
	t.Helper()
	admitted := 0
	var last []Result
	for range n {
		allowed, results := e.take(t, limits...)
		if allowed {
			admitted++
		}
		last = results
	}
	return admitted, last
}

// near checks that got is want, or at most the env's slack below it.
func (e *env) near(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if got > want || got < want-e.slack {
		t.Errorf("%s = %v, want %v (slack %v)", what, got, want, e.slack)
	}
}

// contractCase is one case of the contract suite.
type contractCase struct {
	name string
	run  func(t *testing.T, e *env)
}

// contractCases are run against every backend.
func contractCases() []contractCase {
	return []contractCase{
		{"exactly N of N+k", testExactlyN},
		{"all or nothing: rate rejects, day not charged", testRateRejectsDayUncharged},
		{"all or nothing: day rejects, rate not charged", testDayRejectsRateUncharged},
		{"day limit bites independently", testDayBites},
		{"burst then rate", testBurstThenRate},
		{"retry after", testRetryAfter},
		{"remaining and reset", testRemainingAndReset},
		{"keys are independent", testKeysIndependent},
		{"full bucket after idling", testRefill},
		{"no limits", testNoLimits},
		{"invalid limits", testInvalidLimits},
	}
}

// runContract runs the suite; newEnv returns a fresh env for each case.
func runContract(t *testing.T, newEnv func(t *testing.T) *env) {
	for _, c := range contractCases() {
		t.Run(c.name, func(t *testing.T) { c.run(t, newEnv(t)) })
	}
}

func testExactlyN(t *testing.T, e *env) {
	l := Limit{Key: "{c:a}:n", Requests: 100, Per: time.Minute}
	_, first := e.take(t, l)
	if first[0].Remaining != 99 || first[0].ResetAfter != 600*time.Millisecond || first[0].RetryAfter != 0 {
		t.Errorf("first result = %+v, want 99 remaining, reset 600ms", first[0])
	}
	admitted, last := e.count(t, 149, l)
	if admitted+1 != 100 {
		t.Fatalf("admitted %d of 150, want 100", admitted+1)
	}
	if last[0].Remaining != 0 || last[0].RetryAfter <= 0 {
		t.Errorf("rejected result = %+v", last[0])
	}
}

func testRateRejectsDayUncharged(t *testing.T, e *env) {
	rate := Limit{Key: "{c:a}:rate", Requests: 2, Per: time.Second}
	day := Limit{Key: "{c:a}:day", Requests: 5, Per: 24 * time.Hour}
	admitted, last := e.count(t, 6, rate, day)
	if admitted != 2 {
		t.Fatalf("admitted %d, want 2", admitted)
	}
	if last[1].Remaining != 3 || last[1].RetryAfter != 0 || last[0].Remaining != 0 || last[0].RetryAfter <= 0 {
		t.Errorf("results of the rejected take = %+v", last)
	}
	// The day was charged twice, not six times: three more fit.
	if admitted, _ := e.count(t, 4, day); admitted != 3 {
		t.Errorf("the day admitted %d more, want 3", admitted)
	}
}

func testDayRejectsRateUncharged(t *testing.T, e *env) {
	rate := Limit{Key: "{c:a}:rate", Requests: 10, Per: time.Minute}
	day := Limit{Key: "{c:a}:day", Requests: 2, Per: 24 * time.Hour}
	if admitted, _ := e.count(t, 5, rate, day); admitted != 2 {
		t.Fatalf("admitted %d, want 2", admitted)
	}
	// The rate was charged twice, not five times.
	_, res := e.take(t, rate)
	if res[0].Remaining != 7 {
		t.Errorf("rate remaining after one more = %d, want 7", res[0].Remaining)
	}
}

func testDayBites(t *testing.T, e *env) {
	minute := Limit{Key: "{c:a}:m", Requests: 10, Per: time.Minute}
	day := Limit{Key: "{c:a}:d", Requests: 3, Per: 24 * time.Hour}
	admitted, last := e.count(t, 20, minute, day)
	if admitted != 3 {
		t.Fatalf("admitted %d, want 3", admitted)
	}
	if last[1].Remaining != 0 || last[0].Remaining != 7 || last[0].RetryAfter != 0 {
		t.Errorf("results = %+v", last)
	}
	// The day's bucket holds 3 with T = 8h: the next one fits after 8h.
	e.near(t, "day RetryAfter", last[1].RetryAfter, 8*time.Hour)
	e.near(t, "day ResetAfter", last[1].ResetAfter, 24*time.Hour)
}

func testBurstThenRate(t *testing.T, e *env) {
	l := Limit{Key: "{c:a}:b", Requests: 10, Per: time.Second, Burst: 20}
	admitted, last := e.count(t, 30, l)
	if admitted != 20 {
		t.Fatalf("admitted %d of 30 with a burst of 20, want 20", admitted)
	}
	e.near(t, "RetryAfter", last[0].RetryAfter, 100*time.Millisecond)
	e.sleep(last[0].RetryAfter)
	if admitted, _ := e.count(t, 3, l); admitted != 1 {
		t.Fatalf("after RetryAfter admitted %d, want 1 (the rate, T = 100ms)", admitted)
	}
	e.sleep(300 * time.Millisecond)
	if admitted, _ := e.count(t, 5, l); admitted != 3 {
		t.Fatalf("after 3T admitted %d, want 3", admitted)
	}
}

func testRetryAfter(t *testing.T, e *env) {
	l := Limit{Key: "{c:a}:r", Requests: 5, Per: time.Second}
	if admitted, _ := e.count(t, 5, l); admitted != 5 {
		t.Fatalf("admitted %d, want 5", admitted)
	}
	allowed, res := e.take(t, l)
	if allowed || res[0].RetryAfter <= 0 {
		t.Fatalf("6th: allowed %v, %+v", allowed, res[0])
	}
	e.near(t, "RetryAfter", res[0].RetryAfter, 200*time.Millisecond)
	if e.clock != nil { // one microsecond early is too early
		e.sleep(res[0].RetryAfter - time.Microsecond)
		allowed, early := e.take(t, l)
		if allowed || early[0].RetryAfter != time.Microsecond {
			t.Fatalf("1µs before RetryAfter: allowed %v, %+v", allowed, early[0])
		}
		res[0].RetryAfter = time.Microsecond
	}
	e.sleep(res[0].RetryAfter)
	if allowed, res := e.take(t, l); !allowed {
		t.Fatalf("rejected after waiting RetryAfter: %+v", res[0])
	}
}

func testRemainingAndReset(t *testing.T, e *env) {
	l := Limit{Key: "{c:a}:rr", Requests: 3, Per: time.Minute}
	for i, want := range []uint64{2, 1, 0} {
		allowed, res := e.take(t, l)
		if !allowed || res[0].Remaining != want {
			t.Fatalf("take %d: allowed %v, %+v; want remaining %d", i, allowed, res[0], want)
		}
		e.near(t, "ResetAfter", res[0].ResetAfter, time.Duration(i+1)*20*time.Second)
		if i < 2 && res[0].RetryAfter != 0 {
			t.Errorf("take %d: RetryAfter %v with requests left", i, res[0].RetryAfter)
		}
	}
	allowed, res := e.take(t, l)
	if allowed || res[0].Remaining != 0 {
		t.Fatalf("4th: allowed %v, %+v", allowed, res[0])
	}
	e.near(t, "ResetAfter", res[0].ResetAfter, time.Minute)
	e.near(t, "RetryAfter", res[0].RetryAfter, 20*time.Second)
}

func testKeysIndependent(t *testing.T, e *env) {
	a := Limit{Key: "{c:a}:k", Requests: 2, Per: time.Minute}
	b := Limit{Key: "{c:b}:k", Requests: 2, Per: time.Minute}
	na, _ := e.count(t, 4, a)
	nb, _ := e.count(t, 4, b)
	if na != 2 || nb != 2 {
		t.Fatalf("admitted %d and %d, want 2 each", na, nb)
	}
}

func testRefill(t *testing.T, e *env) {
	l := Limit{Key: "{c:a}:f", Requests: 4, Per: 200 * time.Millisecond}
	if admitted, _ := e.count(t, 6, l); admitted != 4 {
		t.Fatalf("admitted %d, want 4", admitted)
	}
	e.sleep(250 * time.Millisecond)
	_, res := e.take(t, l)
	if res[0].Remaining != 3 || res[0].ResetAfter != 50*time.Millisecond {
		t.Fatalf("after idling: %+v, want a full bucket minus one", res[0])
	}
}

func testNoLimits(t *testing.T, e *env) {
	allowed, res := e.take(t)
	if !allowed || len(res) != 0 {
		t.Fatalf("no limits: %v %v", allowed, res)
	}
}

func testInvalidLimits(t *testing.T, e *env) {
	good := Limit{Key: "{c:a}:g", Requests: 1, Per: time.Minute}
	for _, bad := range []Limit{
		{Key: "{c:a}:zero", Requests: 0, Per: time.Minute},
		{Key: "{c:a}:noper", Requests: 1},
		{Key: "{c:a}:huge", Requests: 1, Per: 24 * time.Hour, Burst: 1 << 40},
	} {
		_, _, err := e.backend.Take(context.Background(), []Limit{good, bad})
		if !errors.Is(err, ErrInvalidLimit) || !strings.Contains(err.Error(), bad.Key) {
			t.Errorf("%+v: err = %v, want ErrInvalidLimit naming the key", bad, err)
		}
	}
	if allowed, _ := e.take(t, good); !allowed {
		t.Error("an invalid Take charged the valid limit")
	}
}

func TestContractMemory(t *testing.T) {
	runContract(t, func(t *testing.T) *env {
		c := newFakeClock()
		return &env{backend: NewMemory(c.Now), clock: c}
	})
}

func TestContractOverLimitMemory(t *testing.T) {
	runContract(t, func(t *testing.T) *env {
		c := newFakeClock()
		return &env{backend: NewOverLimitCache(NewMemory(c.Now), c.Now), clock: c}
	})
}

// redisSlack bounds the real time one contract case may take on Redis.
const redisSlack = 100 * time.Millisecond

// functionalTimeout is the Take timeout of the tests of what the counters
// decide: DefaultTimeout (50 ms) is the production bound, for which
// TestRedisHungServerTimesOut speaks; on a loaded 2-core test machine a
// take (the first one loads the script: two round trips) can exceed it.
const functionalTimeout = 5 * time.Second

func TestContractRedis(t *testing.T) {
	client := newTestClient(t, harnessRedis(t))
	runContract(t, func(t *testing.T) *env {
		return &env{backend: NewRedis(client, RedisOptions{Prefix: "test:" + t.Name() + ":", Timeout: functionalTimeout}), slack: redisSlack}
	})
}

func TestContractOverLimitRedis(t *testing.T) {
	client := newTestClient(t, harnessRedis(t))
	runContract(t, func(t *testing.T) *env {
		r := NewRedis(client, RedisOptions{Prefix: "test:" + t.Name() + ":", Timeout: functionalTimeout})
		return &env{backend: NewOverLimitCache(r, time.Now), slack: redisSlack}
	})
}
