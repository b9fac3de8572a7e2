package breaker

import (
	"bytes"
	"errors"
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
	c := &clock{t: time.Unix(1_000_000, 0)}
	var logs bytes.Buffer
	b := New(Options{Name: "dep", Threshold: threshold, OpenFor: 500 * time.Millisecond, SummaryEvery: 10 * time.Second,
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
