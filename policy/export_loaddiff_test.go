package policy

import (
	"fmt"
	"sort"
	"strings"
)

// LoadState describes what Load remembered besides the Policy: every
// recorded field position, the failed paths and whether the policy is
// partial. The loader differential test compares it.
func LoadState(p *Policy) string {
	if p.src == nil {
		return "no source\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "files %q partial %v\n", p.src.files, p.src.partial)
	for _, chunk := range p.src.records {
		for _, r := range chunk {
			fmt.Fprintf(&b, "pos %s %d:%d:%d\n", r.path, r.file, r.line, r.column)
		}
	}
	failed := make([]string, 0, len(p.src.failed))
	for k := range p.src.failed {
		failed = append(failed, k)
	}
	sort.Strings(failed)
	fmt.Fprintf(&b, "failed %q\n", failed)
	return b.String()
}
