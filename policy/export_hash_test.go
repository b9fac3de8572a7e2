package policy

// GenPolicy is the benchmarks' generated policy of n routes, for the
// external tests.
var GenPolicy = genPolicy
