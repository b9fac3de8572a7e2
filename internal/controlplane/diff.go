package controlplane

import (
	"sort"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

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
	case equalShared(a.ProtoReflect(), b.ProtoReflect()):
		return Change{}, false
	}
	c := Change{Action: "changed", Fields: changedFields(a, b)}
	if tooManyLines(a, b) {
		// lineDiff would refuse; rendering a route configuration of
		// thousands of routes to know it costs more than the rest of a push.
		c.Diff = tooLarge
	} else {
		c.Diff = lineDiff(render(a), render(b))
	}
	return c, true
}

// tooManyLines reports, without rendering them, that lineDiff would find
// render(a) and render(b) too large to compare: a lower bound of their
// line counts already exceeds maxDiffCells. It counts no further than it
// must (about 2,000 fields of each for a large route configuration).
func tooManyLines(a, b types.Resource) bool {
	root := isqrt(maxDiffCells) + 1
	la, lb := minLines(a, root), minLines(b, root)
	switch {
	case la >= root && lb >= root:
		return true
	case la < root:
		return la*minLines(b, maxDiffCells/max(la, 1)+1) > maxDiffCells
	default:
		return lb*minLines(a, maxDiffCells/max(lb, 1)+1) > maxDiffCells
	}
}

func isqrt(n int) int {
	r := 0
	for (r+1)*(r+1) <= n {
		r++
	}
	return r
}

// minLines is a lower bound of the number of lines render(m) returns,
// counted without encoding: every populated field starts a line of its
// own, and so does every element of a list or map. It stops counting once
// it reaches limit.
func minLines(m types.Resource, limit int) int {
	n := 0
	countLines(m.ProtoReflect(), &n, limit)
	return n
}

func countLines(m protoreflect.Message, n *int, limit int) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		*n++
		switch {
		case fd.IsMap():
			*n += v.Map().Len()
		case fd.IsList():
			l := v.List()
			*n += l.Len()
			if expands(fd) {
				for i := 0; i < l.Len() && *n < limit; i++ {
					countLines(l.Get(i).Message(), n, limit)
				}
			}
		case expands(fd):
			countLines(v.Message(), n, limit)
		}
		return *n < limit
	})
}

// expands reports whether protojson prints a field's message values as an
// object of their fields. Well-known types (Any, Duration, Struct, the
// wrappers) print otherwise, so they are counted as one line.
func expands(fd protoreflect.FieldDescriptor) bool {
	md := fd.Message()
	return md != nil && md.ParentFile().Package() != "google.protobuf"
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
