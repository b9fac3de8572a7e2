// Package e2e holds Tollgate's end-to-end tests: the tollgate binary, a real
// Envoy 1.40 and real upstream servers on loopback, no mocks. Run them with
// `make test` (which installs Envoy into .tools/ first).
package e2e
