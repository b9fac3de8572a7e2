package deploy_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/extauthz/jwt"
	"github.com/tollgate/tollgate/policy"
)

var updateDemoJWT = flag.Bool("update-demo-jwt", false, "mint a new demo key and token: rewrite the compose policy's JWKS and deploy/compose/demo.jwt")

const (
	composePolicy = "deploy/compose/policy.yaml"
	demoJWTFile   = "deploy/compose/demo.jwt"
	demoIssuer    = "https://issuer.demo.tollgate.invalid/"
	demoLifetime  = 10 * 365 * 24 * time.Hour
)

// TestDemoJWT checks that the committed demo token verifies against the
// compose policy's demo issuer with the real verifier, names the demo user
// with role "user", and is not about to expire.
func TestDemoJWT(t *testing.T) {
	if *updateDemoJWT {
		mintDemoJWT(t)
	}
	cfg, diags := policy.Build([]policy.File{{Name: composePolicy, Content: readFile(t, composePolicy)}})
	if diags.HasErrors() {
		t.Fatalf("compose policy: %v", diags.Err())
	}
	v, err := jwt.NewVerifier(cfg.Auth.JWT, jwt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	token := strings.TrimSpace(string(readFile(t, demoJWTFile)))
	id, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("the demo token does not verify against %s: %v", composePolicy, err)
	}
	if id.UserID != "demo-user" || len(id.Roles) != 1 || id.Roles[0] != "user" || id.Tier != "free" {
		t.Errorf("identity %+v, want user demo-user with role user and tier free", id)
	}
	if left := time.Until(id.Expiry); left < 90*24*time.Hour {
		t.Errorf("the demo token expires in %s: run go test ./deploy -run TestDemoJWT -update-demo-jwt", left.Round(time.Hour))
	}
}

// mintDemoJWT makes a new Ed25519 key, writes its public JWK set into the
// compose policy and a ten-year token into demo.jwt. The private key is
// not kept.
func mintDemoJWT(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding
	kid := "demo-" + time.Now().UTC().Format("20060102")
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(pub), "kid": kid, "alg": "EdDSA", "use": "sig"}}})
	path := filepath.Join(repoRoot, composePolicy)
	src := string(readFile(t, composePolicy))
	re := regexp.MustCompile(`(?m)^(\s+jwks: )'.*'$`)
	if !re.MatchString(src) {
		t.Fatalf("%s has no `jwks: '...'` line to rewrite", composePolicy)
	}
	src = re.ReplaceAllLiteralString(src, "      jwks: '"+string(jwks)+"'")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	header, _ := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "JWT", "kid": kid})
	claims, _ := json.Marshal(map[string]any{"iss": demoIssuer, "aud": "tollgate-demo", "sub": "demo-user",
		"roles": []string{"user"}, "plan": "free", "iat": now, "exp": now + int64(demoLifetime/time.Second)})
	in := b64.EncodeToString(header) + "." + b64.EncodeToString(claims)
	token := in + "." + b64.EncodeToString(ed25519.Sign(priv, []byte(in)))
	if err := os.WriteFile(filepath.Join(repoRoot, demoJWTFile), []byte(token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Println("minted a new demo key", kid)
}
