package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/xds"
	"github.com/tollgate/tollgate/xds/translator"
)

// fakeApplier records what it is asked to serve; nack makes Apply fail the
// way the xDS server does when a proxy rejects a push.
type fakeApplier struct {
	applied []map[string]*translator.Resources
	nack    bool
}

func (f *fakeApplier) Apply(_ context.Context, d map[string]*translator.Resources) ([]xds.GatewayResult, error) {
	f.applied = append(f.applied, d)
	if f.nack {
		return nil, &xds.NackError{Node: "n1", Nack: xds.Nack{Type: "listener", Message: "cannot bind"}}
	}
	return nil, nil
}

func (f *fakeApplier) Status() []xds.NodeStatus { return nil }

func policyFiles(port int) []store.File {
	return []store.File{{Name: "p.yaml", Content: fmt.Sprintf(`version: 1
gateways:
  - name: public
    listeners: [{name: http, port: %d}]
routes:
  - {name: r, backend: b, auth: none}
backends:
  - {name: b, endpoints: ["127.0.0.1:9001"]}
`, port)}}
}

func newTestController(t testing.TB, dir string, f *fakeApplier) *Controller {
	t.Helper()
	st, err := store.OpenDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	return New(slog.New(slog.NewTextHandler(io.Discard, nil)), st, f, Options{})
}

func TestPushThenSamePushIsUnchanged(t *testing.T) {
	f := &fakeApplier{}
	c := newTestController(t, t.TempDir(), f)
	res, err := c.Push(context.Background(), policyFiles(8080), "push", "test")
	if err != nil || !res.Applied || len(res.Changes) != 4 {
		t.Fatalf("first push = %+v, %v; want applied with 4 added resources", res, err)
	}
	again, err := c.Push(context.Background(), policyFiles(8080), "push", "test")
	if err != nil || !again.Unchanged || len(f.applied) != 1 {
		t.Fatalf("second push = %+v, %v; applies %d; want unchanged and one apply", again, err, len(f.applied))
	}
}

func TestInvalidPushChangesNothing(t *testing.T) {
	f := &fakeApplier{}
	c := newTestController(t, t.TempDir(), f)
	_, err := c.Push(context.Background(), []store.File{{Name: "bad.yaml", Content: "version: 1\ngateways: []\n"}}, "push", "test")
	var rej *RejectedError
	if !errors.As(err, &rej) || len(rej.Diagnostics) == 0 {
		t.Fatalf("err = %v, want RejectedError with diagnostics", err)
	}
	if len(f.applied) != 0 || c.Current() != nil {
		t.Fatal("an invalid policy reached the applier or became current")
	}
	if h, _ := c.History(); len(h) != 0 {
		t.Fatalf("history = %+v, want empty", h)
	}
}

func TestNackedPushRestoresPreviousVersion(t *testing.T) {
	dir := t.TempDir()
	f := &fakeApplier{}
	c := newTestController(t, dir, f)
	first, err := c.Push(context.Background(), policyFiles(8080), "push", "test")
	if err != nil {
		t.Fatal(err)
	}
	f.nack = true
	_, err = c.Push(context.Background(), policyFiles(8081), "push", "test")
	var nack *xds.NackError
	if !errors.As(err, &nack) {
		t.Fatalf("err = %v, want NackError", err)
	}
	if c.Current().ID != first.Version {
		t.Fatalf("current = %s, want the previous %s", c.Current().ID, first.Version)
	}
	h, _ := c.History()
	if len(h) != 2 || h[1].Outcome != store.Rejected {
		t.Fatalf("history = %+v, want the NACKed push recorded as rejected", h)
	}
	// A restart restores the previous version, not the rejected one.
	f2 := &fakeApplier{}
	c2 := newTestController(t, dir, f2)
	if err := c2.Restore(context.Background(), nil, ""); err != nil {
		t.Fatal(err)
	}
	if c2.Current().ID != first.Version || len(f2.applied) != 1 {
		t.Fatalf("restored %v with %d applies, want %s once", c2.Current(), len(f2.applied), first.Version)
	}
}

func TestRestorePrefersStoreOverSeed(t *testing.T) {
	dir := t.TempDir()
	c := newTestController(t, dir, &fakeApplier{})
	pushed, err := c.Push(context.Background(), policyFiles(9090), "push", "test")
	if err != nil {
		t.Fatal(err)
	}
	c2 := newTestController(t, dir, &fakeApplier{})
	if err := c2.Restore(context.Background(), policyFiles(8080), "file:seed"); err != nil {
		t.Fatal(err)
	}
	if c2.Current().ID != pushed.Version {
		t.Fatalf("restored %s, want the pushed %s rather than the seed", c2.Current().ID, pushed.Version)
	}
}

func TestRollbackServesStoredVersion(t *testing.T) {
	c := newTestController(t, t.TempDir(), &fakeApplier{})
	v1, _ := c.Push(context.Background(), policyFiles(8080), "push", "test")
	if _, err := c.Push(context.Background(), policyFiles(8081), "push", "test"); err != nil {
		t.Fatal(err)
	}
	res, err := c.Rollback(context.Background(), v1.Version, "test")
	if err != nil || res.Version != v1.Version || c.Current().ID != v1.Version {
		t.Fatalf("rollback = %+v, %v", res, err)
	}
	if _, err := c.Rollback(context.Background(), "ffffffffffff", "test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rollback to unknown version: %v, want ErrNotFound", err)
	}
}

// TestUntranslatablePushChangesNothing: the version of a push is stored
// while its policy is translated; when the translation fails (here: a
// route needs ext_authz and the controller has no ext_authz address) the
// push fails before any history event, the store's current version and
// the served one stay the previous, and a restart serves the previous.
func TestUntranslatablePushChangesNothing(t *testing.T) {
	dir := t.TempDir()
	f := &fakeApplier{}
	c := newTestController(t, dir, f)
	first, err := c.Push(context.Background(), policyFiles(8080), "push", "test")
	if err != nil {
		t.Fatal(err)
	}
	files := policyFiles(8080)
	files[0].Content += "auth: {apiKeys: {}}\n"
	files[0].Content = strings.Replace(files[0].Content, "auth: none", "auth: {methods: [apiKey]}", 1)
	_, err = c.Push(context.Background(), files, "push", "test")
	if err == nil || !strings.Contains(err.Error(), "translate policy") {
		t.Fatalf("err = %v, want the translation's failure", err)
	}
	if len(f.applied) != 1 || c.Current().ID != first.Version {
		t.Fatalf("applies %d, current %s; want 1 and the previous %s", len(f.applied), c.Current().ID, first.Version)
	}
	if h, _ := c.History(); len(h) != 1 || h[0].Version != first.Version {
		t.Fatalf("history = %+v, want only the first push", h)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v (the staged history and pointer)", tmp)
	}
	f2 := &fakeApplier{}
	c2 := newTestController(t, dir, f2)
	if err := c2.Restore(context.Background(), nil, ""); err != nil {
		t.Fatal(err)
	}
	if c2.Current().ID != first.Version {
		t.Fatalf("restored %s, want %s", c2.Current().ID, first.Version)
	}
}
