package docexamples

import (
	"fmt"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/tollgate/tollgate/policy"
)

// Wrap turns a fragment into a whole policy of two files: the fragment
// itself (with `version: 1` prepended, so its line numbers are off by one)
// and a wrapper that adds what the fragment leaves out: a gateway `public`
// with a plaintext listener when it defines no gateway, an API-key method
// when it has no auth section (so routes without `auth: none` are valid),
// and a backend for every name its routes use but it does not define.
// Nothing the fragment sets is changed.
func Wrap(b Block) ([]policy.File, error) {
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(b.Content), &doc); err != nil {
		return nil, fmt.Errorf("%s: fragment is not YAML: %w", b.Name(), err)
	}
	var w strings.Builder
	w.WriteString("version: 1\n")
	if _, ok := doc["gateways"]; !ok {
		w.WriteString("gateways:\n  - {name: public, listeners: [{name: http, port: 8080}]}\n")
	}
	if _, ok := doc["auth"]; !ok {
		w.WriteString("auth:\n  apiKeys: {header: x-api-key}\n")
	}
	if missing := missingBackends(doc); len(missing) > 0 {
		w.WriteString("backends:\n")
		for i, name := range missing {
			fmt.Fprintf(&w, "  - {name: %s, endpoints: [\"127.0.0.1:%d\"]}\n", name, 19000+i)
		}
	}
	return []policy.File{
		{Name: b.Name() + ".yaml", Content: []byte("version: 1\n" + b.Content)},
		{Name: "wrapper.yaml", Content: []byte(w.String())},
	}, nil
}

// missingBackends returns, sorted, the backend names the fragment's routes
// use (backend, backends[].name, mirror.backend) that it does not define.
func missingBackends(doc map[string]any) []string {
	defined := map[string]bool{}
	for _, b := range list(doc["backends"]) {
		if name, ok := b["name"].(string); ok {
			defined[name] = true
		}
	}
	used := map[string]bool{}
	for _, r := range list(doc["routes"]) {
		if name, ok := r["backend"].(string); ok {
			used[name] = true
		}
		for _, wb := range list(r["backends"]) {
			if name, ok := wb["name"].(string); ok {
				used[name] = true
			}
		}
		if m, ok := r["mirror"].(map[string]any); ok {
			if name, ok := m["backend"].(string); ok {
				used[name] = true
			}
		}
	}
	var out []string
	for name := range used {
		if !defined[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// list returns the mappings of a YAML list value.
func list(v any) []map[string]any {
	items, _ := v.([]any)
	var out []map[string]any
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
