package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// TestAPIKeyNativeLogsHoldNoKeys: after every kind of key request on a
// native key route — signed keys valid, forged, expired, malformed,
// revoked, updated, too long, in both headers, ambiguous, inside other
// text; opaque keys valid, unknown and revoked; a Redis outage — no key
// (a whole key, a signed key's signature, an opaque key's secret) appears
// in tollgate's log (debug level), Envoy's log and access log, Envoy's
// admin output (stats, Prometheus, config dump, clusters, listeners), or
// tollgate's /metrics, status, history and key listing.
func TestAPIKeyNativeLogsHoldNoKeys(t *testing.T) {
	t.Parallel() // waits on timers and asserts no latency (e2e/doc.go)
	k := startKeyNativeStack(t)
	k.waitKeyTable(t, k.port)
	used := keyTraffic(t, k)
	rid := ""
	if _, echo, _ := k.call(t, "/keys/last", map[string]string{"x-api-key": used[0]}); echo != nil {
		rid = hdr(echo, "x-request-id")
	}
	waitAccessLine(t, k.proxy, rid) // the access log is flushed
	texts := map[string]string{"tollgate log": k.cp.Logs(), "envoy log": k.proxy.Logs()}
	for _, path := range []string{"/stats", "/stats/prometheus", "/config_dump?include_eds", "/clusters", "/listeners", "/server_info"} {
		code, body, err := k.proxy.Admin(testCtx(t, 10*time.Second), path)
		if err != nil || code != 200 {
			t.Fatalf("envoy admin %s: %d %v", path, code, err)
		}
		texts["envoy admin "+path] = string(body)
	}
	for _, path := range []string{"/metrics", "/v1/status", "/v1/history", "/v1/keys?consumer=acme", "/v1/keys?consumer=legacy"} {
		resp, err := harness.HTTPGet(testCtx(t, 10*time.Second), "http://"+k.adminAddr+path, "", map[string]string{"Authorization": "Bearer " + testToken})
		if err != nil || resp.Status != 200 {
			t.Fatalf("tollgate admin %s: %+v %v", path, resp, err)
		}
		texts["tollgate admin "+path] = string(resp.Body)
	}
	texts["keys list"] = k.cli(0, "keys", "list", "--consumer", "acme", "-o", "json")
	checkNoKeys(t, texts, used)
}

// keyTraffic sends every kind of key request to k and returns the keys
// it used.
func keyTraffic(t *testing.T, k *keyStack) []string {
	t.Helper()
	valid := keyClaims("acme", "logkey01", "pro", "user")
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	_, kid := keySigner(t, keyPepper)
	created, _ := createKey(t, k.stack, "acme", "pro", "--roles", "user")
	revoked, rid := createKey(t, k.stack, "acme", "pro")
	updated, uid := createKey(t, k.stack, "acme", "pro")
	k.cli(0, "keys", "revoke", rid)
	k.cli(0, "keys", "update", uid, "--tier", "tiny")
	var opaque struct{ Key string }
	_ = json.Unmarshal([]byte(k.cli(0, "keys", "create", "--consumer", "legacy", "--format", "opaque", "-o", "json")), &opaque)
	var opaqueRevoked struct {
		Key    string
		Record struct{ ID string }
	}
	_ = json.Unmarshal([]byte(k.cli(0, "keys", "create", "--consumer", "legacy", "--format", "opaque", "-o", "json")), &opaqueRevoked)
	k.cli(0, "keys", "revoke", opaqueRevoked.Record.ID)
	good := signedKey(t, valid)
	keys := []string{good, created, revoked, updated, opaque.Key, opaqueRevoked.Key, otherKey(t),
		good[:len(good)-6] + "AAAAAA", signKey(stranger, kid, valid),
		signedKey(t, with(valid, "exp", time.Now().Add(-time.Minute).Unix())),
		signedKey(t, with(valid, "sub", "a\r\nx-evil: 1")), signedKey(t, with(valid, "sub", strings.Repeat("s", 1200))),
		signRawKey(t, rawClaims("logkey02", "tnt", "\"a\xffb\"")), "tg." + none(valid)}
	time.Sleep(500 * time.Millisecond) // the revocation and the update reach Envoy
	for _, key := range keys {
		for _, h := range []map[string]string{
			{"x-api-key": key}, {"Authorization": "ApiKey " + key}, {"x-api-key": "junk" + key},
			{"x-api-key": key, "Authorization": "Bearer " + key},
		} {
			k.call(t, "/keys/1", h)
			k.call(t, "/admin/1", h)
		}
	}
	if err := k.redis.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitKeyStatus(t, k, k.port, good, 503, "", 5*time.Second)
	k.call(t, "/keys/1", map[string]string{"x-api-key": opaque.Key})
	if err := k.redis.proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitKeyStatus(t, k, k.port, good, 200, "", 10*time.Second)
	return keys
}

// checkNoKeys fails for every text that keyLeaks finds holding a key.
func checkNoKeys(t *testing.T, texts map[string]string, keys []string) {
	t.Helper()
	for name, text := range texts {
		if text == "" {
			t.Errorf("%s is empty: nothing was checked", name)
		}
	}
	if probe := keyLeaks(map[string]string{"probe": "x=" + keys[1][:len(keys[1])-1]}, keys); len(probe) == 0 {
		t.Fatal("keyLeaks misses a signed key's signature")
	}
	for _, leak := range keyLeaks(texts, keys) {
		t.Error(leak)
	}
	t.Logf("checked %d outputs (%d bytes) for %d keys", len(texts), totalLen(texts), len(keys))
}

// keyLeaks says which texts hold one of keys (whole), a signed key's
// signature (or its first 40 characters) or an opaque key's secret, or
// anything shaped like a key.
func keyLeaks(texts map[string]string, keys []string) []string {
	shapes := regexp.MustCompile(`tg\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}|tg_[A-Za-z0-9]{20,}`)
	var out []string
	for name, text := range texts {
		for _, key := range keys {
			parts := strings.Split(key, ".")
			secret := parts[len(parts)-1] // a signed key's signature; an opaque key whole
			if strings.Contains(text, key) || (len(secret) >= 40 && strings.Contains(text, secret[:40])) {
				out = append(out, fmt.Sprintf("%s holds the key %.12s…", name, key))
			}
		}
		if m := shapes.FindString(text); m != "" {
			out = append(out, fmt.Sprintf("%s holds a key-shaped string %.16s… (%d bytes)", name, m, len(m)))
		}
	}
	return out
}

func totalLen(texts map[string]string) int {
	n := 0
	for _, s := range texts {
		n += len(s)
	}
	return n
}
