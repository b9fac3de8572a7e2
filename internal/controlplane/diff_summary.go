package controlplane

import (
	"bytes"
	"encoding/json"
	"sort"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/encoding/protojson"
)

// changedFields summarises how a changed resource differs: the names of
// its top-level fields that differ (protojson names, e.g. "loadAssignment",
// "connectTimeout"). For a route configuration, the routes themselves are
// listed instead of "virtualHosts": "+api-v2" (added), "-old" (removed),
// "~users" (changed), so a push reads as the policy's routes.
func changedFields(a, b types.Resource) []string {
	before, after := topLevel(a), topLevel(b)
	var out []string
	for _, k := range unionKeys(before, after) {
		if bytes.Equal(before[k], after[k]) {
			continue
		}
		if k == "virtualHosts" {
			if routes := routeChanges(before[k], after[k]); len(routes) > 0 {
				out = append(out, routes...)
				continue
			}
		}
		out = append(out, k)
	}
	return out
}

// topLevel returns m's fields as compact JSON, by name.
func topLevel(m types.Resource) map[string]json.RawMessage {
	b, err := protojson.Marshal(m)
	out := map[string]json.RawMessage{}
	if err != nil || json.Unmarshal(b, &out) != nil {
		return map[string]json.RawMessage{}
	}
	for k, v := range out {
		var buf bytes.Buffer
		if json.Compact(&buf, v) == nil {
			out[k] = buf.Bytes()
		}
	}
	return out
}

// routeChanges compares the named routes of two virtualHosts lists; it
// returns nil when only something else about the virtual hosts changed.
func routeChanges(a, b json.RawMessage) []string {
	before, after := namedRoutes(a), namedRoutes(b)
	var out []string
	for _, n := range unionKeys(before, after) {
		x, inA := before[n]
		y, inB := after[n]
		switch {
		case !inA:
			out = append(out, "+"+n)
		case !inB:
			out = append(out, "-"+n)
		case !bytes.Equal(x, y):
			out = append(out, "~"+n)
		}
	}
	return out
}

// namedRoutes returns the routes of every virtual host by name (a route
// name appears once per virtual host; the last one wins otherwise).
func namedRoutes(vhs json.RawMessage) map[string]json.RawMessage {
	var hosts []struct {
		Routes []json.RawMessage `json:"routes"`
	}
	out := map[string]json.RawMessage{}
	if json.Unmarshal(vhs, &hosts) != nil {
		return out
	}
	for _, h := range hosts {
		for _, r := range h.Routes {
			var named struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(r, &named) == nil && named.Name != "" {
				out[named.Name] = append(out[named.Name], r...)
			}
		}
	}
	return out
}

func unionKeys(a, b map[string]json.RawMessage) []string {
	seen := map[string]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
