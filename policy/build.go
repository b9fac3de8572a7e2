package policy

import (
	"cmp"
	"slices"

	"github.com/tollgate/tollgate/internal/parallel"
	"github.com/tollgate/tollgate/policy/ir"
)

// Build loads, validates and compiles files. The config is nil when the
// diagnostics hold an error; warnings come with a non-nil config. The
// diagnostics are sorted by file (in the order given), line and column, and
// capped at MaxShownDiagnostics (see Diagnostics.Capped).
func Build(files []File) (*ir.Config, Diagnostics) {
	return BuildCached(files, nil)
}

// BuildCached is Build parsing through cache, which then holds the parse
// of files' unchanged parts for the next build (see ParseCache; nil is
// Build). The outcome is Build's: the same config and diagnostics.
func BuildCached(files []File, cache *ParseCache) (*ir.Config, Diagnostics) {
	p, ds := loadSpread(files, DefaultLimits(), parallel.Workers, cache)
	ds = append(ds, p.Validate()...)
	sortDiagnostics(ds, files)
	ds = ds.Capped(MaxShownDiagnostics)
	if ds.HasErrors() {
		return nil, ds
	}
	return Compile(p), ds
}

func sortDiagnostics(ds Diagnostics, files []File) {
	order := make(map[string]int, len(files))
	for i, f := range files {
		order[f.Name] = i
	}
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(
			cmp.Compare(order[a.Range.File], order[b.Range.File]),
			cmp.Compare(a.Range.Line, b.Range.Line),
			cmp.Compare(a.Range.Column, b.Range.Column),
		)
	})
}
