package apikey

import (
	"slices"
	"testing"
)

// TestSortExceptionTable: the table is sorted by ID, the last of
// duplicates kept, IDs with a control character dropped; a sorted table
// is kept as it is.
func TestSortExceptionTable(t *testing.T) {
	xs := []Exception{{ID: "k3"}, {ID: "k1", Tier: "old"}, {ID: "bad\tid"}, {ID: "k2"}, {ID: "k1", Tier: "new"},
		{ID: "k0\x7f"}}
	got := sortExceptionTable(xs)
	ids := make([]string, 0, len(got))
	for _, x := range got {
		ids = append(ids, x.ID+"/"+x.Tier)
	}
	if want := []string{"k1/new", "k2/", "k3/"}; !slices.Equal(ids, want) {
		t.Fatalf("%v, want %v", ids, want)
	}
	sorted := []Exception{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	if got := sortExceptionTable(sorted); &got[0] != &sorted[0] || len(got) != 3 {
		t.Fatal("a sorted table was copied")
	}
	o, err := NewOffline(OfflineConfig{PublicKey: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", Fresh: true, Epoch: "e",
		Exceptions: []Exception{{ID: "k2", Revoked: true}, {ID: "k1"}, {ID: "k2", Tier: "pro"}}})
	if err != nil {
		t.Fatal(err)
	}
	if x, ok := o.exception("k2"); !ok || x.Revoked || x.Tier != "pro" {
		t.Fatalf("k2: %+v %v, want the later duplicate (tier pro)", x, ok)
	}
	if _, ok := o.exception("k3"); ok {
		t.Fatal("k3 found")
	}
}
