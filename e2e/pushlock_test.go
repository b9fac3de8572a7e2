package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// lockRecoveryBound is how soon after a push-lock holder dies (or stalls)
// another replica settles its pending event and pushes: the 3 s lease of
// the lock (internal/controlplane.pushLockTTL) plus one 1 s Follow tick,
// plus slack for a loaded machine.
const lockRecoveryBound = 5 * time.Second

// lockPair is two control-plane replicas on one Redis store; replica A has
// two Envoys, the second of which the test SIGSTOPs so that a change
// through A waits for its ACK while holding the store's push lock.
type lockPair struct {
	a, b     *stack
	slow     *harness.Envoy
	port     int
	one, two string
}

func startLockPair(t *testing.T) *lockPair {
	t.Helper()
	rd := harness.StartRedis(t)
	us := upstreams(t, "one", "two")
	p := &lockPair{port: harness.FreePort(t), one: us["one"].Addr(), two: us["two"].Addr()}
	args := []string{"--ack-timeout", "60s"}
	p.a = startReplica(t, rd, p.policy(""), args...)
	p.b = startReplica(t, rd, "", args...)
	p.a.envoy("public", "lock-a0", "delta")
	p.slow = p.a.envoy("public", "lock-a1", "delta")
	p.a.waitSynced("lock-a1")
	return p
}

// policy is the two-backend policy with one extra route named name.
func (p *lockPair) policy(name string) string {
	if name == "" {
		return pushPolicy(p.port, p.one, p.two, "")
	}
	return pushPolicy(p.port, p.one, p.two, fmt.Sprintf("  - {name: %s, match: {pathPrefix: /%s}, backend: two, auth: none}", name, name))
}

// holdLock runs `tollgate args...` through replica A with A's second Envoy
// SIGSTOPped, and returns once A's first Envoy ACKed the change: A now
// waits for the stopped Envoy's ACK, holding the push lock. The command's
// result arrives on the returned channel.
func (p *lockPair) holdLock(t *testing.T, args ...string) <-chan string {
	t.Helper()
	snap, _ := nodeVersion(p.a.waitSynced("lock-a0"), "lock-a0")
	if err := p.slow.Pause(testCtx(t, 10*time.Second)); err != nil { // every thread stopped: no late ACK
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.slow.Resume() })
	done := make(chan string, 1)
	go func() {
		out, errOut, code := p.a.run(args...)
		done <- fmt.Sprintf("exit %d\n%s%s", code, out, errOut)
	}()
	waitFirstStepAcked(t, p.a, "lock-a0", snap)
	time.Sleep(300 * time.Millisecond) // well inside the 60 s ACK wait
	return done
}

// pushThroughB pushes the policy with route name through replica B,
// retrying while the push lock is held, and returns how long it took from
// since.
func (p *lockPair) pushThroughB(t *testing.T, name string, since time.Time) time.Duration {
	t.Helper()
	path := writeFile(t, name+".yaml", p.policy(name))
	for {
		out, errOut, code := p.b.run("push", "-m", "after the holder stalled", path)
		if code == 0 {
			return time.Since(since)
		}
		if time.Since(since) > 30*time.Second {
			t.Fatalf("replica B cannot push %s after 30 s: exit %d\n%s%s", name, code, out, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// noPending waits until B's history has no pending event and returns how
// long it took from since.
func (p *lockPair) noPending(t *testing.T, since time.Time) time.Duration {
	t.Helper()
	for {
		pending := false
		for _, ev := range p.b.history() {
			pending = pending || ev.Outcome == "pending"
		}
		if !pending {
			return time.Since(since)
		}
		if time.Since(since) > 90*time.Second {
			t.Fatalf("the dead replica's pending event is still pending after 90 s: %+v", p.b.history())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDeadReplicaPushLockRecoversFast: replica A is SIGKILLed during a
// push's ACK wait (holding the push lock, its event pending); replica B
// settles the pending event (applied: its version stayed current and is
// served) and pushes within lockRecoveryBound, and the history stays
// linear, its last applied event naming the version B serves.
func TestDeadReplicaPushLockRecoversFast(t *testing.T) {
	p := startLockPair(t)
	pushed := p.holdLock(t, "push", "-m", "the holder dies", writeFile(t, "dies.yaml", p.policy("dies")))
	_ = p.a.cp.Kill()
	killed := time.Now()
	t.Logf("the push's client after the SIGKILL: %s", <-pushed)

	settled := p.noPending(t, killed)
	took := p.pushThroughB(t, "next", killed)
	t.Logf("after the SIGKILL of the lock holder: pending event settled in %s, replica B pushed in %s",
		settled.Round(time.Millisecond), took.Round(time.Millisecond))
	if settled > lockRecoveryBound || took > lockRecoveryBound {
		t.Errorf("recovery took %s (settle) / %s (push), want ≤ %s", settled, took, lockRecoveryBound)
	}
	h := p.b.history()
	checkLinear(t, h, p.b.status().Version)
	if n := len(h); n < 3 || h[n-2].Outcome != "applied" || h[n-1].Outcome != "applied" {
		t.Fatalf("history %+v: want the dead replica's push settled as applied, then B's push", h)
	}
	if text := p.b.cli(0, "history"); !strings.Contains(text, "the holder dies") || !strings.Contains(text, "recovered after a restart") {
		t.Errorf("history does not explain the dead replica's push:\n%s", text)
	}
}

// TestStalledReplicaCannotWriteAfterLosingTheLock: replica A holds the push
// lock during an endpoint change's ACK wait and is SIGSTOPped past the
// lock's lease; replica B takes the lock and pushes within
// lockRecoveryBound. When A resumes (SIGCONT, and its Envoy's ACK
// arrives), the store fences A's writes: its history event for the
// endpoint change is refused, so the history stays linear and its last
// applied event still names the version B pushed, which both replicas then
// serve.
func TestStalledReplicaCannotWriteAfterLosingTheLock(t *testing.T) {
	p := startLockPair(t)
	changed := p.holdLock(t, "endpoints", "set", "one", p.two)
	if err := p.a.cp.Pause(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	t.Cleanup(func() { _ = p.a.cp.Resume() })

	took := p.pushThroughB(t, "next", stopped)
	t.Logf("replica B pushed %s after the lock holder was SIGSTOPped", took.Round(time.Millisecond))
	if took > lockRecoveryBound {
		t.Errorf("replica B pushed after %s, want ≤ %s", took, lockRecoveryBound)
	}
	want := p.b.status().Version
	if err := p.slow.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := p.a.cp.Resume(); err != nil {
		t.Fatal(err)
	}
	t.Logf("the stalled endpoint change after SIGCONT: %s", <-changed)
	ctx := testCtx(t, 20*time.Second)
	if err := harness.WaitFor(ctx, func() (bool, error) { return p.a.status().Version == want, nil }); err != nil {
		t.Fatalf("replica A does not serve B's version %s after resuming: %v", want, err)
	}
	time.Sleep(time.Second) // let any late write of A land
	h := p.b.history()
	t.Logf("history %+v", h)
	checkLinear(t, h, want)
	if h[len(h)-1].Version != want {
		t.Fatalf("the stalled replica wrote after losing the lock: last event %+v, want B's push of %s", h[len(h)-1], want)
	}
	if got := p.b.status().Version; got != want {
		t.Fatalf("the store's current version is %s after A resumed, want %s", got, want)
	}
}
