package harness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// Ports below the kernel's ephemeral range (Linux: 32768–60999): a port
// picked here cannot be taken by an outgoing connection's local port, which
// is what took a released port-0 port under heavy e2e load.
const (
	portLow  = 20000
	portHigh = 32000
)

// handedOut remembers the ports FreePort returned in this test process, so
// that two listeners of one test never get the same port. It is the
// harness's only package state: a test binary is one process, and the set
// must be shared by every test in it.
var handedOut sync.Map

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no earlier call in this process returned: it tries random ports
// below the ephemeral range, binding each to check it is free, and closes
// the listener. Another process may still take the port before the caller
// binds it; prefer letting a process pick its own port where it can report it.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return port
}

func freePort() (int, error) {
	for range 200 {
		port := portLow + rand.IntN(portHigh-portLow)
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // in use by someone else: keep it marked and try another
		}
		if err := ln.Close(); err != nil {
			return 0, fmt.Errorf("release port %d: %w", port, err)
		}
		return port, nil
	}
	return 0, fmt.Errorf("no free port in %d–%d after 200 tries", portLow, portHigh)
}
