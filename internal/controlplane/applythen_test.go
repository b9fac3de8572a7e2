package controlplane

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/xds"
	"github.com/tollgate/tollgate/xds/translator"
)

// thenApplier is a fakeApplier that tells when it "sets the snapshot", as
// xds.Server's ApplyThen does, or fails before that when fail is set.
type thenApplier struct {
	fakeApplier
	fail  bool
	calls int // ApplyThen calls
}

func (f *thenApplier) ApplyThen(ctx context.Context, d map[string]*translator.Resources, set func()) ([]xds.GatewayResult, error) {
	f.calls++
	if f.fail {
		return nil, errors.New("no snapshot set")
	}
	set()
	return f.Apply(ctx, d)
}

// TestPushDescribesAroundApplyThen: a push describes its changes whether
// the xDS server calls set (the diff starts then) or fails before it (the
// diff starts when the push waits for it); neither hangs.
func TestPushDescribesAroundApplyThen(t *testing.T) {
	for _, fail := range []bool{false, true} {
		f := &thenApplier{fail: fail}
		st, err := store.OpenDir(t.TempDir(), 0)
		if err != nil {
			t.Fatal(err)
		}
		c := New(slog.New(slog.NewTextHandler(io.Discard, nil)), st, f, Options{})
		res, err := c.Push(context.Background(), policyFiles(8080), "push", "test")
		if f.calls != 1 {
			t.Fatalf("fail=%v: ApplyThen called %d times, want 1", fail, f.calls)
		}
		if fail {
			if err == nil || len(res.Changes) != 4 {
				t.Fatalf("failing apply: %+v, %v; want an error and the 4 changes described", res, err)
			}
			continue
		}
		if err != nil || !res.Applied || len(res.Changes) != 4 {
			t.Fatalf("push = %+v, %v; want applied with 4 added resources", res, err)
		}
	}
}
