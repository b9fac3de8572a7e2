package cli

import (
	"testing"

	"github.com/tollgate/tollgate/ratelimit/quota"
)

// TestAbandonAfterFlag: --rlqs-abandon-after 0 (or below) never abandons
// (quota.Options.AbandonAfter negative: its 0 means the default), and a
// positive value is passed on; the flag's default is quota's.
func TestAbandonAfterFlag(t *testing.T) {
	for _, tc := range []struct{ flag, want int }{{0, -1}, {-2, -1}, {1, 1}, {6, 6}} {
		if got := abandonAfter(tc.flag); got != tc.want {
			t.Errorf("--rlqs-abandon-after %d: Options.AbandonAfter %d, want %d", tc.flag, got, tc.want)
		}
	}
	cmd := newServeCmd()
	if f := cmd.Flags().Lookup("rlqs-abandon-after"); f == nil || f.DefValue != "6" || quota.DefaultAbandonAfter != 6 {
		t.Errorf("flag %v, quota.DefaultAbandonAfter %d: want a default of 6", f, quota.DefaultAbandonAfter)
	}
}
