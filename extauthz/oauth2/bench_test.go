package oauth2

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkIntrospect measures a cached answer and a request to a local
// httptest endpoint (each iteration a new token).
func BenchmarkIntrospect(b *testing.B) {
	b.Run("cached", func(b *testing.B) {
		in, ctx := benchIntrospector(b)
		if _, err := in.Introspect(ctx, "tok"); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := in.Introspect(ctx, "tok"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		in, ctx := benchIntrospector(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := in.Introspect(ctx, "tok-"+strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchIntrospector(b *testing.B) (*Introspector, context.Context) {
	p := newIDP(b)
	p.configure(func(p *idp) { p.raw = []byte(`{"active":true,"scope":"read write","sub":"u"}`) })
	in := newTestIntrospector(b, p.provider(), Options{})
	return in, testContext(b)
}
