package policy

import (
	"slices"
	"strings"
	"testing"
)

// TestValidateTrafficMistakes checks that every traffic mistake in the file
// is reported on its marked line. A line may carry several errors only when
// marked so in its comment ("reported as well").
func TestValidateTrafficMistakes(t *testing.T) {
	files := readFiles(t, "testdata/invalid/traffic_mistakes.yaml")
	_, ds := Build(files)
	lines := strings.Split(string(files[0].Content), "\n")
	seen := map[int]bool{}
	for _, d := range ds.Errors() {
		line := lines[d.Range.Line-1]
		if !strings.Contains(line, "# mistake") || seen[d.Range.Line] && !strings.Contains(line, "as well") {
			t.Errorf("error on unmarked or already reported line %d: %s", d.Range.Line, d)
		}
		seen[d.Range.Line] = true
	}
	for i, line := range lines {
		if strings.Contains(line, "# mistake") && !strings.Contains(line, "(reported on") && !seen[i+1] {
			t.Errorf("line %d: mistake not reported: %s", i+1, strings.TrimSpace(line))
		}
	}
	if len(ds.Warnings()) != 0 {
		t.Errorf("unexpected warnings: %s", render(ds.Warnings()))
	}
}

func TestValidateTrafficMessages(t *testing.T) {
	base := "version: 1\ngateways: [{name: gw, listeners: [{name: http, port: 80}]}]\n"
	tests := []struct {
		name, src string
		want      []string
	}{
		{
			name: "ring hash without hashOn warns",
			src:  base + "routes: [{name: r, backend: be, auth: none}]\nbackends: [{name: be, endpoints: [\"10.0.0.1:80\"], loadBalancing: ring_hash}]\n",
			want: []string{`4:66: warning: backends[0].loadBalancing: ring_hash without hashOn picks endpoints at random`},
		},
		{
			name: "split names an unknown backend",
			src:  base + "routes: [{name: r, backends: [{name: bee, weight: 1}], auth: none}]\nbackends: [{name: be, endpoints: [\"10.0.0.1:80\"]}]\n",
			want: []string{`3:38: error: routes[0].backends[0].name: backend "bee" is not defined; did you mean "be"?`, `4:13: warning: backends[0]: backend "be" is not used by any route`},
		},
		{
			name: "split and mirror targets count as used",
			src: base + "routes: [{name: r, backends: [{name: a, weight: 1}], mirror: {backend: b}, auth: none}]\n" +
				"backends: [{name: a, endpoints: [\"10.0.0.1:80\"]}, {name: b, endpoints: [\"10.0.0.2:80\"]}]\n",
			want: nil,
		},
		{
			name: "endpoint mapping needs an address",
			src:  base + "routes: [{name: r, backend: be, auth: none}]\nbackends: [{name: be, endpoints: [{weight: 2}]}]\n",
			want: []string{`4:36: error: backends[0].endpoints[0].address: missing required field "address"`},
		},
		{
			name: "endpoint of the wrong type",
			src:  base + "routes: [{name: r, backend: be, auth: none}]\nbackends: [{name: be, endpoints: [8080]}]\n",
			want: []string{`4:35: error: backends[0].endpoints[0]: expected a string, got integer 8080`},
		},
		{
			name: "unknown loadBalancing field",
			src:  base + "routes: [{name: r, backend: be, auth: none}]\nbackends: [{name: be, endpoints: [\"10.0.0.1:80\"], loadBalancing: {policy: maglev, hash: {}}}]\n",
			want: []string{`4:67: warning: backends[0].loadBalancing: maglev without hashOn picks endpoints at random`,
				`4:83: error: backends[0].loadBalancing.hash: unknown field "hash"; did you mean "hashOn"?`},
		},
		{
			name: "loadBalancing mapping needs a policy",
			src:  base + "routes: [{name: r, backend: be, auth: none}]\nbackends: [{name: be, endpoints: [\"10.0.0.1:80\"], loadBalancing: {hashOn: {clientIP: true}}}]\n",
			want: []string{`4:67: error: backends[0].loadBalancing.policy: missing required field "policy"`},
		},
		{
			name: "unknown policy name",
			src:  base + "routes: [{name: r, backend: be, auth: none}]\nbackends: [{name: be, endpoints: [\"10.0.0.1:80\"], loadBalancing: maglv}]\n",
			want: []string{`4:66: error: backends[0].loadBalancing: unknown loadBalancing "maglv"`},
		},
		{
			name: "cookie needs a name",
			src:  base + "routes: [{name: r, backend: be, auth: none}]\nbackends: [{name: be, endpoints: [\"10.0.0.1:80\"], loadBalancing: {policy: maglev, hashOn: {cookie: {ttl: 1h}}}}]\n",
			want: []string{`4:101: error: backends[0].loadBalancing.hashOn.cookie.name: missing required field "name"`},
		},
		{
			name: "split entry needs a weight",
			src:  base + "routes: [{name: r, backends: [{name: be}], auth: none}]\nbackends: [{name: be, endpoints: [\"10.0.0.1:80\"]}]\n",
			want: []string{`3:32: error: routes[0].backends[0].weight: missing required field "weight"`},
		},
		{
			name: "empty split",
			src:  base + "routes: [{name: r, backends: [], auth: none}]\nbackends: [{name: be, endpoints: [\"10.0.0.1:80\"]}]\n",
			want: []string{`3:30: error: routes[0].backends: backends is empty`, `4:13: warning: backends[0]: backend "be" is not used by any route`},
		},
		{
			name: "retries on empty, backoff without base",
			src:  base + "routes: [{name: r, backend: be, auth: none, retries: {on: [], backoff: {max: 1s}}}]\nbackends: [{name: be, endpoints: [\"10.0.0.1:80\"]}]\n",
			want: []string{`3:59: error: routes[0].retries.on: on is empty`, `3:73: error: routes[0].retries.backoff.base: missing required field "base"`},
		},
		{
			name: "mirror needs a backend",
			src:  base + "routes: [{name: r, backend: be, auth: none, mirror: {percent: 5}}]\nbackends: [{name: be, endpoints: [\"10.0.0.1:80\"]}]\n",
			want: []string{`3:54: error: routes[0].mirror.backend: missing required field "backend"`},
		},
		{
			name: "health check statuses empty, interval not a duration",
			src:  base + "routes: [{name: r, backend: be, auth: none}]\nbackends: [{name: be, endpoints: [\"10.0.0.1:80\"], healthCheck: {path: /h, interval: soon, expectedStatuses: []}}]\n",
			want: []string{`4:85: error: backends[0].healthCheck.interval: invalid duration "soon"`, `4:109: error: backends[0].healthCheck.expectedStatuses: expectedStatuses is empty`},
		},
		{
			name: "dns wildcard and bad port",
			src:  base + "routes: [{name: r, backend: be, auth: none}, {name: s, backend: bf, auth: none, match: {pathPrefix: /s}}]\nbackends: [{name: be, dns: \"*.x.internal:80\"}, {name: bf, dns: \"x.internal:0\"}]\n",
			want: []string{`4:28: error: backends[0].dns: dns "*.x.internal:80": a wildcard cannot be resolved`, `4:64: error: backends[1].dns: dns "x.internal:0" has an invalid port "0" (want 1..65535)`},
		},
		{
			name: "neither endpoints nor dns",
			src:  base + "routes: [{name: r, backend: be, auth: none}]\nbackends: [{name: be}]\n",
			want: []string{`4:13: error: backends[0].endpoints: backend "be" has no endpoints`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := buildString(tt.src)
			var got []string
			for _, d := range ds {
				got = append(got, strings.SplitN(d.String(), "; fix:", 2)[0])
			}
			for i := range got {
				got[i] = strings.TrimPrefix(got[i], "p.yaml:")
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
