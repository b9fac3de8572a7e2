package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// haPrefix is the policy store's key prefix in the HA tests.
const haPrefix = "ha-e2e:"

// startReplica starts `tollgate serve` on the Redis policy store at
// redisAddr (seeding it with policy when the store is empty).
func startReplica(t *testing.T, redisAddr, policy string, extra ...string) *stack {
	t.Helper()
	return startReplicaURL(t, "redis://"+redisAddr+"/0", policy, extra...)
}

// startReplicaURL starts `tollgate serve` on the Redis policy store at
// storeURL (any --store URL form).
func startReplicaURL(t *testing.T, storeURL, policy string, extra ...string) *stack {
	t.Helper()
	args := append([]string{"--store", storeURL, "--store-prefix", haPrefix}, extra...)
	return startStackWith(t, policy, stackOptions{args: args})
}

// historyEvent mirrors `tollgate history -o json`.
type historyEvent struct {
	Seq     int    `json:"seq"`
	Version string `json:"version"`
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
}

func (s *stack) history() []historyEvent {
	s.t.Helper()
	var h []historyEvent
	if err := json.Unmarshal([]byte(s.cli(0, "history", "-o", "json")), &h); err != nil {
		s.t.Fatalf("decode history: %v", err)
	}
	return h
}

// checkLinear fails unless h is numbered 1..n without gaps and the last
// applied event names current.
func checkLinear(t *testing.T, h []historyEvent, current string) {
	t.Helper()
	last := ""
	for i, ev := range h {
		if ev.Seq != i+1 {
			t.Fatalf("history is not linear: event %d has seq %d: %+v", i, ev.Seq, h)
		}
		if ev.Outcome == "applied" {
			last = ev.Version
		}
	}
	if last != current {
		t.Fatalf("the last applied event names %s, the served version is %s: %+v", last, current, h)
	}
}

// TestHAReplicasShareRedisStore runs two control-plane replicas on one Redis
// store with an Envoy on replica B: a push to replica A is served by B's
// Envoy within a second; a rollback through B reaches it too; history is
// shared; two concurrent compare-and-set pushes give one winner and one
// conflict, and the history stays linear.
func TestHAReplicasShareRedisStore(t *testing.T) {
	rd := harness.StartRedis(t)
	us := upstreams(t, "one", "two")
	port := harness.FreePort(t)
	first := pushPolicy(port, us["one"].Addr(), us["two"].Addr(), "")
	a := startReplica(t, rd, first)
	b := startReplica(t, rd, "")
	if va, vb := a.status().Version, b.status().Version; va == "" || va != vb {
		t.Fatalf("replicas serve %q and %q, want the same seeded version", va, vb)
	}
	b.envoy("public", "ha-b", "delta")
	client := harness.NewHTTPClient(true)
	defer client.Close()
	ctx := testCtx(t, 60*time.Second)

	next := pushPolicy(port, us["one"].Addr(), us["two"].Addr(), "  - {name: new, match: {pathPrefix: /new}, backend: two, auth: none}")
	path := writeFile(t, "next.yaml", next)
	start := time.Now()
	pushed := make(chan string, 1)
	go func() { out, _, _ := a.run("push", path); pushed <- out }()
	if err := harness.WaitFor(ctx, func() (bool, error) {
		code, up := get(ctx, client, port, "/new")
		return code == 200 && up == "two", nil
	}); err != nil {
		t.Fatalf("replica B's Envoy never served the push to replica A: %v", err)
	}
	took := time.Since(start)
	t.Logf("push to replica A → served by the Envoy on replica B: %s (push: %q)", took.Round(time.Millisecond), strings.SplitN(<-pushed, "\n", 2)[0])
	if took > time.Second {
		t.Errorf("push to A reached B's Envoy after %s, want under 1 s", took)
	}
	b.waitSynced("ha-b")

	// Rollback through B; A and B agree on the history.
	h := a.history()
	firstVersion := h[0].Version
	b.cli(0, "rollback", firstVersion)
	if err := harness.WaitFor(ctx, func() (bool, error) {
		code, _ := get(ctx, client, port, "/new")
		return code == 404, nil
	}); err != nil {
		t.Fatalf("the rollback through B was not served: %v", err)
	}
	if err := harness.WaitFor(ctx, func() (bool, error) { return a.status().Version == firstVersion, nil }); err != nil {
		t.Fatalf("replica A does not follow the rollback through B: %v", err)
	}
	ha, hb := a.history(), b.history()
	if len(ha) != 3 || fmt.Sprint(ha) != fmt.Sprint(hb) || ha[2].Action != "rollback" {
		t.Fatalf("histories differ or lack the rollback:\nA %+v\nB %+v", ha, hb)
	}

	// Concurrent compare-and-set pushes: one wins, one gets a conflict.
	cur := a.status().Version
	var wg sync.WaitGroup
	type result struct {
		out, errOut string
		code        int
	}
	results := make([]result, 2)
	for i, s := range []*stack{a, b} {
		p := writeFile(t, fmt.Sprintf("race-%d.yaml", i), pushPolicy(port, us["one"].Addr(), us["two"].Addr(),
			fmt.Sprintf("  - {name: race-%d, match: {pathPrefix: /race-%d}, backend: one, auth: none}", i, i)))
		wg.Go(func() {
			o, e, c := s.run("push", p, "--expect-version", cur)
			results[i] = result{o, e, c}
		})
	}
	wg.Wait()
	wins, conflicts := 0, 0
	for _, r := range results {
		switch {
		case r.code == 0:
			wins++
		case r.code == 1 && strings.Contains(r.errOut, "conflict"):
			conflicts++
			t.Logf("loser: %s", strings.TrimSpace(r.errOut))
		}
	}
	if wins != 1 || conflicts != 1 {
		t.Fatalf("concurrent pushes: %d won, %d conflicts; want 1 and 1: %+v", wins, conflicts, results)
	}
	st := a.status()
	if err := harness.WaitFor(ctx, func() (bool, error) { return b.status().Version == st.Version, nil }); err != nil {
		t.Fatalf("replicas disagree after the race: %v", err)
	}
	h = b.history()
	checkLinear(t, h, st.Version)
	if len(h) != 4 {
		t.Errorf("history has %d events after 3 changes and a conflict, want 4 (a conflict writes none): %+v", len(h), h)
	}
}
