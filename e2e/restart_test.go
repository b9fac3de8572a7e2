package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

func TestControlPlaneRestartKeepsServing(t *testing.T) {
	us := upstreams(t, "one", "two")
	port := harness.FreePort(t)
	s := startStack(t, pushPolicy(port, us["one"].Addr(), us["two"].Addr(), ""))
	e := s.envoy("public", "restart-0", "delta")
	// Push a second version so the store's current differs from --policy:
	// a restart must serve the pushed version, not the seed file.
	s.cli(0, "push", writeFile(t, "v2.yaml", pushPolicy(port, us["one"].Addr(), us["two"].Addr(),
		"  - {name: new, match: {pathPrefix: /new}, backend: two, auth: none}")))
	before := s.waitSynced("restart-0")
	ctx := testCtx(t, 60*time.Second)
	listenersBefore := listenerVersions(t, e)

	stop, failures := loadLoop(t, port, "/new")
	_ = s.cp.Kill() // reports "signal: killed": the point
	if !s.cp.Exited() {
		t.Fatal("control plane still running after SIGKILL")
	}
	if err := harness.WaitFor(ctx, func() (bool, error) {
		n, _, err := e.Stat(ctx, "control_plane.connected_state")
		return err == nil && n == 0, nil
	}); err != nil {
		t.Fatalf("envoy never noticed the control plane was gone: %v", err)
	}
	if code, up := get(ctx, harness.NewHTTPClient(false), port, "/new"); code != 200 || up != "two" {
		t.Fatalf("with the control plane down: %d from %q", code, up)
	}
	// Restart with the original seed file: the store wins.
	s.startServe(pushPolicy(port, us["one"].Addr(), us["two"].Addr(), ""))
	after := s.waitSynced("restart-0")
	if after.Version != before.Version {
		t.Fatalf("restarted control plane serves %s, want the last pushed %s", after.Version, before.Version)
	}
	if err := harness.WaitFor(ctx, func() (bool, error) {
		n, _, err := e.Stat(ctx, "control_plane.connected_state")
		return err == nil && n == 1, nil
	}); err != nil {
		t.Fatalf("envoy did not reconnect: %v", err)
	}
	ok, failed := stop()
	if failed > 0 || ok == 0 {
		t.Fatalf("requests during the restart: %d ok, %d failed: %v", ok, failed, failures())
	}
	if got := listenerVersions(t, e); got != listenersBefore {
		t.Errorf("listener versions changed across the restart: %s -> %s", listenersBefore, got)
	}
	if n, _, _ := e.Stat(ctx, "listener_manager.lds.update_rejected"); n != 0 {
		t.Errorf("envoy rejected %d listener updates", n)
	}
	if !strings.Contains(s.cp.Logs(), "serving stored policy") {
		t.Error("the restarted control plane did not restore the stored policy")
	}
}

// listenerVersions returns the version_info of Envoy's dynamic listeners.
func listenerVersions(t *testing.T, e *harness.Envoy) string {
	t.Helper()
	b, err := e.ConfigDump(testCtx(t, 10*time.Second), "dynamic_listeners")
	if err != nil {
		t.Fatal(err)
	}
	var dump struct {
		Configs []struct {
			Name   string `json:"name"`
			Active struct {
				VersionInfo string `json:"version_info"`
			} `json:"active_state"`
		} `json:"configs"`
	}
	if err := json.Unmarshal(b, &dump); err != nil {
		t.Fatalf("decode config dump: %v", err)
	}
	var out []string
	for _, c := range dump.Configs {
		out = append(out, fmt.Sprintf("%s@%s", c.Name, c.Active.VersionInfo))
	}
	return strings.Join(out, ",")
}
