package policy

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// convergencePolicy is bench/convergence's policy: a gateway, n flow-style
// routes over 10 backends, then probe routes /probe-0 … /probe-(probes-1)
// (one more per push in the convergence bench).
func convergencePolicy(n, probes int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\ngateways:\n  - name: bench\n    listeners: [{name: http, port: 18080, address: 127.0.0.1}]\nroutes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: r%d, match: {pathPrefix: /svc%d/r%d}, backend: b%d, auth: none}\n", i, i%10, i, i%10)
	}
	for i := range probes {
		fmt.Fprintf(&b, "  - {name: probe-%d, match: {pathPrefix: /probe-%d}, backend: b0, auth: none}\n", i, i)
	}
	b.WriteString("backends:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "  - {name: b%d, endpoints: [\"127.0.0.1:9\"]}\n", i)
	}
	return []byte(b.String())
}

// pushSequence returns the convergence bench's policy of n routes with
// 0 … 31 probe routes and back, so that build i+1 (cyclically) has one
// route more or less than build i.
func pushSequence(n int) [][]File {
	var out [][]File
	for k := range 64 {
		probes := min(k, 63-k)
		out = append(out, []File{{Name: "bench.yaml", Content: convergencePolicy(n, probes)}})
	}
	return out
}

// BenchmarkParseCache measures the push's parse and whole Build of the
// convergence bench's 1,000-route policy when each build adds or removes
// one route: without a cache (parseSplit on GOMAXPROCS goroutines, as
// Load parses it), through a ParseCache (which re-parses the chunk around
// the change and builds the other parts' trees from its flat copies), and
// through a new, empty ParseCache each time (the first build: every part
// parsed and flattened). cpu-ns/op is the CPU time of all threads, the
// collector's included.
func BenchmarkParseCache(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		seq := pushSequence(n)
		workers := runtime.GOMAXPROCS(0)
		for _, cached := range []string{"none", "warm", "cold"} {
			name := fmt.Sprintf("routes=%d/cache=%s", n, cached)
			b.Run("parse/"+name, func(b *testing.B) {
				c := cacheIf(cached)
				i := 0
				start := cpuTime(b)
				for b.Loop() {
					c = coldIf(cached, c)
					sess := c.begin()
					if _, _, err := parseDocs(seq[i%len(seq)][0].Content, workers, sess); err != nil {
						b.Fatal(err)
					}
					sess.commit()
					i++
				}
				b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
			})
			b.Run("build/"+name, func(b *testing.B) {
				c := cacheIf(cached)
				i := 0
				start := cpuTime(b)
				for b.Loop() {
					c = coldIf(cached, c)
					if _, ds := BuildCached(seq[i%len(seq)], c); ds.HasErrors() {
						b.Fatal(ds.Err())
					}
					i++
				}
				b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

func cacheIf(cached string) *ParseCache {
	if cached == "none" {
		return nil
	}
	return NewParseCache()
}

// coldIf returns a new cache for "cold", else c.
func coldIf(cached string, c *ParseCache) *ParseCache {
	if cached == "cold" {
		return NewParseCache()
	}
	return c
}
