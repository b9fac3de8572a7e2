package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

const nackPolicy = `version: 1
gateways:
  - name: public
    listeners:
      - {name: http, port: %d, address: 127.0.0.1}
%s
routes:
  - {name: old, match: {pathPrefix: /old}, backend: one, auth: none}
backends:
  - {name: one, endpoints: [%q]}
`

// TestNackIsDetectedAndRolledBack drives a rejection no policy validation
// can foresee: a listener on a port another process already holds. Envoy
// fails to bind it and NACKs; the push fails, the previous version is
// served again, and status shows Envoy's message.
func TestNackIsDetectedAndRolledBack(t *testing.T) {
	t.Parallel() // waits on timers and asserts no latency (e2e/doc.go)
	for _, protocol := range []string{"delta", "sotw"} {
		t.Run(protocol, func(t *testing.T) { testNack(t, protocol) })
	}
}

func testNack(t *testing.T, protocol string) {
	us := upstreams(t, "one")
	port := harness.FreePort(t)
	s := startStack(t, fmt.Sprintf(nackPolicy, port, "", us["one"].Addr()))
	e := s.envoy("public", "nack-"+protocol, protocol)
	before := s.waitSynced("nack-" + protocol)

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	bad := fmt.Sprintf(nackPolicy, port, fmt.Sprintf("      - {name: taken, port: %d, address: 127.0.0.1}", takenPort), us["one"].Addr())
	stdout, stderr, code := s.run("push", writeFile(t, "taken.yaml", bad))
	if code != 1 || !strings.Contains(stderr, "rejected") || !strings.Contains(stderr, "previous configuration is still served") {
		t.Fatalf("push of a listener on a taken port: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	st := s.waitSynced("nack-" + protocol)
	if st.Version != before.Version {
		t.Errorf("served version %s after the NACK, want the previous %s", st.Version, before.Version)
	}
	if msg := nackMessage(st, "nack-"+protocol); !strings.Contains(msg, "taken") {
		t.Errorf("status shows NACK %q, want Envoy's message about listener taken", msg)
	}
	text := s.cli(0, "status")
	if !strings.Contains(text, "NACK from nack-"+protocol) {
		t.Errorf("text status does not show the NACK:\n%s", text)
	}
	ctx := testCtx(t, 10*time.Second)
	if code, up := get(ctx, harness.NewHTTPClient(false), port, "/old/x"); code != 200 || up != "one" {
		t.Errorf("old route after the NACK: %d from %q", code, up)
	}
	if h := s.cli(0, "history"); !strings.Contains(h, "rejected") {
		t.Errorf("history does not record the rejected push:\n%s", h)
	}
	assertNoResendLoop(t, e)
}

// assertNoResendLoop checks that the rejected listener is not re-sent over
// and over: the LDS update count must stay still for a while.
func assertNoResendLoop(t *testing.T, e *harness.Envoy) {
	ctx := testCtx(t, 10*time.Second)
	first, _, err := e.Stat(ctx, "listener_manager.lds.update_attempt")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		n, _, _ := e.Stat(ctx, "listener_manager.lds.update_attempt")
		if n > first+2 {
			t.Fatalf("LDS updates keep coming after the NACK: %d -> %d", first, n)
		}
		time.Sleep(100 * time.Millisecond) // sampling interval of a bounded observation window
	}
}

func nackMessage(st statusJSON, node string) string {
	for _, n := range st.Nodes {
		if n.ID == node {
			for _, nk := range n.Nacks {
				return nk.Message
			}
		}
	}
	return ""
}
