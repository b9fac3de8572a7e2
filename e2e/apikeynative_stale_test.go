package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestAPIKeyNativeRevokedWhileStale: a revoked signed key is never
// admitted while the exceptions table cannot be refreshed: Redis
// unreachable past maxStale (SIGSTOP: the data survives), then the control
// plane down as well (Envoy keeps its last table), then both back (a new
// control plane serves an unloaded table until it read Redis). Every
// answer is 401 revoked_key or 503 key_store_unavailable; a key that was
// not revoked gets 503 during the outage and 200 after it.
func TestAPIKeyNativeRevokedWhileStale(t *testing.T) {
	t.Parallel() // waits on timers and asserts no latency (e2e/doc.go)
	eachJWTEngine(t, testAPIKeyNativeRevokedWhileStale)
}

func testAPIKeyNativeRevokedWhileStale(t *testing.T, engine jwtEngine) {
	k := startKeyNativeStackEngine(t, engine, exactMode)
	k.waitKeyTable(t, k.port)
	revoked, id := createKey(t, k.stack, "gone", "pro")
	live, _ := createKey(t, k.stack, "live", "pro")
	revokeAndWait(t, k, k.stack, id, revoked, 2*time.Second)

	if err := k.redis.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cont := func() { _ = k.redis.proc.Signal(syscall.SIGCONT) }
	t.Cleanup(cont)
	seen := pollRevoked(t, k, revoked, 4*time.Second)
	t.Logf("Redis stopped, 4 s: %v", seen)
	if seen[`503 {"error":"unavailable","reason":"key_store_unavailable"}`] == 0 {
		t.Errorf("no 503 key_store_unavailable within 4 s of Redis stopping (maxStale 1 s): %v", seen)
	}
	if code := k.get(t, k.port, "/keys/1", map[string]string{"x-api-key": live}).Status; code != 503 {
		t.Errorf("a live signed key during the outage: %d, want 503", code)
	}

	if err := k.cp.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Redis stopped and control plane down, 2 s: %v", pollRevoked(t, k, revoked, 2*time.Second))

	cont()
	k.startServe(k.policy)
	t.Logf("both back, 3 s: %v", pollRevoked(t, k, revoked, 3*time.Second))
	waitKeyStatus(t, k, k.port, revoked, 401, revokedKeyBody, 5*time.Second)
	waitKeyStatus(t, k, k.port, live, 200, "", 5*time.Second)
}

// pollRevoked sends a revoked key for d and counts the answers by status
// and body, failing on any answer other than 401 revoked_key or 503
// key_store_unavailable.
func pollRevoked(t *testing.T, k *keyStack, key string, d time.Duration) map[string]int {
	t.Helper()
	ok := map[string]bool{
		"401 " + revokedKeyBody: true,
		`503 {"error":"unavailable","reason":"key_store_unavailable"}`: true,
	}
	seen := map[string]int{}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		resp, err := k.client.Get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/keys/1", k.port), "", map[string]string{"x-api-key": key})
		if err != nil {
			seen["error"]++
			continue
		}
		answer := fmt.Sprintf("%d %s", resp.Status, resp.Body)
		if !ok[answer] {
			t.Fatalf("a revoked key got %.200s (so far %v)", answer, seen)
		}
		seen[answer]++
	}
	return seen
}
