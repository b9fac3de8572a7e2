package translator

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/policy/ir"
)

func TestTranslateErrors(t *testing.T) {
	tests := []struct {
		name    string
		gateway string
		mutate  func(c *ir.Config)
		wantErr string
	}{
		{
			name:    "unknown gateway",
			gateway: "nope",
			wantErr: `unknown gateway "nope"`,
		},
		{
			name:    "undefined backend",
			mutate:  func(c *ir.Config) { c.Backends = nil },
			wantErr: `backend "web": referenced by a route but not defined`,
		},
		{
			name:    "unknown load balancing",
			mutate:  func(c *ir.Config) { c.Backends[0].LoadBalancing = "bogus" },
			wantErr: `backend "web": unknown load balancing policy "bogus"`,
		},
		{
			name:    "negative connect timeout",
			mutate:  func(c *ir.Config) { c.Backends[0].ConnectTimeout = -time.Second },
			wantErr: `backend "web": negative connect timeout`,
		},
		{
			name:    "two path conditions",
			mutate:  func(c *ir.Config) { firstRoute(c).Match.Path = "/x" },
			wantErr: `virtual host "any": route "web": want exactly one of path`,
		},
		{
			name:    "no path condition",
			mutate:  func(c *ir.Config) { firstRoute(c).Match.PathPrefix = "" },
			wantErr: `route "web": want exactly one of path`,
		},
		{
			name: "two header conditions",
			mutate: func(c *ir.Config) {
				firstRoute(c).Match.Headers = []ir.HeaderMatch{{Name: "x", Exact: "a", Present: true}}
			},
			wantErr: `route "web": header "x": want at most one of`,
		},
		{
			name:    "negative route timeout",
			mutate:  func(c *ir.Config) { firstRoute(c).Timeout = -1 },
			wantErr: `route "web": negative timeout`,
		},
		{
			name:    "route without backend",
			mutate:  func(c *ir.Config) { firstRoute(c).Backend = "" },
			wantErr: `route "web": no backend`,
		},
		{
			name: "direct response and redirect",
			mutate: func(c *ir.Config) {
				r := firstRoute(c)
				r.Backend = ""
				r.EditHTTP().DirectResponse = &ir.DirectResponse{Status: 200}
				r.HTTP.Redirect = &ir.Redirect{Status: 301, Path: "/"}
			},
			wantErr: `route "web": a direct response and a redirect are exclusive`,
		},
		{
			name: "direct response status",
			mutate: func(c *ir.Config) {
				r := firstRoute(c)
				r.Backend, r.EditHTTP().DirectResponse = "", &ir.DirectResponse{Status: 42}
			},
			wantErr: `route "web": direct response status 42 out of range`,
		},
		{
			name: "redirect status",
			mutate: func(c *ir.Config) {
				r := firstRoute(c)
				r.Backend, r.EditHTTP().Redirect = "", &ir.Redirect{Status: 200, Path: "/"}
			},
			wantErr: `route "web": redirect status 200 is not 301, 302, 303, 307 or 308`,
		},
		{
			name: "prefix and regex rewrite",
			mutate: func(c *ir.Config) {
				r := firstRoute(c)
				r.RewritePrefix, r.PrefixRewrite = true, "/x"
				r.EditHTTP().RegexRewrite = &ir.RegexRewrite{Pattern: "a", Substitution: "b"}
			},
			wantErr: `route "web": a regex rewrite and a prefix rewrite are exclusive`,
		},
		{
			name: "literal and automatic host rewrite",
			mutate: func(c *ir.Config) {
				r := firstRoute(c)
				h := r.EditHTTP()
				h.HostRewrite, h.AutoHostRewrite = "a.example", true
			},
			wantErr: `route "web": a literal and an automatic host rewrite are exclusive`,
		},
		{
			name: "unknown compression algorithm",
			mutate: func(c *ir.Config) {
				firstRoute(c).EditHTTP().Compression = &ir.Compression{Algorithms: []string{"zstd"}}
			},
			wantErr: `route "web": unknown compression algorithm "zstd"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := loadCase(t, "minimal")
			if tt.gateway == "" {
				tt.gateway = tc.Gateway
			}
			if tt.mutate != nil {
				tt.mutate(&tc.Config)
			}
			_, err := Translate(&tc.Config, tt.gateway, tc.options())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Translate error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// firstRoute returns the first route of the first gateway's first virtual host.
func firstRoute(c *ir.Config) *ir.Route { return &c.Gateways[0].VirtualHosts[0].Routes[0] }

func TestTranslateNilConfig(t *testing.T) {
	if _, err := Translate(nil, "public", Options{}); err == nil {
		t.Fatal("Translate(nil) succeeded")
	}
}

// TestTranslateDeterministic translates each case many times, from the same
// IR and from an identical copy decoded separately, and requires
// byte-identical deterministic encodings every time.
func TestTranslateDeterministic(t *testing.T) {
	for _, name := range caseNames(t) {
		t.Run(name, func(t *testing.T) {
			tc := loadCase(t, name)
			want := encodeAll(t, &tc.Config, tc.Gateway, tc.options())
			for i := range 20 {
				cfg := &tc.Config
				if i%2 == 1 {
					cfg = copyConfig(t, cfg)
				}
				if got := encodeAll(t, cfg, tc.Gateway, tc.options()); !bytes.Equal(got, want) {
					t.Fatalf("translation %d differs from the first", i)
				}
			}
		})
	}
}

// encodeAll translates cfg and concatenates the deterministic encoding of
// every resource, in Resources order.
func encodeAll(t *testing.T, cfg *ir.Config, gateway string, opts Options) []byte {
	t.Helper()
	r, err := Translate(cfg, gateway, opts)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, resources := range [][]proto.Message{
		messages(r.Listeners), messages(r.Routes), messages(r.Clusters), messages(r.Endpoints),
	} {
		for _, m := range resources {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b...)
		}
	}
	return out
}

func messages[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

// copyConfig returns a deep copy of cfg made through JSON.
func copyConfig(t *testing.T, cfg *ir.Config) *ir.Config {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out ir.Config
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// TestServiceNameFollowsClusterSettings checks that the EDS service name
// changes with the cluster's settings and only with them.
func TestServiceNameFollowsClusterSettings(t *testing.T) {
	serviceName := func(mutate func(b *ir.Backend)) string {
		tc := loadCase(t, "minimal")
		mutate(&tc.Config.Backends[0])
		r, err := Translate(&tc.Config, tc.Gateway, tc.options())
		if err != nil {
			t.Fatal(err)
		}
		return r.Clusters[0].GetEdsClusterConfig().GetServiceName()
	}
	base := serviceName(func(*ir.Backend) {})
	if !strings.HasPrefix(base, "web~") || len(base) != len("web~")+8 {
		t.Fatalf("service name %q, want web~<8 hex>", base)
	}
	tests := []struct {
		name    string
		mutate  func(b *ir.Backend)
		changes bool
	}{
		{"endpoints", func(b *ir.Backend) { b.Endpoints = append(b.Endpoints, ir.Endpoint{Host: "10.9.9.9", Port: 1}) }, false},
		{"connect timeout", func(b *ir.Backend) { b.ConnectTimeout = 3 * time.Second }, true},
		{"load balancing", func(b *ir.Backend) { b.LoadBalancing = ir.Random }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := serviceName(tt.mutate); (got != base) != tt.changes {
				t.Errorf("service name %q (base %q): changed = %v, want %v", got, base, got != base, tt.changes)
			}
		})
	}
}
