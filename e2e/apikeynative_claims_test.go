package e2e

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/extauthz/contract"
)

// signRawKey signs payload, a raw JSON text kept byte for byte (invalid
// UTF-8 and escapes survive), with the stacks' signer.
func signRawKey(t *testing.T, payload string) string {
	k, kid := keySigner(t, keyPepper)
	h, _ := json.Marshal(map[string]any{"alg": "EdDSA", "kid": kid})
	in := b64(h) + "." + b64([]byte(payload))
	return "tg." + in + "." + b64(ed25519.Sign(k, []byte(in)))
}

// rawClaims is a signed key's JSON payload with field (jti, sub, tnt,
// tier or roles) replaced by the raw JSON value v, under key id jti
// unless field is jti, in the epoch keyEpoch.
func rawClaims(jti, field, v string) string {
	c := map[string]string{"jti": `"` + jti + `"`, "sub": `"acme"`, "tnt": `"t1"`, "tier": `"pro"`, "roles": `["user"]`}
	c[field] = v
	return `{"iss":"tollgate:keys","sub":` + c["sub"] + `,"jti":` + c["jti"] + `,"iat":` + strconv.FormatInt(time.Now().Unix(), 10) +
		`,"tnt":` + c["tnt"] + `,"tier":` + c["tier"] + `,"roles":` + c["roles"] + `,"ep":"` + keyEpoch + `"}`
}

// oddValues are JSON string bodies (between the quotes); badUTF8 marks
// those that are not UTF-8 once decoded (Envoy's JSON parser refuses
// them).
var oddValues = []struct {
	name, raw string
	badUTF8   bool
}{
	{"tab", `a\tb`, false}, {"leading tab", `\tab`, false}, {"leading space", ` ab`, false}, {"CR", `a\rb`, false},
	{"LF", `a\nb`, false}, {"CRLF header injection", `a\r\nx-evil: 1`, false}, {"DEL", "a\x7fb", false},
	{"C0 SOH", `a\u0001b`, false}, {"ESC", `a\u001bb`, false}, {"NUL", `a\u0000b`, false}, {"C1 NEL", "a\u0085b", false},
	{"C1 CSI", `a\u009bb`, false}, {"bidi RLO", "a\u202eb", false}, {"bidi LRI", `a\u2066b`, false},
	{"zero width space", "a\u200bb", false}, {"BOM", "a\ufeffb", false}, {"invalid UTF-8", "a\xffb", true},
	{"overlong UTF-8", "a\xc0\xafb", true}, {"lone surrogate", `a\ud800b`, true}, {"129 bytes", strings.Repeat("c", 129), false},
	{"key over 1024 bytes", strings.Repeat("x", 1100), false}, {"40 KB", strings.Repeat("y", 40000), false},
	{"uppercase", "Pro", false}, {"8 characters, not base62", "abc-def_", false},
}

// TestAPIKeyNativeOddClaims: a signed key longer than the key store's
// bound, whose claims are not UTF-8, or whose consumer (sub) or tier is
// one the admin API never signs (control, C1, bidi or other non-ASCII
// characters, too long), or whose key id (jti) is not one the key store
// issues (8 base62 characters; it could never be revoked), is refused with 401 malformed_key, as ext_authz
// refuses it, and never reaches the upstream; a tenant reaches it as
// ext_authz sends it (TestAPIKeyNativeTenantAsExtAuthz) unless it holds a
// control character (401); a role outside the role rule is dropped, as
// ext_authz drops it. No value makes a header of its own.
func TestAPIKeyNativeOddClaims(t *testing.T) { eachJWTEngine(t, testAPIKeyNativeOddClaims) }

func testAPIKeyNativeOddClaims(t *testing.T, engine jwtEngine) {
	k := startKeyNativeStackEngine(t, engine, exactMode)
	k.waitKeyTable(t, k.port)
	n := 0
	for _, field := range []string{"jti", "sub", "tier", "tnt", "roles"} {
		for _, v := range oddValues {
			n++
			raw := `"` + v.raw + `"`
			if field == "roles" {
				raw = `["user",` + raw + `]`
			}
			key := signRawKey(t, rawClaims(fmt.Sprintf("odd%05d", n), field, raw))
			var decoded string
			_ = json.Unmarshal([]byte(`"`+v.raw+`"`), &decoded)
			refused := oddRefused(field, decoded, v.badUTF8, len(key))
			for _, h := range []map[string]string{{"x-api-key": key}, {"Authorization": "ApiKey " + key}} {
				t.Run(fmt.Sprintf("%s %s in %s", field, v.name, slices.Collect(maps.Keys(h))[0]), func(t *testing.T) {
					code, echo, body := k.call(t, "/keys/1", h)
					if echo != nil && hdr(echo, "x-evil") != "" {
						t.Fatalf("a claim made a header: x-evil: %q", hdr(echo, "x-evil"))
					}
					if refused {
						if code != 401 || echo != nil || body != `{"error":"unauthorized","reason":"malformed_key"}` {
							t.Fatalf("key of %d bytes: status %d, body %.100s, want 401 malformed_key", len(key), code, body)
						}
						return
					}
					want := map[string]string{"x-user-id": "acme", "x-tenant-id": "t1", "x-consumer-tier": "pro", "x-user-roles": "user"}
					switch field {
					case "tnt":
						want["x-tenant-id"] = strings.Trim(decoded, " \t") // the upstream's HTTP/1 parser trims OWS
					case "sub":
						want["x-user-id"] = decoded
					case "roles":
						if contract.ValidRole(decoded) {
							want["x-user-roles"] = "user," + decoded
						}
					}
					if code != 200 || echo == nil {
						t.Fatalf("status %d, body %.100s, want 200", code, body)
					}
					for name, v := range want {
						if got := hdr(echo, name); got != v {
							t.Errorf("upstream %s = %.60q, want %.60q", name, got, v)
						}
					}
				})
			}
		}
	}
}

// oddRefused says whether the native key path must refuse a signed key
// of keyLen bytes whose field holds decoded (badUTF8: not UTF-8 in the
// token): what ext_authz refuses, or could never have signed.
func oddRefused(field, decoded string, badUTF8 bool, keyLen int) bool {
	switch {
	case badUTF8 || keyLen > contract.MaxSignedKeyLen:
		return true
	case field == "jti":
		return !regexp.MustCompile(`^[A-Za-z0-9]{8}$`).MatchString(decoded)
	case field == "sub":
		return !contract.ValidConsumer(decoded)
	case field == "tier":
		return !validTierName(decoded)
	case field == "tnt":
		return !contract.HeaderSafe(decoded)
	}
	return false // roles: dropped, not refused
}

// validTierName is the policy's name rule, which tier names follow.
func validTierName(s string) bool {
	return regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`).MatchString(s)
}

// TestAPIKeyNativeTenantAsExtAuthz: a tenant the admin API accepts
// (tab, bidi, C1, non-ASCII, long) reaches the upstream's tenant header
// and the access log the same from a signed key (decided in Envoy) and
// from an opaque key (decided by ext_authz); a tenant holding a control
// character is refused when the key is created, whatever its format.
func TestAPIKeyNativeTenantAsExtAuthz(t *testing.T) {
	t.Parallel() // waits on timers and asserts no latency (e2e/doc.go)
	eachJWTEngine(t, testAPIKeyNativeTenantAsExtAuthz)
}

func testAPIKeyNativeTenantAsExtAuthz(t *testing.T, engine jwtEngine) {
	k := startKeyNativeStackEngine(t, engine, exactMode)
	k.waitKeyTable(t, k.port)
	type seen struct{ rid, header string }
	tenants := []string{"a\tb", "\tab ", "a\u202eb", "a\u2066b", "a\u0085b", "Zürich", strings.Repeat("z", 500)}
	got := make([][2]seen, len(tenants))
	for i, tenant := range tenants {
		for j, format := range []string{"signed", "opaque"} {
			key := createFormatKey(t, k, fmt.Sprintf("t%d-%s", i, format), tenant, format)
			code, echo, body := k.call(t, "/keys/1", map[string]string{"x-api-key": key})
			if code != 200 || echo == nil {
				t.Fatalf("tenant %q, %s key: status %d, body %s", tenant, format, code, body)
			}
			got[i][j] = seen{hdr(echo, "x-request-id"), hdr(echo, "x-tenant-id")}
		}
	}
	for i, tenant := range tenants {
		var view [2]string
		for j := range 2 {
			line := waitAccessLine(t, k.proxy, got[i][j].rid)
			view[j] = fmt.Sprintf("header %q, log tenant %q tier %v method %v", got[i][j].header, line["tenant"], line["tier"], line["auth_method"])
		}
		t.Logf("tenant %.24q: %.120s", tenant, view[0])
		if view[0] != view[1] {
			t.Errorf("tenant %q: signed key (Envoy) %s; opaque key (ext_authz) %s", tenant, view[0], view[1])
		}
	}
	for _, format := range []string{"signed", "opaque"} {
		for _, tenant := range []string{"a\r\nx-evil: 1", "a\x7fb", "a\x1bb"} {
			_, stderr, code := k.run("keys", "create", "--consumer", "c", "--tenant", tenant, "--format", format, "-o", "json")
			if code == 0 || !strings.Contains(stderr, "tenant") {
				t.Errorf("%s key with tenant %q: exit %d, stderr %s", format, tenant, code, stderr)
			}
		}
	}
}

// createFormatKey creates a key of format through the CLI, of tier (or
// pro).
func createFormatKey(t *testing.T, k *keyStack, consumer, tenant, format string, tier ...string) string {
	t.Helper()
	var created struct{ Key string }
	out := k.cli(0, "keys", "create", "--consumer", consumer, "--tier", append(tier, "pro")[0], "--tenant", tenant, "--format", format, "-o", "json")
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Key == "" {
		t.Fatalf("keys create: %v: %s", err, out)
	}
	return created.Key
}

// waitAccessLine waits for e's access log line of request id rid.
func waitAccessLine(t *testing.T, e *harness.Envoy, rid string) map[string]any {
	t.Helper()
	var line map[string]any
	// Envoy flushes its access log on a timer; a loaded machine delays it.
	if err := harness.WaitFor(testCtx(t, 30*time.Second), func() (bool, error) {
		line = accessLine(e.Logs(), "request_id", rid)
		return line != nil, nil
	}); err != nil {
		t.Fatalf("no access log line with request_id %s: %v", rid, err)
	}
	return line
}
