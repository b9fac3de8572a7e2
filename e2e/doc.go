// Package e2e holds Tollgate's end-to-end tests: the tollgate binary, a real
// Envoy 1.40 and real upstream servers on loopback, no mocks. Run them with
// `make test` (which installs Envoy into .tools/ first).
//
// Tests run one at a time, except those marked t.Parallel(): go test runs
// them after all the others, -parallel at a time (GOMAXPROCS by default;
// `make test` runs six: E2E_PARALLEL in the Makefile).
// Only a test that spends its time waiting on timers (certificate renewal,
// a JWKS refetch, a staleness window) and asserts no latency, request
// rate or deadline may be parallel: a test that measures how fast something
// happens, or drives load under a deadline, stays sequential so that no
// other test takes its CPU.
package e2e
