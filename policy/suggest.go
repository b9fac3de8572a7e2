package policy

import "strings"

// closest returns the candidate nearest to s, for "did you mean" hints. It
// compares case-insensitively and only suggests a candidate close enough to
// be a plausible typo: at most 2 edits, or a third of s's length if longer,
// and never a rewrite of the whole word.
func closest(s string, candidates []string) (string, bool) {
	ls := strings.ToLower(s)
	limit := max(2, len(s)/3)
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if c == s {
			continue
		}
		d := levenshtein(ls, strings.ToLower(c))
		if d < bestDist && d < len(s) {
			best, bestDist = c, d
		}
	}
	return best, best != ""
}

// levenshtein returns the edit distance between a and b, in bytes.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
