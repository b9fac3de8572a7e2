package policy

import (
	"fmt"
	"strings"
	"testing"
)

// genPolicy returns genFiles(n, 1) as one file.
func genPolicy(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\n")
	for _, f := range genFiles(n, 1) {
		b.WriteString(strings.TrimPrefix(string(f.Content), "version: 1\n"))
	}
	return []byte(b.String())
}

// genFiles returns a valid policy with n routes split over parts route
// files, after one file with two gateways, n/10 backends and an auth
// section (API keys and a JWT provider). Every tenth route is host-less
// (the others use ten hosts), every third is bound to one gateway, every
// fifth restricts methods and headers; every seventh is public, every
// fourth other one requires a JWT with a role, the rest accept any
// configured method.
func genFiles(n, parts int) []File {
	backends := max(1, n/10)
	var b strings.Builder
	b.WriteString("version: 1\ngateways:\n")
	b.WriteString("  - name: public\n    listeners:\n      - {name: http, port: 8080}\n      - {name: admin, port: 9901, address: 127.0.0.1}\n")
	b.WriteString("  - name: internal\n    listeners:\n      - {name: http, port: 8081}\n")
	b.WriteString("auth:\n  apiKeys: {}\n  jwt:\n")
	b.WriteString("    - {name: corp, issuer: https://idp.example.com/, jwksUri: https://idp.example.com/jwks.json}\n")
	b.WriteString("backends:\n")
	for i := range backends {
		fmt.Fprintf(&b, "  - name: backend-%d\n    endpoints: [\"10.0.%d.%d:8080\", \"10.1.%d.%d:8080\"]\n",
			i, i/250, i%250, i/250, i%250)
	}
	files := []File{{Name: "base.yaml", Content: []byte(b.String())}}
	per := (n + parts - 1) / parts
	for part := range parts {
		files = append(files, File{
			Name:    fmt.Sprintf("routes-%d.yaml", part),
			Content: genRoutes(part*per, min(n, (part+1)*per), backends),
		})
	}
	return files
}

func genRoutes(from, to, backends int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nroutes:\n")
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "  - name: route-%d\n", i)
		if i%3 == 0 {
			b.WriteString("    gateway: public\n")
		}
		b.WriteString("    match:\n")
		if i%10 != 0 {
			fmt.Fprintf(&b, "      hosts: [h%d.example.com]\n", i%10)
		}
		fmt.Fprintf(&b, "      pathPrefix: /svc/%d\n", i)
		if i%5 == 0 {
			b.WriteString("      methods: [GET, POST]\n      headers: [{name: x-version, exact: \"2\"}]\n")
		}
		fmt.Fprintf(&b, "    backend: backend-%d\n    timeout: 5s\n", i%backends)
		switch {
		case i%7 == 0:
			b.WriteString("    auth: none\n")
		case i%4 == 0:
			b.WriteString("    auth: {methods: [jwt], roles: [user]}\n")
		}
	}
	return []byte(b.String())
}

func BenchmarkBuild(b *testing.B) {
	tests := []struct {
		name  string
		files []File
	}{
		{name: "routes=10", files: []File{{Name: "p.yaml", Content: genPolicy(10)}}},
		{name: "routes=1000", files: []File{{Name: "p.yaml", Content: genPolicy(1000)}}},
		{name: "routes=10000", files: []File{{Name: "p.yaml", Content: genPolicy(10000)}}},
		{name: "routes=10000/files=10", files: genFiles(10000, 10)},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				if _, ds := Build(tt.files); ds.HasErrors() {
					b.Fatal(ds.Err())
				}
			}
		})
	}
}

// BenchmarkValidateCompile measures Tollgate's own work without YAML
// parsing, which dominates Build on large policies.
func BenchmarkValidateCompile(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		p, ds := Load([]File{{Name: "p.yaml", Content: genPolicy(n)}})
		if ds.HasErrors() {
			b.Fatal(ds.Err())
		}
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			for b.Loop() {
				if ds := p.Validate(); ds.HasErrors() {
					b.Fatal(ds.Err())
				}
				Compile(p)
			}
		})
	}
}
