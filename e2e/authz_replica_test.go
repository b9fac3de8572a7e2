package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/extauthz/contract"
)

// TestAuthzOnlyReplica runs a second authz replica with `serve --only
// authz` on the same store and Redis: it serves the control plane's policy,
// and a key revoked through the control plane is refused by the replica
// within a second, as is a key's update (keys update).
func TestAuthzOnlyReplica(t *testing.T) {
	a := startAuthStack(t)
	var created struct {
		Key    string
		Record struct{ ID string }
	}
	if err := json.Unmarshal([]byte(a.cli(0, "keys", "create", "--consumer", "replica", "--roles", "user", "-o", "json")), &created); err != nil {
		t.Fatal(err)
	}
	replicaAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	harness.StartProcessSpec(t, harness.ProcessSpec{Name: "tollgate-authz-replica", Bin: a.bin, Args: []string{
		"serve", "--only", "authz", "--data-dir", a.dataDir, "--authz-addr", replicaAddr,
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
		"--redis", "redis://" + a.redis + "/0", "--key-pepper", "e2e-pepper-0123456789"},
		Env: []string{"TEST_INTROSPECTION_SECRET=" + idpClientSecret}})
	conn, err := grpc.NewClient(replicaAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	check := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			ContextExtensions: map[string]string{contract.KeyRoute: "users", contract.KeyMethods: "apiKey", contract.KeyRoles: "user"},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Headers: map[string]string{"x-api-key": created.Key}}},
		}})
		if err != nil {
			return -1
		}
		if d := resp.GetDeniedResponse(); d != nil {
			return int(d.GetStatus().GetCode())
		}
		return 200
	}
	ctx := testCtx(t, 20*time.Second)
	if err := harness.WaitFor(ctx, func() (bool, error) { return check() == 200, nil }); err != nil {
		t.Fatalf("the replica never allowed a valid key (it must follow the store's policy): %v", err)
	}
	// keys update reaches the replica's cache like a revocation does.
	for _, step := range []struct {
		roles string
		want  int
	}{{"auditor", 403}, {"user", 200}} {
		a.cli(0, "keys", "update", created.Record.ID, "--roles", step.roles)
		start := time.Now()
		if err := harness.WaitFor(testCtx(t, 2*time.Second), func() (bool, error) { return check() == step.want, nil }); err != nil {
			t.Fatalf("roles %s: the replica still answers as before %s after keys update: %v", step.roles, time.Since(start), err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("roles %s: the update reached the replica after %s, want under 1 s", step.roles, d)
		}
	}
	a.cli(0, "keys", "revoke", created.Record.ID)
	start := time.Now()
	if err := harness.WaitFor(testCtx(t, 2*time.Second), func() (bool, error) { return check() == 401, nil }); err != nil {
		t.Fatalf("the replica still accepts a key revoked %s ago: %v", time.Since(start), err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("revocation reached the replica after %s, want under 1 s", d)
	}
}
