package store

import (
	"testing"
	"time"
)

func TestEndpointOverridesRoundTrip(t *testing.T) {
	d, err := OpenDir(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.EndpointOverrides()
	if err != nil || len(got) != 0 {
		t.Fatalf("empty store: %v, %v", got, err)
	}
	want := map[string]EndpointOverride{"users": {Backend: "users", Endpoints: []string{"10.0.0.1:80"}, PolicyEndpoints: "x", SetAt: time.Unix(1, 0).UTC()}}
	if err := d.SetEndpointOverrides(want); err != nil {
		t.Fatal(err)
	}
	// A second Dir on the same path sees it: it survives a restart.
	d2, err := OpenDir(d.path, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err = d2.EndpointOverrides()
	if err != nil || len(got) != 1 || got["users"].Endpoints[0] != "10.0.0.1:80" || got["users"].PolicyEndpoints != "x" {
		t.Fatalf("got %+v, %v", got, err)
	}
}
