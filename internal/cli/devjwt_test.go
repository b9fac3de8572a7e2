package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/admin"
)

// TestDevTokenVerifiesWithTheServedKeySet checks the dev issuer's token
// against its own JWKS, and its claims against devpolicy.yaml's provider.
func TestDevTokenVerifiesWithTheServedKeySet(t *testing.T) {
	d, err := newDevIssuerKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	tok, err := d.token("dev-user", []string{"user"}, now)
	if err != nil {
		t.Fatal(err)
	}
	set, err := d.jwks()
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []struct{ Kid, X, Y string } `json:"keys"`
	}
	if err := json.Unmarshal(set, &jwks); err != nil || len(jwks.Keys) != 1 || jwks.Keys[0].Kid != devKeyID {
		t.Fatalf("jwks = %s, %v", set, err)
	}
	parts := strings.Split(tok, ".")
	pub := &ecdsa.PublicKey{Curve: d.key.Curve, X: bigB64(t, jwks.Keys[0].X), Y: bigB64(t, jwks.Keys[0].Y)}
	sig := decodeB64(t, parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("the token does not verify with the served key set")
	}
	var claims map[string]any
	if err := json.Unmarshal(decodeB64(t, parts[1]), &claims); err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != devIssuer || claims["aud"] != devAudience || claims["exp"].(float64)-claims["iat"].(float64) != devTokenMaxAge.Seconds() {
		t.Errorf("claims = %v", claims)
	}
	for _, want := range []string{"issuer: " + devIssuer, "audiences: [" + devAudience + "]", devIssuer + devJWKSPath, "maxLifetime: 24h"} {
		if !bytes.Contains(devPolicy, []byte(want)) {
			t.Errorf("devpolicy.yaml does not say %q: the token would not verify", want)
		}
	}
}

func bigB64(t *testing.T, s string) *big.Int { return new(big.Int).SetBytes(decodeB64(t, s)) }

func decodeB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCreatedKeyIsTheFirstLineAndSaysSo(t *testing.T) {
	var out bytes.Buffer
	printCreatedKey(&out, &admin.CreateKeyResponse{Key: "tg_abc", Record: apikey.Record{ID: "abc", Consumer: "alice", Tier: "pro"}})
	lines := strings.Split(out.String(), "\n")
	if lines[0] != "tg_abc" || !strings.Contains(lines[1], "the line above is the API key") {
		t.Errorf("keys create output:\n%s", out.String())
	}
}
