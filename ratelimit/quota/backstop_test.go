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
			limits := make([]ratelimit.KeyedLimit, len(tc.limits))
			for i, l := range tc.limits {
				limits[i] = ratelimit.KeyedLimit{Limit: l}
			}
			start := time.Unix(1_700_000_000, 0)
			b := newBackstopBound(limits, start)
			var got []uint64
			for _, r := range tc.reports {
				got = append(got, b.charge(r.allowed, start.Add(r.at)))
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
	keyed := make([]ratelimit.KeyedLimit, len(limits))
	for i, l := range limits {
		keyed[i] = ratelimit.KeyedLimit{Limit: l}
	}
	for seed := uint64(1); seed <= 50; seed++ {
		rng := seed
		next := func(n uint64) uint64 { // xorshift
			rng ^= rng << 13
			rng ^= rng >> 7
			rng ^= rng << 17
			return rng % n
		}
		start := time.Unix(1_700_000_000, 0)
		levels := []float64{2, 4, 50}
		rates := []float64{2, 4.0 / 60, 50.0 / 3600}
		b := newBackstopBound(keyed, start)
		var admitted, charged, allowed uint64
		last := time.Duration(0)
		for at := time.Duration(0); at < 10*time.Minute; at += time.Duration(1+next(400)) * time.Millisecond {
			for i := range levels {
				levels[i] = min(float64(limits[i].Requests), levels[i]+rates[i]*(at-last).Seconds())
			}
			last = at
			allowed++
			if slices.Min(levels) >= 1 {
				admitted++
				for i := range levels {
					levels[i]--
				}
			}
			if at/(5*time.Second) != (at+time.Millisecond)/(5*time.Second) || next(50) == 0 {
				late := time.Duration(next(200)) * time.Millisecond
				charged += b.charge(allowed, start.Add(at+late))
				allowed = 0
				if charged < admitted {
					t.Fatalf("seed %d at %s: charged %d < admitted %d", seed, at, charged, admitted)
				}
			}
		}
	}
}
