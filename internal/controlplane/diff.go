package controlplane

import (
	"sort"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/xds/translator"
)

// Change is one Envoy resource a push adds, removes or modifies.
type Change struct {
	Gateway string `json:"gateway"`
	Type    string `json:"type"` // listener, route, cluster, endpoint, secret
	Name    string `json:"name"`
	Action  string `json:"action"` // added, removed, changed
	// Fields summarises a changed resource: its top-level fields that
	// differ, or for a route configuration its routes ("+new", "-old",
	// "~changed"); see changedFields.
	Fields []string `json:"fields,omitempty"`
	// Diff is a line diff of the resource's JSON for changed resources.
	Diff string `json:"diff,omitempty"`
}

var typeNames = []struct {
	url  resource.Type
	name string
}{
	{resource.ListenerType, "listener"},
	{resource.RouteType, "route"},
	{resource.ClusterType, "cluster"},
	{resource.EndpointType, "endpoint"},
	{resource.SecretType, "secret"}, // listed, never rendered: see diffResource
}

// diffServed compares what is served with what cp would serve.
func diffServed(prev *served, cp *compiled) []Change {
	var old map[string]*translator.Resources
	if prev != nil {
		old = prev.resources
	}
	gateways := map[string]bool{}
	for g := range old {
		gateways[g] = true
	}
	for g := range cp.resources {
		gateways[g] = true
	}
	changes := []Change{}
	for _, g := range sortedNames(gateways) {
		changes = append(changes, diffGateway(g, old[g], cp.resources[g])...)
	}
	return changes
}

// diffGateway compares one gateway's resources, type by type.
func diffGateway(g string, a, b *translator.Resources) []Change {
	var out []Change
	for _, tn := range typeNames {
		before, after := byName(a, tn.url), byName(b, tn.url)
		names := map[string]bool{}
		for n := range before {
			names[n] = true
		}
		for n := range after {
			names[n] = true
		}
		for _, n := range sortedNames(names) {
			if c, ok := diffResource(before[n], after[n]); ok {
				if tn.url == resource.SecretType {
					c.Diff = "" // key material is never shown
				}
				c.Gateway, c.Type, c.Name = g, tn.name, n
				out = append(out, c)
			}
		}
	}
	return out
}

func diffResource(a, b types.Resource) (Change, bool) {
	switch {
	case a == nil:
		return Change{Action: "added"}, true
	case b == nil:
		return Change{Action: "removed"}, true
	case proto.Equal(a, b):
		return Change{}, false
	}
	return Change{Action: "changed", Fields: changedFields(a, b), Diff: lineDiff(render(a), render(b))}, true
}

func byName(r *translator.Resources, t resource.Type) map[string]types.Resource {
	out := map[string]types.Resource{}
	if r == nil {
		return out
	}
	for _, res := range r.ByType()[t] {
		out[cache.GetResourceName(res)] = res
	}
	return out
}

func render(m types.Resource) []string {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return []string{"<" + err.Error() + ">"}
	}
	return strings.Split(string(b), "\n")
}

func sortedNames(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
