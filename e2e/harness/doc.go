// Package harness has the primitives of Tollgate's end-to-end tests. They
// drive real processes (Envoy, redis-server, the tollgate binary) and real
// HTTP servers on loopback; nothing here is a mock.
//
// Discipline shared by every helper:
//   - ports are free loopback ports picked at run time (FreePort) or chosen
//     by the process itself (Envoy's admin port 0 + --admin-address-path);
//   - waiting is polling a condition until a deadline (WaitFor), never a
//     fixed sleep;
//   - each process runs in its own process group and is killed with its
//     group, and waited for, when the test ends;
//   - each process's stdout and stderr go to a log file whose tail is
//     written to the test log when the test fails.
//
// A test package that uses BuildTollgate should declare
//
//	func TestMain(m *testing.M) { harness.Main(m) }
//
// so the binary is built once into a directory removed after the run.
package harness
