package e2e

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/extauthz/apikey"
)

// TestAuthSignedAPIKeys: a signed key made by `tollgate keys create` (the
// default format) authenticates through the real Envoy on the ext_authz
// path, with its record's identity; a key whose claims were altered is
// refused; update and revocation take effect within a second; a signed
// key's expiry cannot be extended.
func TestAuthSignedAPIKeys(t *testing.T) {
	a := startAuthStack(t)
	var created struct {
		Key    string        `json:"key"`
		Record apikey.Record `json:"record"`
	}
	out := a.cli(0, "keys", "create", "--consumer", "acme", "--tier", "pro", "--tenant", "t1", "--roles", "user,admin",
		"--expires", "720h", "-o", "json")
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Key, apikey.SignedKeyPrefix) ||
		created.Record.Format != apikey.FormatSigned {
		t.Fatalf("keys create (default format): %v\n%s", err, out)
	}
	t.Logf("signed key: %d characters", len(created.Key))
	key := map[string]string{"x-api-key": created.Key}
	t.Run("valid key", func(t *testing.T) {
		code, echo, body := a.call(t, "/users/1", map[string]string{"x-api-key": created.Key, "x-consumer-tier": "enterprise"})
		if code != 200 || hdr(echo, "x-user-id") != "acme" || hdr(echo, "x-consumer-tier") != "pro" ||
			hdr(echo, "x-tenant-id") != "t1" || hdr(echo, "x-user-roles") != "user,admin" {
			t.Fatalf("status %d, body %s", code, body)
		}
		if hdr(echo, "x-api-key") != "" {
			t.Error("the API key was forwarded to the upstream")
		}
		if code, _, body := a.call(t, "/admin/1", map[string]string{"Authorization": "ApiKey " + created.Key}); code != 200 {
			t.Fatalf("Authorization: ApiKey form: status %d, body %s", code, body)
		}
	})
	t.Run("altered claims are refused", func(t *testing.T) {
		parts := strings.Split(strings.TrimPrefix(created.Key, apikey.SignedKeyPrefix), ".")
		claims, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		forged := strings.Replace(string(claims), `"sub":"acme"`, `"sub":"root"`, 1)
		forgedKey := apikey.SignedKeyPrefix + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
		if code, _, body := a.call(t, "/users/1", map[string]string{"x-api-key": forgedKey}); code != 401 {
			t.Fatalf("a key with altered claims: status %d, body %s", code, body)
		}
		if code, _, body := a.call(t, "/users/1", map[string]string{"x-api-key": apikey.SignedKeyPrefix + "e30.e30.x"}); code != 401 ||
			!strings.Contains(body, "malformed_key") {
			t.Fatalf("a garbled signed key: status %d, body %s", code, body)
		}
	})
	t.Run("update within a second; expiry only shortened", func(t *testing.T) {
		_, stderr, code := a.run("keys", "update", created.Record.ID, "--expires", "2000h")
		if code == 0 || !strings.Contains(stderr, "can only be shortened; create a new key") {
			t.Fatalf("extending a signed key: exit %d, stderr %q; want a refusal", code, stderr)
		}
		a.cli(0, "keys", "update", created.Record.ID, "--tier", "free", "--expires", "24h")
		if err := harness.WaitFor(testCtx(t, time.Second), func() (bool, error) {
			code, echo, _ := a.call(t, "/users/1", key)
			return code == 200 && hdr(echo, "x-consumer-tier") == "free", nil
		}); err != nil {
			t.Fatalf("the new tier was not applied within 1s: %v", err)
		}
	})
	t.Run("revoked within a second", func(t *testing.T) {
		a.cli(0, "keys", "revoke", created.Record.ID)
		if err := harness.WaitFor(testCtx(t, time.Second), func() (bool, error) {
			code, _, _ := a.call(t, "/users/1", key)
			return code == 401, nil
		}); err != nil {
			t.Fatalf("revoked key still accepted after 1s: %v", err)
		}
	})
}
