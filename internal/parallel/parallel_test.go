package parallel

import (
	"runtime"
	"slices"
	"sync"
	"testing"
)

func TestChunksCoverEveryIndexOnceInOrder(t *testing.T) {
	for _, tt := range []struct{ n, workers int }{
		{0, 4}, {1, 4}, {3, 4}, {4, 4}, {10, 3}, {1000, 7}, {5, 1}, {5, 0},
	} {
		var mu sync.Mutex
		seen := make([]int, tt.n)
		var chunks [][2]int
		Chunks(tt.n, tt.workers, func(c, lo, hi int) {
			mu.Lock()
			defer mu.Unlock()
			chunks = append(chunks, [2]int{c, lo})
			for i := lo; i < hi; i++ {
				seen[i]++
			}
		})
		for i, s := range seen {
			if s != 1 {
				t.Fatalf("n=%d workers=%d: index %d visited %d times", tt.n, tt.workers, i, s)
			}
		}
		slices.SortFunc(chunks, func(a, b [2]int) int { return a[0] - b[0] })
		for i := 1; i < len(chunks); i++ {
			if chunks[i][0] != i || chunks[i][1] < chunks[i-1][1] {
				t.Fatalf("n=%d workers=%d: chunks %v not numbered in index order", tt.n, tt.workers, chunks)
			}
		}
	}
}

func TestMapKeepsIndexOrder(t *testing.T) {
	got := Map(1000, 8, func(i int) int { return i * i })
	for i, v := range got {
		if v != i*i {
			t.Fatalf("Map()[%d] = %d", i, v)
		}
	}
}

func TestWorkers(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	for _, tt := range []struct{ n, min, want int }{
		{10, 100, 1}, {1, 1, 1}, {100, 100, min(procs, 100)}, {3, 1, min(procs, 3)},
	} {
		if got := Workers(tt.n, tt.min); got != tt.want {
			t.Errorf("Workers(%d, %d) = %d, want %d", tt.n, tt.min, got, tt.want)
		}
	}
}
