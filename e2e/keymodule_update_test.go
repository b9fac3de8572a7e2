package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestKeyNativeListenerUpdate: a push that replaces the gateway's listener
// (a JWT provider's clock skew, which changes the module's filter config
// and so its name) never refuses a valid signed key. With the module, the
// new listener's module filter takes its config (the exceptions table)
// over ECDS under a new name; until that config arrives the filter runs
// its default config, which refuses every signed key (503
// key_store_unavailable): a key that was admitted before the push must be
// admitted throughout it, as on the filter path (the key identity filter's
// ECDS name never changes).
func TestKeyNativeListenerUpdate(t *testing.T) { eachJWTEngine(t, testKeyNativeListenerUpdate) }

func testKeyNativeListenerUpdate(t *testing.T, engine jwtEngine) {
	k := startKeyNativeStackEngine(t, engine, exactMode)
	k.waitKeyTable(t, k.port)
	key, _ := createKey(t, k.stack, "update", "pro")
	if code, _, body := k.call(t, "/keys/1", map[string]string{"x-api-key": key}); code != 200 {
		t.Fatalf("before the push: %d %s", code, body)
	}
	ctx := testCtx(t, 20*time.Second)
	modified, _, err := k.proxy.Stat(ctx, "listener_manager.listener_modified")
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(k.policy, "algorithms: [RS256]", "algorithms: [RS256]\n      clockSkew: 20s", 1)
	if next == k.policy {
		t.Fatal("the policy has no JWT provider to change")
	}
	k.cli(0, "push", writeFile(t, "next.yaml", next))
	start, served, refused := time.Now(), 0, map[string]int{}
	for {
		code, _, body := k.call(t, "/keys/1", map[string]string{"x-api-key": key})
		if code != 200 {
			refused[strings.TrimSpace(body)]++
		}
		served++
		now, _, err := k.proxy.Stat(ctx, "listener_manager.listener_modified")
		warming, _, werr := k.proxy.Stat(ctx, "listener_manager.total_listeners_warming")
		if err != nil || werr != nil {
			t.Fatal(err, werr)
		}
		if time.Since(start) > 3*time.Second {
			if engine.name == jwtEngines[1].name && (now == modified || warming != 0) {
				t.Fatalf("listener not replaced 3 s after the push (listener_modified %d → %d, warming %d)", modified, now, warming)
			}
			break
		}
	}
	t.Logf("%d requests while the listener was replaced (%s); refused: %v", served,
		time.Since(start).Round(time.Millisecond), refused)
	if len(refused) > 0 {
		t.Errorf("a valid signed key was refused during the listener update: %v (of %d requests)", refused, served)
	}
}
