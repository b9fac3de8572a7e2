package breaker

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

var errDown = errors.New("down")

// clock is a settable clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTest(t *testing.T, threshold int) (*Breaker, *clock, *bytes.Buffer) {
	t.Helper()
	return newTestWith(t, Options{Threshold: threshold})
}

// newTestWith is newTest with opts (Threshold, CountOverlapsOnce) on top
// of the test's clock, logger and Fatal.
func newTestWith(t *testing.T, opts Options) (*Breaker, *clock, *bytes.Buffer) {
	t.Helper()
	c := &clock{t: time.Unix(1_000_000, 0)}
	var logs bytes.Buffer
	b := New(Options{Name: "dep", Threshold: opts.Threshold, CountOverlapsOnce: opts.CountOverlapsOnce,
		OpenFor: 500 * time.Millisecond, SummaryEvery: 10 * time.Second,
		Fatal:  func(err error) bool { return strings.Contains(err.Error(), "refused") },
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: c.now})
	return b, c, &logs
}

// call runs one call with outcome err (nil: success) and reports whether
// it was allowed.
func call(b *Breaker, err error) bool {
	tk, aerr := b.Allow()
	if aerr != nil {
		return false
	}
	if err != nil {
		tk.Failure(err)
	} else {
		tk.Success()
	}
	return true
}

func TestOpensAfterThresholdOrFatal(t *testing.T) {
	tests := []struct {
		name     string
		errs     []error
		wantOpen bool
	}{
		{"below threshold", []error{errDown, errDown}, false},
		{"threshold", []error{errDown, errDown, errDown}, true},
		{"success resets the count", []error{errDown, errDown, nil, errDown, errDown}, false},
		{"fatal opens at once", []error{errors.New("dial: connection refused")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _, _ := newTest(t, 3)
			for _, err := range tt.errs {
				call(b, err)
			}
			if b.Open() != tt.wantOpen {
				t.Fatalf("open = %v, want %v", b.Open(), tt.wantOpen)
			}
			if _, err := b.Allow(); (err != nil) != tt.wantOpen || (err != nil && !errors.Is(err, ErrOpen)) {
				t.Fatalf("Allow: %v", err)
			}
		})
	}
}

func TestHalfOpenLetsOneProbe(t *testing.T) {
	b, c, logs := newTest(t, 1)
	call(b, errDown)
	c.advance(499 * time.Millisecond)
	if _, err := b.Allow(); err == nil {
		t.Fatal("allowed before OpenFor")
	}
	c.advance(time.Millisecond)
	probe, err := b.Allow()
	if err != nil {
		t.Fatalf("no probe after OpenFor: %v", err)
	}
	if _, err := b.Allow(); err == nil {
		t.Fatal("a second call allowed while the probe is in flight")
	}
	probe.Failure(errDown)
	if _, err := b.Allow(); err == nil {
		t.Fatal("allowed right after a failed probe")
	}
	c.advance(500 * time.Millisecond)
	probe, _ = b.Allow()
	probe.Ignore() // the caller gave up: the next call probes
	probe, err = b.Allow()
	if err != nil {
		t.Fatalf("the ignored probe was not handed over: %v", err)
	}
	probe.Success()
	if b.Open() || !call(b, nil) {
		t.Fatal("still open after a successful probe")
	}
	if !strings.Contains(logs.String(), "dep available again") {
		t.Errorf("no recovery line:\n%s", logs)
	}
}

// TestOutageLogsStateChangesAndSummaries: 10 s of calls at 100 per second
// against a dead dependency log one line when it opens, one summary per
// SummaryEvery and one when it closes, not one per call.
func TestOutageLogsStateChangesAndSummaries(t *testing.T) {
	b, c, logs := newTest(t, 3)
	for range 2500 { // 25 s
		call(b, errDown)
		c.advance(10 * time.Millisecond)
	}
	call(b, nil)
	c.advance(500 * time.Millisecond)
	call(b, nil)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d log lines, want 4 (open, 2 summaries, close):\n%s", len(lines), logs)
	}
	for i, want := range []string{"dep unavailable", "dep still unavailable", "dep still unavailable", "dep available again"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %s, want %q", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[1], "probesFailed=20") {
		t.Errorf("the first summary does not count 20 failed probes: %s", lines[1])
	}
}

// TestOverlappingFailuresCountOnce: with CountOverlapsOnce, calls in flight
// together that fail together (one stall timing out all of them) are one
// failure; the breaker opens after Threshold failures of calls each
// started after the previous counted failure, or at once on a Fatal one.
// Without the option every failure counts.
func TestOverlappingFailuresCountOnce(t *testing.T) {
	tests := []struct {
		name string
		// steps: "a<i>" allows ticket i, "f<i>" fails it, "r<i>" fails it
		// with a refused connection.
		steps               []string
		wantOpen, wantPlain bool // with and without CountOverlapsOnce
	}{
		{"three overlapping timeouts", []string{"a0", "a1", "a2", "f0", "f1", "f2"}, false, true},
		{"ten overlapping timeouts", []string{"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9",
			"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9"}, false, true},
		{"two stalls", []string{"a0", "a1", "f0", "f1", "a2", "a3", "f2", "f3"}, false, true},
		{"three in a row", []string{"a0", "f0", "a1", "f1", "a2", "f2"}, true, true},
		{"three stalls", []string{"a0", "a1", "f0", "f1", "a2", "a3", "f3", "f2", "a4", "f4"}, true, true},
		{"a call started after a counted failure counts", []string{"a0", "a1", "f0", "a2", "f1", "f2", "a3", "f3"}, true, true},
		{"a refused connection opens at once", []string{"a0", "a1", "f0", "r1"}, true, true},
	}
	for _, tt := range tests {
		for _, overlaps := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/overlaps=%v", tt.name, overlaps), func(t *testing.T) {
				b, _, _ := newTestWith(t, Options{Threshold: 3, CountOverlapsOnce: overlaps})
				tickets := map[byte]Ticket{}
			steps:
				for _, st := range tt.steps {
					switch st[0] {
					case 'a':
						tk, err := b.Allow()
						if err != nil {
							break steps // open already
						}
						tickets[st[1]] = tk
					case 'f':
						tickets[st[1]].Failure(errDown)
					case 'r':
						tickets[st[1]].Failure(errors.New("dial: connection refused"))
					}
				}
				want := tt.wantPlain
				if overlaps {
					want = tt.wantOpen
				}
				if b.Open() != want {
					t.Errorf("open = %v, want %v", b.Open(), want)
				}
			})
		}
	}
}
