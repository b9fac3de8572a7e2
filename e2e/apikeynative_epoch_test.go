package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
)

// keyEpochKey is where the API-key store keeps its epoch in Redis.
const keyEpochKey = "tollgate:apikey:{exceptions}:epoch"

// keyEpoch is the key-store epoch the stacks' Redis is seeded with
// (seedKeyEpoch), so that the keys a test signs itself (keyClaims) are of
// the current epoch.
const keyEpoch = "e2eEpoch0001"

// seedKeyEpoch stores keyEpoch as the key store's epoch in the Redis at
// addr; call it before a control plane starts, which then keeps it.
func seedKeyEpoch(t *testing.T, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	if err := c.Set(testCtx(t, 5*time.Second), keyEpochKey, keyEpoch, 0).Err(); err != nil {
		t.Fatalf("seed the key-store epoch: %v", err)
	}
}

// redisDo runs fn with a client of the Redis at addr.
func redisDo(t *testing.T, addr string, fn func(ctx context.Context, c *redis.Client) error) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	if err := fn(testCtx(t, 5*time.Second), c); err != nil {
		t.Fatal(err)
	}
}

// keyEpochOf returns the ep claim of a signed key.
func keyEpochOf(t *testing.T, key string) string {
	t.Helper()
	parts := strings.Split(key, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	var c struct{ Ep string }
	if err != nil || json.Unmarshal(raw, &c) != nil {
		t.Fatalf("claims of a signed key: %v", err)
	}
	return c.Ep
}

// keyAnswer is a request's status and body.
type keyAnswer struct {
	status int
	body   string
}

func (a keyAnswer) String() string { return fmt.Sprintf("%d %s", a.status, a.body) }

// ask sends key on path to the Envoy of a.
func (a *authStack) ask(t *testing.T, path, key string) keyAnswer {
	t.Helper()
	code, _, body := a.call(t, path, map[string]string{"x-api-key": key})
	if code == 200 {
		body = ""
	}
	return keyAnswer{code, body}
}

const unknownKey = `{"error":"unauthorized","reason":"unknown_key"}`

// TestAPIKeyNativeEpochFlush: revoke signed key A, keep signed key B, then
// FLUSHALL the key store. Both are refused (401 unknown_key) within a
// second on the native path (/m) and through ext_authz (/x), and never
// admitted after the flush; an opaque key's record is gone as before
// (ext_authz: unknown_key); a key minted after the flush works on both.
// Before the key-store epoch, A and B got 200 on the native path for ever.
func TestAPIKeyNativeEpochFlush(t *testing.T) { eachJWTEngine(t, testAPIKeyNativeEpochFlush) }

func testAPIKeyNativeEpochFlush(t *testing.T, engine jwtEngine) {
	a, _ := startMixedNativeStackEngine(t, engine, "exact")
	keyA, idA := createKey(t, a.stack, "acme", "pro")
	keyB, _ := createKey(t, a.stack, "bob", "pro")
	opaque := opaqueKey(t, a.stack, "carol", "user")
	paths := []string{"/m/1", "/x/1"} // native, ext_authz
	for _, p := range paths {
		for _, k := range []string{keyA, keyB, opaque} {
			if got := a.ask(t, p, k); got.status != 200 {
				t.Fatalf("before: %s → %s", p, got)
			}
		}
	}
	a.cli(0, "keys", "revoke", idA)
	waitAnswers(t, a, paths, map[string]string{"A": keyA}, revokedKeyBody, 2*time.Second)
	redisDo(t, a.redis, func(ctx context.Context, c *redis.Client) error { return c.FlushAll(ctx).Err() })
	flushed := time.Now()
	took := waitAnswers(t, a, paths, map[string]string{"A (revoked)": keyA, "B": keyB}, unknownKey, 3*time.Second)
	t.Logf("FLUSHALL → both signed keys 401 unknown_key on the native path and ext_authz: %s", took.Round(time.Millisecond))
	if took > 1200*time.Millisecond {
		t.Errorf("signed keys refused %s after the flush, want about a second at most", took)
	}
	// Opaque keys: the record decides, as before (ext_authz's cache may
	// keyAnswer for up to its TTL).
	waitAnswers(t, a, paths, map[string]string{"opaque": opaque}, unknownKey, 7*time.Second)
	t.Logf("opaque key unknown %s after the flush", time.Since(flushed).Round(time.Millisecond))
	fresh, _ := createKey(t, a.stack, "dave", "pro")
	waitAnswers(t, a, paths, map[string]string{"minted after the flush": fresh}, "", 2*time.Second)
	for range 10 { // the old keys stay refused
		for _, p := range paths {
			for name, k := range map[string]string{"A": keyA, "B": keyB} {
				if got := a.ask(t, p, k); got.status != 401 || got.body != unknownKey {
					t.Fatalf("%s on %s after the flush: %s", name, p, got)
				}
			}
		}
	}
}

// waitAnswers polls every key on every path until each answers 401 with
// body (200 when body is ""), failing after within; a 200 for a key that
// should be refused fails at once. It returns how long it took.
func waitAnswers(t *testing.T, a *authStack, paths []string, keys map[string]string, body string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	want := keyAnswer{401, body}
	if body == "" {
		want = keyAnswer{200, ""}
	}
	last := map[string]keyAnswer{}
	err := harness.WaitFor(testCtx(t, within), func() (bool, error) {
		done := true
		for _, p := range paths {
			for name, k := range keys {
				got := a.ask(t, p, k)
				last[name+" "+p] = got
				if want.status != 200 && got.status == 200 && strings.Contains(body, "unknown_key") {
					return false, fmt.Errorf("%s admitted on %s after the flush", name, p)
				}
				done = done && got == want
			}
		}
		return done, nil
	})
	if err != nil {
		t.Fatalf("want %s within %s: %v; last %v", want, within, err, last)
	}
	return time.Since(start)
}

// TestAPIKeyNativeEpochReplicas: two control-plane replicas on one Redis,
// an Envoy each. After FLUSHALL, both refuse the old keys within a second,
// agree on one new epoch (the one the Redis holds and new keys carry),
// and a key minted through either is admitted by both Envoys, steadily
// (no flapping between epochs).
func TestAPIKeyNativeEpochReplicas(t *testing.T) {
	k, sa, sb := startKeyReplicas(t, "epoch")
	r, portA, portB := k.redis, k.port, k.secondPort
	old, _ := createKey(t, sb, "acme", "pro")
	// Only the key records go (the control plane's own state, under its
	// prefix, stays): as a lost key store would.
	redisDo(t, r.addr, func(ctx context.Context, c *redis.Client) error {
		keys, err := c.Keys(ctx, "tollgate:apikey:*").Result()
		if err != nil || len(keys) == 0 {
			return fmt.Errorf("key store keys %v: %w", keys, err)
		}
		return c.Del(ctx, keys...).Err()
	})
	for _, port := range []int{portA, portB} {
		took := waitKeyStatus(t, k, port, old, 401, unknownKey, 1500*time.Millisecond)
		t.Logf("Envoy on :%d refuses the pre-flush key after %s", port, took.Round(time.Millisecond))
	}
	keyA, _ := createKey(t, sa, "a-user", "pro")
	keyB, _ := createKey(t, sb, "b-user", "pro")
	var stored string
	redisDo(t, r.addr, func(ctx context.Context, c *redis.Client) (err error) {
		stored, err = c.Get(ctx, keyEpochKey).Result()
		return err
	})
	if ea, eb := keyEpochOf(t, keyA), keyEpochOf(t, keyB); ea != stored || eb != stored || stored == keyEpoch {
		t.Fatalf("epochs: key via A %q, via B %q, Redis %q, before the flush %q", ea, eb, stored, keyEpoch)
	}
	for _, port := range []int{portA, portB} {
		waitKeyStatus(t, k, port, keyA, 200, "", 2*time.Second)
		waitKeyStatus(t, k, port, keyB, 200, "", 2*time.Second)
	}
	deadline := time.Now().Add(2 * time.Second) // 10 polls of each watcher
	for time.Now().Before(deadline) {
		for _, port := range []int{portA, portB} {
			for _, key := range []string{keyA, keyB} {
				if resp := k.get(t, port, "/keys/1", map[string]string{"x-api-key": key}); resp.Status != 200 {
					t.Fatalf("Envoy on :%d refused a current key: %d %s (epochs flapping?)", port, resp.Status, resp.Body)
				}
			}
			if resp := k.get(t, port, "/keys/1", map[string]string{"x-api-key": old}); resp.Status != 401 {
				t.Fatalf("Envoy on :%d admitted the pre-flush key: %d", port, resp.Status)
			}
		}
	}
}
