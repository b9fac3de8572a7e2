package quota

import (
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit"
)

// TestBackstopBound: a report is charged what RLQS allowed, but never more
// than the backstop's buckets (full at the first report, refilled at each
// limit's rate) can have admitted; admissions at the backstop's own rate
// are charged in full.
func TestBackstopBound(t *testing.T) {
	multi := []ir.Limit{{Requests: 2, Per: time.Second}, {Requests: 4, Per: time.Minute}, {Requests: 5, Per: time.Hour}}
	type report struct {
		at      time.Duration
		allowed uint64
	}
	for _, tc := range []struct {
		name    string
		limits  []ir.Limit
		reports []report
		want    []uint64
	}{
		{name: "cold-start burst beyond the second window", limits: multi,
			reports: []report{{0, 10}}, want: []uint64{2}},
		// The rest of the burst comes in the next report: the second
		// window may have refilled meanwhile, the minute binds.
		{name: "burst split over two reports", limits: multi,
			reports: []report{{0, 1}, {5 * time.Second, 9}}, want: []uint64{1, 3}},
		{name: "the hour bound holds over many reports", limits: multi,
			reports: []report{{0, 2}, {5 * time.Second, 10}, {10 * time.Second, 10}, {75 * time.Second, 10}, {80 * time.Second, 10}},
			want:    []uint64{2, 2, 0, 1, 0}},
		{name: "admitted at the backstop's rate: all charged", limits: []ir.Limit{{Requests: 2, Per: time.Second}},
			reports: []report{{0, 2}, {5 * time.Second, 10}, {10 * time.Second, 10}, {15 * time.Second, 3}},
			want:    []uint64{2, 10, 10, 3}},
		{name: "a burst above the rate", limits: []ir.Limit{{Requests: 60, Per: time.Minute, Burst: 100}},
			reports: []report{{0, 150}, {5 * time.Second, 150}, {65 * time.Second, 20}},
			want:    []uint64{100, 5, 20}},
		{name: "no limits: never cut", reports: []report{{0, 1000}}, want: []uint64{1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Unix(1_700_000_000, 0)
			b := newBackstopBound(keyedLimits(tc.limits), 1, start)
			var got []uint64
			for _, r := range tc.reports {
				got = append(got, b.charge(r.allowed, 0, start.Add(r.at)))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("charged %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBackstopBoundNeverBelowAdmitted: whatever the backstop admitted (a
// simulated token bucket per limit, requests at random times, reports
// every 5 s seen up to 200 ms late), the charges add up to at least the
// admissions at every report.
func TestBackstopBoundNeverBelowAdmitted(t *testing.T) {
	limits := []ir.Limit{{Requests: 2, Per: time.Second}, {Requests: 4, Per: time.Minute}, {Requests: 50, Per: time.Hour}}
	keyed := keyedLimits(limits)
	for seed := uint64(1); seed <= 50; seed++ {
		next := xorshift(seed)
		start := time.Unix(1_700_000_000, 0)
		sim := newSimBuckets(limits)
		b := newBackstopBound(keyed, 1, start)
		var admitted, charged, allowed uint64
		for at := time.Duration(0); at < 10*time.Minute; at += time.Duration(1+next(400)) * time.Millisecond {
			allowed++
			if sim.take(at, 2) {
				admitted++
			}
			if at/(5*time.Second) != (at+time.Millisecond)/(5*time.Second) || next(50) == 0 {
				late := time.Duration(next(200)) * time.Millisecond
				charged += b.charge(allowed, 0, start.Add(at+late))
				allowed = 0
				if charged < admitted {
					t.Fatalf("seed %d at %s: charged %d < admitted %d", seed, at, charged, admitted)
				}
			}
		}
	}
}

// TestBackstopBoundReportSeenLate: a report the server sees late (a slow
// settlement ahead of it on the stream, Redis slow, a pause) must not make
// the next report's bound smaller than what the backstop admitted: the
// refill counts at least the interval Envoy reports (time_elapsed). 10/s,
// full: report A sent at 0 and seen at 1 s, meanwhile and until Envoy's
// next report (5 s later, seen at once) the backstop admits its burst and
// its refill, 10 + 50.
func TestBackstopBoundReportSeenLate(t *testing.T) {
	limits := []ratelimit.KeyedLimit{{Limit: ir.Limit{Requests: 10, Per: time.Second}}}
	start := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name string
		late time.Duration
		want uint64
	}{
		{name: "seen 1 s late", late: time.Second, want: 60},
		{name: "seen 3 s late", late: 3 * time.Second, want: 60},
		{name: "seen on time", want: 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackstopBound(limits, 1, start)
			b.charge(0, 0, start.Add(tc.late))
			if got := b.charge(60, 5*time.Second, start.Add(5*time.Second)); got != tc.want {
				t.Fatalf("charged %d, want %d", got, tc.want)
			}
		})
	}
}

// TestBackstopBoundNeverBelowAdmittedWithStalls: Envoy reports every 5 s
// (plus up to 50 ms of timer jitter), time_elapsed in whole seconds
// rounded down; the server sees each report 0-3 s late, in order. The
// charges never fall below what a backstop of 10/s (burst 20) and 6000/hour
// admitted of requests in bursts above the rate between idle spells.
func TestBackstopBoundNeverBelowAdmittedWithStalls(t *testing.T) {
	limits := []ir.Limit{{Requests: 10, Per: time.Second, Burst: 20}, {Requests: 6000, Per: time.Hour}}
	keyed := keyedLimits(limits)
	for seed := uint64(1); seed <= 50; seed++ {
		next := xorshift(seed)
		start := time.Unix(1_700_000_000, 0)
		sim := newSimBuckets(limits)
		b := newBackstopBound(keyed, 1, start)
		var admitted, charged, allowed uint64
		lastReport, seen := time.Duration(0), start
		tick := 5*time.Second + time.Duration(next(50))*time.Millisecond
		gap := func() time.Duration { // mostly bursts above the rate, now and then an idle spell
			if next(200) == 0 {
				return time.Duration(2000+next(8000)) * time.Millisecond
			}
			return time.Duration(1+next(100)) * time.Millisecond
		}
		for at := time.Duration(0); at < 5*time.Minute; at += gap() {
			for at >= tick { // Envoy's report, sent at tick
				elapsed := (tick - lastReport).Truncate(time.Second)
				seen = maxTime(seen, start.Add(tick+time.Duration(next(3000))*time.Millisecond))
				charged += b.charge(allowed, elapsed, seen)
				if charged < admitted {
					t.Fatalf("seed %d at %s: charged %d < admitted %d", seed, tick, charged, admitted)
				}
				allowed, lastReport = 0, tick
				tick += 5*time.Second + time.Duration(next(50))*time.Millisecond
			}
			allowed++
			if sim.take(at, 2) {
				admitted++
			}
		}
	}
}

// simBuckets simulates the backstop's token buckets, one per limit, full
// at 0.
type simBuckets struct {
	limits        []ir.Limit
	levels, rates []float64
	last          time.Duration
}

func newSimBuckets(limits []ir.Limit) *simBuckets {
	s := &simBuckets{limits: limits}
	for _, l := range limits {
		s.levels = append(s.levels, float64(max(l.Requests, l.Burst)))
		s.rates = append(s.rates, float64(l.Requests)/l.Per.Seconds())
	}
	return s
}

// take refills the buckets up to at and admits a request when each of the
// first checked buckets holds a token; an admitted request spends a token
// of every bucket (one not checked only drains: a backstop admitting more
// makes a never-below-admitted test stricter).
func (s *simBuckets) take(at time.Duration, checked int) bool {
	for i, l := range s.limits {
		s.levels[i] = min(float64(max(l.Requests, l.Burst)), s.levels[i]+s.rates[i]*(at-s.last).Seconds())
	}
	s.last = at
	for _, v := range s.levels[:checked] {
		if v < 1 {
			return false
		}
	}
	for i := range s.levels {
		s.levels[i]--
	}
	return true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// xorshift returns a deterministic pseudo-random source: next(n) is in
// [0, n).
func xorshift(seed uint64) func(n uint64) uint64 {
	rng := seed
	return func(n uint64) uint64 {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return rng % n
	}
}

// keyedLimits wraps limits as keyed limits without a key.
func keyedLimits(limits []ir.Limit) []ratelimit.KeyedLimit {
	keyed := make([]ratelimit.KeyedLimit, len(limits))
	for i, l := range limits {
		keyed[i] = ratelimit.KeyedLimit{Limit: l}
	}
	return keyed
}
