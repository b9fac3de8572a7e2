package jwkswatch

import (
	"sync"
	"testing"
	"time"
)

// fakeClock drives a limiter: now is set by the test, and the scheduled
// bump runs when the test says.
type fakeClock struct {
	now       time.Time
	scheduled []time.Duration
	fire      func()
}

func testLimiter(interval time.Duration) (*limiter, *fakeClock, *[]string) {
	c := &fakeClock{now: time.Unix(1000, 0)}
	var mu sync.Mutex
	var bumps []string
	l := newLimiter(interval, func(reason string) {
		mu.Lock()
		defer mu.Unlock()
		bumps = append(bumps, reason)
	})
	l.now = func() time.Time { return c.now }
	l.after = func(d time.Duration, f func()) *time.Timer {
		c.scheduled, c.fire = append(c.scheduled, d), f
		return time.NewTimer(time.Hour) // never fires on its own; stop() stops it
	}
	return l, c, &bumps
}

// TestLimiter: a withdrawal is bumped at once unless one was bumped within
// the interval; then it is bumped once at the interval's end, with every
// withdrawal seen meanwhile.
func TestLimiter(t *testing.T) {
	type event struct {
		at       time.Duration // since the start
		provider string        // "" fires the scheduled bump
	}
	for _, tc := range []struct {
		name      string
		events    []event
		bumps     []string
		scheduled []time.Duration
	}{
		{"first at once", []event{{0, "corp"}}, []string{"keys withdrawn from the JWKS of provider(s) corp"}, nil},
		{"after the interval at once",
			[]event{{0, "corp"}, {30 * time.Second, "corp"}},
			[]string{"keys withdrawn from the JWKS of provider(s) corp", "keys withdrawn from the JWKS of provider(s) corp"}, nil},
		{"within the interval deferred and merged",
			[]event{{0, "corp"}, {10 * time.Second, "corp"}, {12 * time.Second, "partner"}, {15 * time.Second, "corp"}, {30 * time.Second, ""}},
			[]string{"keys withdrawn from the JWKS of provider(s) corp", "keys withdrawn from the JWKS of provider(s) corp, partner"},
			[]time.Duration{20 * time.Second}},
		{"flapping: one bump per interval",
			[]event{{0, "corp"}, {1 * time.Second, "corp"}, {30 * time.Second, ""}, {31 * time.Second, "corp"}, {60 * time.Second, ""}},
			[]string{"keys withdrawn from the JWKS of provider(s) corp", "keys withdrawn from the JWKS of provider(s) corp", "keys withdrawn from the JWKS of provider(s) corp"},
			[]time.Duration{29 * time.Second, 29 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, c, bumps := testLimiter(30 * time.Second)
			start := c.now
			for _, e := range tc.events {
				c.now = start.Add(e.at)
				if e.provider == "" {
					c.fire()
					continue
				}
				l.withdrawn(e.provider)
			}
			if !equal(*bumps, tc.bumps) || !equal(c.scheduled, tc.scheduled) {
				t.Fatalf("bumps %q scheduled %v, want %q %v", *bumps, c.scheduled, tc.bumps, tc.scheduled)
			}
		})
	}
}

// TestLimiterStop: a stopped limiter bumps nothing, scheduled or new.
func TestLimiterStop(t *testing.T) {
	l, c, bumps := testLimiter(time.Minute)
	l.withdrawn("corp")
	l.withdrawn("corp") // scheduled
	l.stop()
	c.fire()
	l.withdrawn("corp")
	if len(*bumps) != 1 {
		t.Fatalf("bumps %q, want the first only", *bumps)
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
