package policy

import (
	"fmt"
	"math"
	"strings"

	"github.com/tollgate/tollgate/policy/ir"
)

// compressionAlgorithms are the algorithms Tollgate configures.
var compressionAlgorithms = []string{ir.Brotli, ir.Gzip}

func (c *checker) compression(path string, p Compression) {
	if p.Disabled {
		return
	}
	if p.Algorithms != nil && len(p.Algorithms) == 0 {
		c.errorf(fieldPath(path, "algorithms"), "list brotli and/or gzip, or use `compression: none`", "no algorithm")
	}
	seen := map[string]bool{}
	for i, a := range p.Algorithms {
		ap := indexPath(fieldPath(path, "algorithms"), i)
		switch {
		case !isOneOf(a, compressionAlgorithms):
			summary := fmt.Sprintf("unknown algorithm %q", a)
			if s, ok := closest(a, compressionAlgorithms); ok {
				summary += fmt.Sprintf("; did you mean %q?", s)
			}
			c.errorf(ap, "use brotli or gzip", "%s", summary)
		case seen[a]:
			c.errorf(ap, "list each algorithm once", "duplicate algorithm %q", a)
		}
		seen[a] = true
	}
	if p.MinLength != nil && (*p.MinLength < 0 || *p.MinLength > math.MaxUint32) {
		c.errorf(fieldPath(path, "minLength"), "use a byte count from 0 to 4294967295", "minLength %d is out of range", *p.MinLength)
	}
	for i, ct := range p.ContentTypes {
		typ, sub, ok := strings.Cut(ct, "/")
		if !ok || typ == "" || sub == "" || strings.ContainsAny(ct, " ;,") || ct != strings.ToLower(ct) {
			c.errorf(indexPath(fieldPath(path, "contentTypes"), i), `write a lower-case media type without parameters, e.g. "application/json"`,
				"invalid content type %q", ct)
		}
	}
}

func isOneOf(s string, list []string) bool {
	for _, x := range list {
		if s == x {
			return true
		}
	}
	return false
}
