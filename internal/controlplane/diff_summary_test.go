package controlplane

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/store"
)

// TestDiffSummarisesChanges: a changed resource names what changed — the
// routes of a route configuration, the top-level fields of others — so
// push and diff can print one line per resource.
func TestDiffSummarisesChanges(t *testing.T) {
	c := newTestController(t, t.TempDir(), &fakeApplier{})
	if _, err := c.Push(context.Background(), policyFiles(8080), "push", "test"); err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(policyFiles(8080)[0].Content, "  - {name: r, backend: b, auth: none}\n",
		"  - {name: r, backend: b, auth: none, timeout: 3s}\n  - {name: api-v2, backend: b, auth: none, match: {pathPrefix: /v2}}\n", 1)
	next = strings.Replace(next, "127.0.0.1:9001", "127.0.0.1:9002", 1)
	res, err := c.DryRun([]store.File{{Name: "p.yaml", Content: next}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, ch := range res.Changes {
		if ch.Action != "changed" || ch.Diff == "" {
			t.Errorf("change %+v: want a changed resource with its full diff", ch)
		}
		got[ch.Type] = ch.Fields
	}
	want := map[string][]string{"route": {"+api-v2", "~r"}, "endpoint": {"endpoints"}}
	for typ, fields := range want {
		if !slices.Equal(got[typ], fields) {
			t.Errorf("%s fields = %q, want %q (all changes: %+v)", typ, got[typ], fields, res.Changes)
		}
	}
}
