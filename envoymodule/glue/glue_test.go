package glue

import (
	"encoding/binary"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/tollgate/tollgate/extauthz"
	"github.com/tollgate/tollgate/policy/ir"
)

func TestRouteOf(t *testing.T) {
	tests := []struct {
		name string
		ext  map[string]string
		want Route
	}{
		{"jwt route", map[string]string{"route": "r", "methods": "jwt", "roles": "a,b", "scopes": "s"},
			Route{Name: "r", Cacheable: true, Roles: []string{"a", "b"}, Scopes: []string{"s"}}},
		{"jwt among methods, forwarded", map[string]string{"route": "r", "methods": "apiKey,jwt", "forward_credentials": "true"},
			Route{Name: "r", Cacheable: true, KeyCacheable: true, Forward: true}},
		{"api keys only", map[string]string{"route": "r", "methods": "apiKey"}, Route{Name: "r", KeyCacheable: true}},
		{"oauth2 only", map[string]string{"route": "r", "methods": "oauth2"}, Route{Name: "r"}},
		{"keys, limits in the check", map[string]string{"route": "r", "methods": "apiKey", "rate_limit": "exact"}, Route{Name: "r"}},
		{"limits in the check", map[string]string{"route": "r", "methods": "jwt", "rate_limit": "exact"}, Route{Name: "r"}},
		{"no route name", map[string]string{"methods": "jwt"}, Route{}},
		{"nothing", nil, Route{}},
	}
	for _, tt := range tests {
		if got := RouteOf(tt.ext); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestIdentityOf(t *testing.T) {
	ih := ir.IdentityHeaders{UserID: "x-user-id", Roles: "x-user-roles", Tenant: "x-tenant-id", Tier: "x-consumer-tier"}
	d := extauthz.Decision{
		Set:      []extauthz.Header{{Name: "x-user-id", Value: "corp:a"}, {Name: "x-user-roles", Value: "user"}},
		Remove:   []string{"x-tenant-id", "x-consumer-tier", "authorization", "x-api-key", "x-tollgate-client-ip"},
		Metadata: []extauthz.Header{{Name: "consumer", Value: "corp:a"}, {Name: "route", Value: "r"}, {Name: "tier", Value: ""}},
	}
	got := IdentityOf(d, ih)
	want := Identity{
		Ops: []Op{{Name: "x-user-id", Value: "corp:a"}, {Name: "x-user-roles", Value: "user"},
			{Name: "x-tenant-id", Remove: true}, {Name: "x-consumer-tier", Remove: true}},
		Metadata: []extauthz.Header{{Name: "consumer", Value: "corp:a"}, {Name: "tier", Value: ""}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v\nwant %+v", got, want)
	}
}

func TestWithMarker(t *testing.T) {
	md := []extauthz.Header{{Name: "consumer", Value: "acme"}, {Name: "method", Value: "apiKey"}}
	got := WithMarker(md[:2:2])
	want := append(slices.Clone(md), extauthz.Header{Name: "native", Value: "apiKey"})
	if !reflect.DeepEqual(got, want) || len(md) != 2 {
		t.Fatalf("%v, want %v", got, want)
	}
	if got := WithMarker(md[:1]); !reflect.DeepEqual(got, md[:1]) {
		t.Fatalf("without a method: %v", got)
	}
}

func TestBlob(t *testing.T) {
	b := Blob(nil).AddOps([]Op{{Name: "a", Value: "1"}, {Name: "b", Remove: true}}).Add("")
	want := []byte{1, 0, 0, 0, 'a', 1, 0, 0, 0, '1', 1, 0, 0, 0, 'b', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}
	if !reflect.DeepEqual([]byte(b), want) {
		t.Fatalf("% x\nwant % x", []byte(b), want)
	}
	if binary.LittleEndian.Uint32(b[15:]) != nullItem {
		t.Fatal("null item")
	}
}

func TestHeaders(t *testing.T) {
	got := Headers([]HeaderValue{{"authorization", "Bearer a"}, {"authorization", "Bearer b"}, {"x-api-key", "k"}})
	want := map[string]string{"authorization": "Bearer a,Bearer b", "x-api-key": "k"}
	if !maps.Equal(got, want) {
		t.Fatalf("%v", got)
	}
}
