package glue

import "testing"

func TestOwners(t *testing.T) {
	var o Owners[string, int]
	steps := []struct {
		op    string // take, give
		k     string
		v     int
		value int   // take's answer
		owns  []int // values owning after the step (at most one)
	}{
		{"take", "a", 1, 1, []int{1}},
		{"take", "a", 2, 1, []int{1}}, // a keeps its first value
		{"take", "b", 3, 3, []int{3}}, // the last taken owns
		{"give", "a", 0, 0, []int{3}}, // not the owner: nothing changes
		{"give", "b", 0, 0, []int{1}}, // b's last holder: a (still held) owns
		{"give", "a", 0, 0, []int{}},  // nobody held: no owner
		{"give", "a", 0, 0, []int{}},  // more gives than takes: ignored
		{"take", "b", 9, 3, []int{3}}, // b's first value comes back
	}
	for i, s := range steps {
		switch s.op {
		case "take":
			if got := o.Take(s.k, s.v); got != s.value {
				t.Errorf("step %d: Take(%s, %d) = %d, want %d", i, s.k, s.v, got, s.value)
			}
		case "give":
			o.Give(s.k)
		}
		for v := 1; v <= 9; v++ {
			want := len(s.owns) == 1 && s.owns[0] == v
			if o.Owns(v) != want {
				t.Errorf("step %d: Owns(%d) = %v, want %v", i, v, !want, want)
			}
		}
	}
}
