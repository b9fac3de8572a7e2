// Package cachekey measures natively what callgrind cannot show: the cost
// of the module's two cache paths on a hit. Mode "cache" hashes the token
// (SHA-256: SHA-NI on this CPU, invisible to valgrind, which makes Go
// take its AVX2 code) and reads the Verifier's sharded map, then the
// module's identity by pointer; mode "map" reads a map keyed by the token
// string. Run (bench/dynmod/README.md, section "CPU time"):
//
//	go test ./cachekey -run '^$' -bench . -cpu 1 -count 5
//	GODEBUG=cpu.sha=off go test ./cachekey -run '^$' -bench SHA256 -cpu 1 -count 5
package cachekey

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/tollgate/tollgate/extauthz/jwt"
	"github.com/tollgate/tollgate/internal/jwttest"
	"github.com/tollgate/tollgate/policy/ir"
)

// sizes are token lengths: bench/pipeline's tokens (RS256, short sub,
// ~570 bytes) and two larger, realistic ones (more claims).
var sizes = []int{570, 800, 1200}

// tokens mints n RS256 tokens of about size bytes each (the sub pads
// them) and returns them with the issuer's provider.
func tokens(b *testing.B, size, n int) ([]string, ir.JWTProvider) {
	b.Helper()
	iss, err := jwttest.New("https://idp.bench/", "api.bench")
	if err != nil {
		b.Fatal(err)
	}
	probe, err := iss.Token("u", nil, time.Hour, 0)
	if err != nil {
		b.Fatal(err)
	}
	pad := max(0, (size-len(probe))*3/4) // base64 grows the claims by 4/3
	out := make([]string, n)
	for i := range out {
		sub := fmt.Sprintf("u%d-%s", i, strings.Repeat("x", pad))
		if out[i], err = iss.Token(sub[:max(1, len(sub)-len(fmt.Sprint(i)))], nil, time.Hour, i); err != nil {
			b.Fatal(err)
		}
	}
	return out, ir.JWTProvider{Name: "corp", Namespace: "corp", Issuer: iss.Issuer, Audiences: []string{iss.Audience},
		JWKS: iss.JWKS(), Algorithms: []string{"RS256"}, ClockSkew: 30 * time.Second, MaxLifetime: 24 * time.Hour,
		Claims: ir.ClaimMap{UserID: "sub"}}
}

// keyOf is the Verifier's cache key: the token's SHA-256, hashed without
// copying the token (as extauthz/jwt does).
func keyOf(tok string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(tok), len(tok)))
}

// copies returns each token in fresh memory: the module reads the token
// from Envoy's header buffer, never from the map's key.
func copies(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = strings.Clone(t)
	}
	return out
}

func BenchmarkSHA256(b *testing.B) {
	for _, size := range sizes {
		toks, _ := tokens(b, size, 1)
		b.Run(fmt.Sprintf("bytes=%d", len(toks[0])), func(b *testing.B) {
			in := copies(toks)[0]
			var sink [32]byte
			for b.Loop() {
				sink = keyOf(in)
			}
			_ = sink
		})
	}
}

// BenchmarkMapString is mode "map"'s hit: a read lock and a map keyed by
// the token string (hash of the string, then a full compare).
func BenchmarkMapString(b *testing.B) {
	for _, size := range sizes {
		toks, _ := tokens(b, size, 10)
		var mu sync.RWMutex
		m := map[string]*int{}
		for i, t := range toks {
			m[t] = &i
		}
		in := copies(toks)
		b.Run(fmt.Sprintf("bytes=%d", len(toks[0])), func(b *testing.B) {
			i := 0
			for b.Loop() {
				mu.RLock()
				p := m[in[i%len(in)]]
				mu.RUnlock()
				if p == nil {
					b.Fatal("miss")
				}
				i++
			}
		})
	}
}

// BenchmarkSHAKeyMap is the hash plus the same read of a map keyed by
// the 32-byte digest.
func BenchmarkSHAKeyMap(b *testing.B) {
	for _, size := range sizes {
		toks, _ := tokens(b, size, 10)
		var mu sync.RWMutex
		m := map[[32]byte]*int{}
		for i, t := range toks {
			m[keyOf(t)] = &i
		}
		in := copies(toks)
		b.Run(fmt.Sprintf("bytes=%d", len(toks[0])), func(b *testing.B) {
			i := 0
			for b.Loop() {
				k := keyOf(in[i%len(in)])
				mu.RLock()
				p := m[k]
				mu.RUnlock()
				if p == nil {
					b.Fatal("miss")
				}
				i++
			}
		})
	}
}

// BenchmarkModuleCache is mode "cache"'s hit as the module does it:
// Verifier.Verify (SHA-256, sharded cache read) and the module's C
// identity looked up by the Identity pointer (sync.Map).
func BenchmarkModuleCache(b *testing.B) {
	for _, size := range sizes {
		toks, prov := tokens(b, size, 10)
		v, err := jwt.NewVerifier([]ir.JWTProvider{prov}, jwt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		var byIdentity sync.Map
		for _, t := range toks {
			id, err := v.Verify(context.Background(), t)
			if err != nil {
				b.Fatal(err)
			}
			byIdentity.Store(id, new(int))
		}
		in := copies(toks)
		b.Run(fmt.Sprintf("bytes=%d", len(toks[0])), func(b *testing.B) {
			i := 0
			for b.Loop() {
				id, err := v.Verify(context.Background(), in[i%len(in)])
				if err != nil {
					b.Fatal(err)
				}
				if _, ok := byIdentity.Load(id); !ok {
					b.Fatal("miss")
				}
				i++
			}
		})
		v.Close()
	}
}
