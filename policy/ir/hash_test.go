package ir

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	jsonv2 "encoding/json/v2"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// marshalHash is the version id as Hash computed it before appendRoute:
// the SHA-256 of json.Marshal's encoding, the definition of the id.
func marshalHash(t *testing.T, c *Config) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// TestRouteFieldsAreAppended pins the fields of the types appendRoute
// encodes by hand: a field added, renamed, retagged or retyped must be
// added to appendRoute (or the type marshalled by encoding/json), and then
// to this list.
func TestRouteFieldsAreAppended(t *testing.T) {
	want := map[reflect.Type][]string{
		reflect.TypeFor[Route](): {
			`Name string json:"name"`, `Match ir.Match json:"match"`, `Backend string json:"backend"`,
			`RewritePrefix bool json:"rewritePrefix,omitempty"`, `PrefixRewrite string json:"prefixRewrite,omitempty"`,
			`Timeout time.Duration json:"timeout"`, `Auth ir.RouteAuth json:"auth"`, `RateLimit ir.RouteRateLimit json:"rateLimit"`,
			`AccessLog *ir.RouteAccessLog json:"accessLog,omitempty"`, `Transform *ir.RouteTransform json:"transform,omitempty"`,
			`Split []ir.WeightedBackend json:"split,omitempty"`, `Retry *ir.Retry json:"retry,omitempty"`,
			`IdleTimeout time.Duration json:"idleTimeout,omitempty"`, `Mirror *ir.Mirror json:"mirror,omitempty"`,
			`HTTP *ir.RouteHTTP json:"http,omitzero"`,
		},
		reflect.TypeFor[Match](): {
			`Path string json:"path,omitempty"`, `PathPrefix string json:"pathPrefix,omitempty"`,
			`PathRegex string json:"pathRegex,omitempty"`, `Methods []string json:"methods,omitempty"`,
			`Headers []ir.HeaderMatch json:"headers,omitempty"`,
		},
		reflect.TypeFor[HeaderMatch](): {
			`Name string json:"name"`, `Exact string json:"exact,omitempty"`, `Prefix string json:"prefix,omitempty"`,
			`Regex string json:"regex,omitempty"`, `Present bool json:"present,omitempty"`,
		},
		reflect.TypeFor[RouteAuth](): {
			`Public bool json:"public,omitempty"`, `Methods []string json:"methods,omitempty"`,
			`Roles []string json:"roles,omitempty"`, `Scopes []string json:"scopes,omitempty"`,
			`ForwardCredentials bool json:"forwardCredentials,omitempty"`,
		},
		reflect.TypeFor[RouteRateLimit](): {
			`Enabled bool json:"enabled,omitempty"`, `Consumer bool json:"consumer,omitempty"`,
			`Anonymous bool json:"anonymous,omitempty"`, `Extra []ir.Limit json:"extra,omitempty"`,
			`By []string json:"by,omitempty"`, `Shadow bool json:"shadow,omitempty"`,
		},
	}
	for typ, fields := range want {
		var got []string
		for f := range typ.Fields() {
			got = append(got, fmt.Sprintf("%s %s %s", f.Name, f.Type, f.Tag))
		}
		if strings.Join(got, "\n") != strings.Join(fields, "\n") {
			t.Errorf("%s's fields changed: update appendRoute (hash.go) and this test\ngot:\n%s\nwant:\n%s",
				typ, strings.Join(got, "\n"), strings.Join(fields, "\n"))
		}
		// The types' JSON is their fields': no method of their own.
		for _, tt := range []reflect.Type{typ, reflect.PointerTo(typ)} {
			for _, m := range []string{"MarshalJSON", "MarshalJSONTo", "MarshalText", "IsZero"} {
				if _, ok := tt.MethodByName(m); ok {
					t.Errorf("%s has a method %s: appendRoute does not call it", tt, m)
				}
			}
		}
	}
}

// TestAppendRouteIsMarshal compares appendRoute with json.Marshal, and
// Hash with the SHA-256 of json.Marshal, on random routes and configs:
// every field of every type set or left zero at random, strings drawn
// from ones that need no escape and ones that do (HTML characters,
// control characters, quotes, non-ASCII, invalid UTF-8).
func TestAppendRouteIsMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 10000))
	for i := range 3000 {
		var route Route
		fillRandom(r, reflect.ValueOf(&route).Elem(), 0)
		want, err := json.Marshal(&route)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRoute(nil, &route); string(got) != string(want) {
			t.Fatalf("route %d:\nappendRoute: %s\njson.Marshal: %s", i, got, want)
		}
	}
	for i := range 300 {
		var c Config
		fillRandom(r, reflect.ValueOf(&c).Elem(), 0)
		if got, want := c.Hash(), marshalHash(t, &c); got != want {
			t.Fatalf("config %d: Hash() = %s, want %s", i, got, want)
		}
	}
}

// TestHashFlushesLongRouteLists: a virtual host whose routes' encoding is
// several times hashFlush is hashed as json.Marshal encodes it.
func TestHashFlushesLongRouteLists(t *testing.T) {
	routes := make([]Route, 2000)
	for i := range routes {
		routes[i] = Route{Name: fmt.Sprintf("r%d", i), Match: Match{PathPrefix: fmt.Sprintf("/svc/%d", i)}, Backend: "b"}
	}
	c := &Config{Gateways: []Gateway{{Name: "g", VirtualHosts: []VirtualHost{{Name: "any", Domains: []string{"*"}, Routes: routes}}}}}
	if got, want := c.Hash(), marshalHash(t, c); got != want {
		t.Errorf("Hash() = %s, want %s", got, want)
	}
}

// randomStrings are the strings fillRandom draws from.
var randomStrings = []string{
	"", "a", "api", "/svc/1", "GET", "x-version", "h1.example.com", "*.example.com", "web <&>", "/é", "tab\there",
	"line\nbreak", `quo"te`, `back\slash`, "\x00", "\x7f", "\u2028", "\xff\xfe", "日本", "a&b", "0", "null",
}

// fillRandom sets v, and everything under it, to random values; depth
// bounds the nesting of slices and pointers.
func fillRandom(r *rand.Rand, v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillRandom(r, v.Field(i), depth)
			}
		}
	case reflect.Pointer:
		if depth < 4 && r.IntN(3) == 0 {
			v.Set(reflect.New(v.Type().Elem()))
			fillRandom(r, v.Elem(), depth+1)
		}
	case reflect.Slice:
		switch n := r.IntN(5); {
		case n == 0 || depth >= 4:
		case n == 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			v.Set(reflect.MakeSlice(v.Type(), n-1, n-1))
			for i := range n - 1 {
				fillRandom(r, v.Index(i), depth+1)
			}
		}
	case reflect.Map:
		if n := r.IntN(3); n > 0 && depth < 4 {
			v.Set(reflect.MakeMap(v.Type()))
			for range n {
				k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
				fillRandom(r, k, depth+1)
				fillRandom(r, e, depth+1)
				v.SetMapIndex(k, e)
			}
		}
	default:
		fillScalar(r, v)
	}
}

func fillScalar(r *rand.Rand, v reflect.Value) {
	if r.IntN(3) == 0 {
		return // the zero value
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(randomStrings[r.IntN(len(randomStrings))])
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(r.Int64N(1<<40) - 1<<39)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(r.Uint64N(1 << 32))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(r.Float64() * 100)
	default:
		panic(fmt.Sprintf("fillRandom: no random %s", v.Type()))
	}
}

// TestHashIsMarshalSumOnTranslatorCases compares Hash with the SHA-256 of
// json.Marshal on the IR configs of xds/translator's test cases, which
// set the rarer route fields (splits, retries, mirrors, HTTP rules...).
func TestHashIsMarshalSumOnTranslatorCases(t *testing.T) {
	paths, err := filepath.Glob("../../xds/translator/testdata/in/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 10 {
		t.Fatalf("found %d translator cases", len(paths))
	}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var tc struct{ Config Config }
		if err := json.Unmarshal(raw, &tc); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if got, want := tc.Config.Hash(), marshalHash(t, &tc.Config); got != want {
			t.Errorf("%s: Hash() = %s, want %s", p, got, want)
		}
	}
}

// BenchmarkHash compares Hash with the SHA-256 of json.Marshal's
// encoding (what Hash computed before appendRoute) on 10,000 routes like
// the convergence bench's.
func BenchmarkHash(b *testing.B) {
	routes := make([]Route, 10000)
	for i := range routes {
		routes[i] = Route{Name: fmt.Sprintf("r%d", i), Match: Match{PathPrefix: fmt.Sprintf("/svc%d/r%d", i%10, i)},
			Backend: fmt.Sprintf("b%d", i%10), Timeout: 15e9, Auth: RouteAuth{Public: true}}
	}
	c := &Config{Gateways: []Gateway{{Name: "bench", VirtualHosts: []VirtualHost{{Name: "any", Domains: []string{"*"}, Routes: routes}}}}}
	b.Run("append", func(b *testing.B) {
		for b.Loop() {
			_ = c.Hash()
		}
	})
	b.Run("marshal", func(b *testing.B) {
		for b.Loop() {
			h := sha256.New()
			if err := jsonv2.MarshalWrite(h, c, json.DefaultOptionsV1()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
