package envoy

import (
	"slices"
	"strings"
)

// headerNames returns names lower-cased (Envoy keys headers in lower
// case), sorted and without duplicates or empty names, so that equal sets
// of names always build equal messages.
func headerNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != "" {
			out = append(out, strings.ToLower(n))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
