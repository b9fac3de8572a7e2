package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// TestJWTModuleOtherContractKeepsServing: version skew between the control
// plane and the module an Envoy has loaded fails safe. An Envoy serves the
// native JWT policy with the module, both of another Tollgate version
// (harness.BuildOtherContract: the tree with envoymod.ContractRevision
// raised); the control plane is then upgraded (restarted as the tree's
// build, same flags and store) while that Envoy keeps its module, as in a
// rolling upgrade. The module refuses the new configuration, logging one
// line with both contracts and the fix; Envoy NACKs the listener (tollgate
// status shows it, the Envoy out of sync) and keeps the one it had: a
// caller is admitted as before, also after a push that would refuse him
// (/users for role admin), which that Envoy never acknowledges (its
// listener, unchanged by the push, is not sent again: the push ends at
// --ack-timeout naming it). Once an Envoy with the module of the control
// plane's version replaces it, the pushed policy applies (403).
func TestJWTModuleOtherContractKeepsServing(t *testing.T) {
	t.Parallel() // waits on a push's ack timeout and on rollouts; asserts no latency
	n := startNativeEnv(t)
	port := harness.FreePort(t)
	policy := n.policy(t, contractPolicy, port)
	const node = "jwt-module-contract"
	k := startSkew(t, n, policy, node)
	a := n.authStack(k.s, port)
	user := bearer(n.idp.rs256("k1", n.idp.claims("alice", "user")))
	admitted := func(when string) {
		t.Helper()
		if code, _, body := a.call(t, "/users/1", user); code != 200 {
			t.Fatalf("%s: /users/1 %d %s, want 200", when, code, body)
		}
	}
	admitted("module and control plane of one version")
	k.upgradeControlPlane(t)
	admitted("after the NACK")
	s := k.s
	stricter := strings.Replace(policy, "auth: {methods: [jwt], roles: [user]}", "auth: {methods: [jwt], roles: [admin]}", 1)
	stdout, stderr, code := s.run("push", writeFile(t, "stricter.yaml", stricter))
	if code != 0 || !strings.Contains(stdout, "not acknowledged yet: "+node) {
		t.Fatalf("push: exit %d, want the Envoy named not acknowledging it\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if st := s.cli(0, "status"); !strings.Contains(st, "0 in sync") || !strings.Contains(st, "NACK from "+node) {
		t.Errorf("status after the push does not show the Envoy out of sync with its NACK:\n%s", st)
	}
	for range 3 {
		admitted("after the push")
	}
	k.finishRollout(t)
	s.waitSynced(node)
	if code, _, body := a.call(t, "/users/1", user); code != 403 {
		t.Fatalf("after the rollout: /users/1 %d %s, want 403 (the pushed policy: role admin)", code, body)
	}
}

// TestKeyModuleOtherContract: as TestJWTModuleOtherContractKeepsServing,
// with the module deciding signed API keys (its filter configuration
// served over ECDS). After the control plane's upgrade the Envoy keeps its
// listener, but the ECDS resource its module filter names is no longer
// served (the new control plane names it after its own configuration),
// so Envoy puts the filter's default configuration back: JWTs are still
// decided, signed keys are refused 503 key_store_unavailable (fail
// closed: a revocation could no longer reach that Envoy) until the module
// and the control plane match: an Envoy restarted with the module of the
// control plane's version admits the key again.
func TestKeyModuleOtherContract(t *testing.T) {
	t.Parallel() // waits on a push's ack timeout and on rollouts; asserts no latency
	n := startNativeEnv(t)
	port := harness.FreePort(t)
	k := startSkew(t, n, n.policy(t, contractKeyPolicy, port), "key-module-contract")
	a := n.authStack(k.s, port)
	key, _ := createKey(t, k.s, "kept", "pro")
	jwt := bearer(n.idp.rs256("k1", n.idp.claims("alice", "user")))
	waitMixed(t, a, map[string]string{"x-api-key": key}, 200, "")
	k.upgradeControlPlane(t)
	waitMixed(t, a, map[string]string{"x-api-key": key}, 503, `{"error":"unavailable","reason":"key_store_unavailable"}`)
	for range 3 {
		if code, _, body := a.call(t, "/m/1", jwt); code != 200 {
			t.Fatalf("a JWT after the upgrade: %d %s, want 200", code, body)
		}
	}
	k.finishRollout(t)
	waitMixed(t, a, map[string]string{"x-api-key": key}, 200, "")
	if code, _, body := a.call(t, "/m/1", jwt); code != 200 {
		t.Fatalf("a JWT after the rollout: %d %s, want 200", code, body)
	}
}

// skew is a control plane and an Envoy with the module, both of another
// Tollgate version (harness.BuildOtherContract).
type skew struct {
	s      *stack
	e      *harness.Envoy
	node   string
	module string // the library's path on the Envoy host (a copy: finishRollout replaces it)
}

// startSkew starts the OtherContract control plane serving policy with the
// module, and an Envoy (node) of its gateway public.
func startSkew(t *testing.T, n nativeEnv, policy, node string) skew {
	t.Helper()
	old := harness.BuildOtherContract(t)
	module := filepath.Join(t.TempDir(), "libtollgate_envoy.so")
	installModule(t, old.Module, module)
	s := startStackWith(t, policy, stackOptions{bin: old.Tollgate,
		args: []string{"--redis", "redis://" + n.redis.addr + "/0", "--key-pepper", keyPepper, "--envoy-module", module}})
	return skew{s: s, e: s.envoy("public", node, "delta"), node: node, module: module}
}

// finishRollout ends the skew: the Envoy stops, the tree's module replaces
// the library at the control plane's --envoy-module path, and a new Envoy
// (same node) starts with it.
func (k *skew) finishRollout(t *testing.T) {
	t.Helper()
	if err := k.e.Stop(); err != nil {
		t.Logf("envoy exited with %v", err)
	}
	installModule(t, harness.BuildEnvoyModule(t), k.module)
	k.e = k.s.envoy("public", k.node, "delta")
}

// installModule copies the library src to dst (written aside, then
// renamed over it: an Envoy that has dst loaded keeps its copy).
func installModule(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".next"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// upgradeControlPlane restarts the control plane as the tree's build (same
// flags and store; the Envoy keeps its module) and waits for the NACK and
// the module's log line naming both contracts and the fix.
func (k skew) upgradeControlPlane(t *testing.T) {
	t.Helper()
	s, e, node := k.s, k.e, k.node
	if err := e.WaitLog(testCtx(t, 10*time.Second), `msg="filter config created"`); err != nil {
		t.Fatalf("the module serves no configuration: %v\n%s", err, e.LogTail(40))
	}
	s.opts.bin = harness.BuildTollgate(t)
	s.bin = s.opts.bin
	s.restart()
	var msg string
	if err := harness.WaitFor(testCtx(t, 20*time.Second), func() (bool, error) {
		msg = nackMessage(s.status(), node)
		return msg != "", nil
	}); err != nil {
		t.Fatalf("no NACK from an Envoy whose module is of another contract: %v", err)
	}
	if !strings.Contains(msg, "Failed to initialize dynamic module") {
		t.Errorf("NACK %q, want Envoy's module initialization failure", msg)
	}
	if err := e.WaitLog(testCtx(t, 10*time.Second), `msg="filter config refused"`); err != nil {
		t.Fatalf("no refusal in Envoy's log: %v\n%s", err, e.LogTail(40))
	}
	line := refusalLine(e.Logs())
	rev := envoymod.ContractRevision
	for _, want := range []string{fmt.Sprintf("configuration contract r%d-", rev),
		fmt.Sprintf("this module's is r%d-", rev+1000), "same Tollgate version"} {
		if !strings.Contains(line, want) {
			t.Errorf("module's log line %q does not name %q", line, want)
		}
	}
	t.Log(line)
}

// contractPolicy is one JWT route limited in the module (1,000 a minute:
// the upgraded control plane is a restarted quota server, whose first
// assignments must not cut the caller, TestQuotaModuleReconnectKeepsTheShare).
const contractPolicy = `version: 1
auth:
{{.JWT}}
rateLimits:
  tiers:
    pro: [{requests: 1000, per: minute}]
  defaultTier: pro
gateways:
  - name: public
    listeners: [{name: http, port: {{.Port}}, address: 127.0.0.1}]
routes:
  - {name: users, match: {pathPrefix: /users}, backend: echo, auth: {methods: [jwt], roles: [user]}}
backends:
  - {name: echo, endpoints: [{{.Upstream}}]}
`

// contractKeyPolicy is one route for a signed API key or a JWT, limited in
// the module as contractPolicy.
const contractKeyPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
{{.JWT}}
rateLimits:
  tiers:
    pro: [{requests: 1000, per: minute}]
  defaultTier: pro
gateways:
  - name: public
    listeners: [{name: http, port: {{.Port}}, address: 127.0.0.1}]
routes:
  - {name: mixed, match: {pathPrefix: /m/}, backend: echo, auth: {methods: [apiKey, jwt]}}
backends:
  - {name: echo, endpoints: [{{.Upstream}}]}
`

// refusalLine is the module's last "filter config refused" line in log.
func refusalLine(log string) string {
	var last string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `msg="filter config refused"`) {
			last = l
		}
	}
	return last
}
