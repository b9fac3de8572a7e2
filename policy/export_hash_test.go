package policy

import "fmt"

// GenPolicy is the benchmarks' generated policy of n routes, for the
// external tests.
var GenPolicy = genPolicy

// PrescanOutcome is what the prescan makes of content under lim: its
// node count, depth and first broken limit.
func PrescanOutcome(content []byte, lim Limits) string {
	s := newPrescanner(content, lim, lim.MaxNodes)
	err := s.run()
	return fmt.Sprintf("nodes %d depth %d err %+v", s.nodes, s.maxDepth, err)
}
