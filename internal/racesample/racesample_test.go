package racesample

import "testing"

// TestSamplerKeepsItsShare: without the race detector every input is kept;
// under it one in Stride, at the offset given in OffsetEnv.
func TestSamplerKeepsItsShare(t *testing.T) {
	t.Setenv(OffsetEnv, "3")
	s := New(t)
	var kept []int
	for i := range 4 * Stride {
		if s.Keep() {
			kept = append(kept, i)
		}
	}
	want, bound := 4*Stride, 100
	if Enabled {
		want, bound = 4, 100/Stride
		if kept[0] != 3 || kept[1] != 3+Stride {
			t.Errorf("kept %v, want every %dth from 3", kept, Stride)
		}
	}
	if len(kept) != want || s.AtLeast(100) != bound {
		t.Errorf("kept %d of %d (AtLeast(100) = %d); want %d (%d), sample %v", len(kept), 4*Stride, s.AtLeast(100), want, bound, s)
	}
}
