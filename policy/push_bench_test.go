package policy

import (
	"fmt"
	"testing"
)

// BenchmarkPushPolicySide measures the policy side of a cached push of
// the convergence bench's policy, each build adding or removing one
// route: BuildCached through a warm ParseCache, then the IR hash (the
// version id), as internal/controlplane's startCompile runs them.
// cpu-ns/op is the CPU time of all threads, the collector's included.
func BenchmarkPushPolicySide(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		seq := pushSequence(n)
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			c := NewParseCache()
			if _, ds := BuildCached(seq[len(seq)-1], c); ds.HasErrors() {
				b.Fatal(ds.Err())
			}
			i := 0
			start := cpuTime(b)
			for b.Loop() {
				cfg, ds := BuildCached(seq[i%len(seq)], c)
				if ds.HasErrors() {
					b.Fatal(ds.Err())
				}
				_ = cfg.Hash()
				i++
			}
			b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}
