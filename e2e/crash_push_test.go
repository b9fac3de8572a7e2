package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// TestCrashDuringAckWaitIsExplainedByHistory: a push waits for the ACK of a
// SIGSTOPped second Envoy while its version is already current in the
// store (the history shows it pending); the control plane is SIGKILLed
// during that wait and restarted on the same store. What the restarted
// control plane serves (status, get) is the version of the newest applied
// or pending event of the history, with the push's reason. The directory
// store's restart settles the pending event as applied; on Redis the dead
// replica's push lock keeps it pending until its lease (3 s) ends, and the
// restarted replica then settles it on its next Follow tick.
func TestCrashDuringAckWaitIsExplainedByHistory(t *testing.T) {
	t.Parallel() // waits on timers and asserts no latency (e2e/doc.go)
	for _, store := range []string{"dir", "redis"} {
		t.Run(store, func(t *testing.T) {
			var args []string
			if store == "redis" {
				args = []string{"--store", "redis://" + harness.StartRedis(t) + "/0", "--store-prefix", "crash:"}
			}
			crashDuringAckWait(t, append(args, "--ack-timeout", "60s"))
		})
	}
}

func crashDuringAckWait(t *testing.T, args []string) {
	us := upstreams(t, "one", "two")
	port := harness.FreePort(t)
	seed := pushPolicy(port, us["one"].Addr(), us["two"].Addr(), "")
	s := startStackWith(t, seed, stackOptions{args: args})
	s.envoy("public", "crash-0", "delta")
	slow := s.envoy("public", "crash-1", "delta")
	snap, _ := nodeVersion(s.waitSynced("crash-0"), "crash-0")
	before := s.waitSynced("crash-1").Version

	if err := slow.Pause(testCtx(t, 10*time.Second)); err != nil { // every thread stopped: no late ACK
		t.Fatal(err)
	}
	defer slow.Resume() //nolint:errcheck // a no-op unless the test failed early
	next := pushPolicy(port, us["one"].Addr(), us["two"].Addr(), "  - {name: new, match: {pathPrefix: /new}, backend: two, auth: none}")
	pushed := make(chan string, 1)
	go func() {
		out, errOut, code := s.run("push", "-m", "crash test", writeFile(t, "next.yaml", next))
		pushed <- fmt.Sprintf("exit %d\n%s%s", code, out, errOut)
	}()
	// The push waits for the stopped Envoy once its version is current.
	waitFirstStepAcked(t, s, "crash-0", snap)
	time.Sleep(300 * time.Millisecond) // well inside the 60s ACK wait
	_ = s.cp.Kill()                    // reports "signal: killed": the point
	t.Logf("the push's client after the SIGKILL: %s", <-pushed)
	if err := slow.Resume(); err != nil {
		t.Fatal(err)
	}

	s.startServe(seed)
	served := s.waitSynced("crash-1").Version
	h := s.history()
	t.Logf("served %s; history %+v", served, h)
	var head historyEvent
	for _, ev := range h {
		if ev.Action != "endpoints" && (ev.Outcome == "applied" || ev.Outcome == "pending") {
			head = ev
		}
	}
	if served == before || head.Version != served {
		t.Fatalf("the restarted control plane serves %s (before the push: %s); the newest applied or pending event is %+v: %+v",
			served, before, head, h)
	}
	var text string
	ctx := testCtx(t, 10*time.Second)
	if err := harness.WaitFor(ctx, func() (bool, error) {
		text = s.cli(0, "history")
		return strings.Contains(text, "crash test") && strings.Contains(text, "recovered after a restart"), nil
	}); err != nil {
		t.Errorf("history does not show the push with its reason, settled as recovered: %v\n%s", err, text)
	}
	if got := s.cli(0, "get"); !strings.Contains(got, "pathPrefix: /new") {
		t.Errorf("get does not show the served version's files:\n%s", got)
	}
}

// nodeVersion is the snapshot version status shows for node.
func nodeVersion(st statusJSON, node string) (string, bool) {
	for _, n := range st.Nodes {
		if n.ID == node {
			return n.Version, n.Synced
		}
	}
	return "", false
}

// waitFirstStepAcked waits until the running Envoy node ACKed a snapshot
// newer than was: the push made its version current and now waits for the
// stopped Envoy's ACK.
func waitFirstStepAcked(t *testing.T, s *stack, node, was string) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	if err := harness.WaitFor(ctx, func() (bool, error) {
		v, synced := nodeVersion(s.status(), node)
		return synced && v != was, nil
	}); err != nil {
		t.Fatalf("%s never ACKed the push's first step: %v", node, err)
	}
}
