package controlplane

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/store"
)

// BenchmarkDiff10000Routes: what a push of one more route to a policy of
// 10,000 routes costs to describe (push and diff print it).
func BenchmarkDiff10000Routes(b *testing.B) {
	c := newTestController(b, b.TempDir(), &fakeApplier{})
	if _, err := c.Push(context.Background(), manyRoutes(10000, 0), "push", "bench"); err != nil {
		b.Fatal(err)
	}
	cp, err := c.compile(manyRoutes(10000, 1))
	if err != nil {
		b.Fatal(err)
	}
	prev := c.cur.Load()
	b.ResetTimer()
	for b.Loop() {
		if ch := diffServed(prev, cp); len(ch) != 1 {
			b.Fatalf("changes = %+v", ch)
		}
	}
}

// manyRoutes is a policy of n prefix routes plus extra ones.
func manyRoutes(n, extra int) []store.File {
	var sb strings.Builder
	sb.WriteString("version: 1\ngateways:\n  - name: g\n    listeners: [{name: http, port: 8080}]\nroutes:\n")
	for i := 0; i < n+extra; i++ {
		fmt.Fprintf(&sb, "  - {name: r%d, match: {pathPrefix: /svc%d/r%d}, backend: b%d, auth: none}\n", i, i%10, i, i%10)
	}
	sb.WriteString("backends:\n")
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&sb, "  - {name: b%d, endpoints: [\"127.0.0.1:9\"]}\n", i)
	}
	return []store.File{{Name: "p.yaml", Content: sb.String()}}
}

// BenchmarkCompile10000Routes: a push's compile step (YAML to validated
// xDS resources) for 10,000 routes.
func BenchmarkCompile10000Routes(b *testing.B) {
	c := newTestController(b, b.TempDir(), &fakeApplier{})
	files := manyRoutes(10000, 0)
	for b.Loop() {
		if _, err := c.compile(files); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileAfterPush10000Routes: a push's compile step for 10,000
// routes when a version differing by one route is served (the routes it
// shares with it are neither kept twice nor validated again).
func BenchmarkCompileAfterPush10000Routes(b *testing.B) {
	c := newTestController(b, b.TempDir(), &fakeApplier{})
	if _, err := c.Push(context.Background(), manyRoutes(10000, 0), "push", "bench"); err != nil {
		b.Fatal(err)
	}
	files := manyRoutes(10000, 1)
	for b.Loop() {
		if _, err := c.compile(files); err != nil {
			b.Fatal(err)
		}
	}
}
