package controlplane

import (
	"runtime/debug"
	"testing"
)

// TestTightenGC: a compile runs at compileGCPercent and the previous
// target comes back after it; a lower target or none (off) is kept.
func TestTightenGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	tests := []struct {
		before, during int
	}{
		{before: 100, during: compileGCPercent},
		{before: 400, during: compileGCPercent},
		{before: 50, during: 50},
		{before: -1, during: -1},
	}
	for _, tt := range tests {
		debug.SetGCPercent(tt.before)
		restore := tightenGC()
		if got := debug.SetGCPercent(tt.during); got != tt.during {
			t.Errorf("GOGC %d: %d during a compile, want %d", tt.before, got, tt.during)
		}
		restore()
		if got := debug.SetGCPercent(tt.before); got != tt.before {
			t.Errorf("GOGC %d: %d after a compile, want it back", tt.before, got)
		}
	}
}
