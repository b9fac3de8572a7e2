package policy

import (
	"slices"
	"strings"
	"testing"
)

func TestValidateTopLevel(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "no gateways",
			src:  "version: 1\nbackends: [{name: be, endpoints: [\"10.0.0.1:80\"]}]\nroutes: [{name: r, backend: be, auth: none}]\n",
			want: []string{`1:1 error gateways: no gateways defined`},
		},
		{
			name: "gateway without listeners",
			src:  "version: 1\ngateways: [{name: gw, listeners: []}]\n",
			want: []string{`2:34 error gateways[0].listeners: gateway "gw" has no listeners`},
		},
		{
			name: "invalid names",
			src:  "version: 1\ngateways: [{name: Public_GW, listeners: [{name: a.b, port: 80}]}]\n",
			want: []string{
				`2:19 error gateways[0].name: invalid gateway name "Public_GW"`,
				`2:49 error gateways[0].listeners[0].name: invalid listener name "a.b"`,
			},
		},
		{
			name: "duplicate names say where the first is",
			src: "version: 1\ngateways:\n  - {name: gw, listeners: [{name: a, port: 80}, {name: a, port: 81}]}\n" +
				"  - {name: gw, listeners: [{name: a, port: 80}]}\n",
			want: []string{
				`3:56 error gateways[0].listeners[1].name: duplicate listener name "a"; first defined at gateways[0].listeners[0].name (p.yaml:3:35)`,
				`4:12 error gateways[1].name: duplicate gateway name "gw"; first defined at gateways[0].name (p.yaml:3:12)`,
			},
		},
		{
			name: "ports out of range",
			src:  "version: 1\ngateways: [{name: gw, listeners: [{name: a, port: 0}, {name: b, port: 65536}]}]\n",
			want: []string{
				`2:51 error gateways[0].listeners[0].port: port 0 is out of range`,
				`2:71 error gateways[0].listeners[1].port: port 65536 is out of range`,
			},
		},
		{
			name: "address must be an IP",
			src:  "version: 1\ngateways: [{name: gw, listeners: [{name: a, port: 80, address: localhost}]}]\n",
			want: []string{`2:64 error gateways[0].listeners[0].address: address "localhost" is not an IP address`},
		},
		{
			name: "wildcard overlaps a specific address on the same port",
			src: "version: 1\ngateways:\n  - name: gw\n    listeners:\n      - {name: any, port: 80}\n" +
				"      - {name: local, port: 80, address: 127.0.0.1}\n      - {name: other, port: 81, address: 127.0.0.1}\n" +
				"      - {name: v6, port: 80, address: \"::\"}\n",
			want: []string{`6:29 error gateways[0].listeners[1].port: listener "local" (127.0.0.1:80) overlaps listener "any" (0.0.0.0:80) defined at gateways[0].listeners[0] (p.yaml:5:10)`},
		},
		{
			name: "equal addresses overlap",
			src:  "version: 1\ngateways: [{name: gw, listeners: [{name: a, port: 80, address: \"::1\"}, {name: b, port: 80, address: \"::1\"}]}]\n",
			want: []string{`2:88 error gateways[0].listeners[1].port: listener "b" ([::1]:80) overlaps listener "a" ([::1]:80) defined at gateways[0].listeners[0] (p.yaml:2:36)`},
		},
		{
			name: "unused backend is a warning",
			src:  base + "routes: []\n",
			want: []string{`3:13 warning backends[0]: backend "be" is not used by any route`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := render(buildString(tt.src)); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestValidateBackends(t *testing.T) {
	routes := "routes: [{name: r, backend: be, auth: none}]\n"
	tests := []struct {
		name     string
		backends string
		want     []string
	}{
		{
			name:     "no endpoints",
			backends: `backends: [{name: be, endpoints: []}]`,
			want:     []string{`3:34 error backends[0].endpoints: backend "be" has no endpoints`},
		},
		{
			name:     "DNS names in endpoints point to dns",
			backends: `backends: [{name: be, endpoints: ["users.svc:80"]}]`,
			want:     []string{`3:35 error backends[0].endpoints[0]: endpoint "users.svc:80" uses the DNS name "users.svc"`},
		},
		{
			name:     "malformed endpoints",
			backends: `backends: [{name: be, endpoints: ["10.0.0.1", "10.0.0.1:0", "::1:80", "10.0.0.1:http"]}]`,
			want: []string{
				`3:35 error backends[0].endpoints[0]: endpoint "10.0.0.1" is not ip:port`,
				`3:47 error backends[0].endpoints[1]: endpoint "10.0.0.1:0" has an invalid port "0" (want 1..65535)`,
				`3:61 error backends[0].endpoints[2]: endpoint "::1:80" is not ip:port: an IPv6 address needs brackets`,
				`3:71 error backends[0].endpoints[3]: endpoint "10.0.0.1:http" has an invalid port "http" (want 1..65535)`,
			},
		},
		{
			name:     "duplicate endpoints compare canonically",
			backends: `backends: [{name: be, endpoints: ["[::1]:80", "[0::1]:80"]}]`,
			want:     []string{`3:47 error backends[0].endpoints[1]: duplicate endpoint "[0::1]:80"; first listed at backends[0].endpoints[0] (p.yaml:3:35)`},
		},
		{
			name:     "load balancing suggests the closest",
			backends: `backends: [{name: be, endpoints: ["10.0.0.1:80"], loadBalancing: roundrobin}]`,
			want:     []string{`3:66 error backends[0].loadBalancing: unknown loadBalancing "roundrobin"`},
		},
		{
			name:     "connect timeout must be positive",
			backends: `backends: [{name: be, endpoints: ["10.0.0.1:80"], connectTimeout: 0s}]`,
			want:     []string{`3:67 error backends[0].connectTimeout: connectTimeout must be greater than 0, got 0s`},
		},
		{
			name:     "bad duration",
			backends: `backends: [{name: be, endpoints: ["10.0.0.1:80"], connectTimeout: 5}]`,
			want:     []string{`3:67 error backends[0].connectTimeout: expected a string, got integer 5`},
		},
		{
			name:     "duration without unit",
			backends: `backends: [{name: be, endpoints: ["10.0.0.1:80"], connectTimeout: "5"}]`,
			want:     []string{`3:67 error backends[0].connectTimeout: invalid duration "5"`},
		},
		{
			name:     "duplicate backend",
			backends: `backends: [{name: be, endpoints: ["10.0.0.1:80"]}, {name: be, endpoints: ["10.0.0.2:80"]}]`,
			want:     []string{`3:59 error backends[1].name: duplicate backend name "be"; first defined at backends[0].name (p.yaml:3:19)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\ngateways: [{name: gw, listeners: [{name: http, port: 8080}]}]\n" + tt.backends + "\n" + routes
			if got := render(buildString(src)); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestValidateRoutes(t *testing.T) {
	tests := []struct {
		name   string
		routes string // YAML lines after "routes:", starting on line 5
		want   []string
	}{
		{
			name:   "dangling references suggest the closest name",
			routes: "  - {name: r, gateway: gw2, backend: bee, auth: none}\n",
			want: []string{
				`3:13 warning backends[0]: backend "be" is not used by any route`,
				`5:24 error routes[0].gateway: gateway "gw2" is not defined; did you mean "gw"?`,
				`5:38 error routes[0].backend: backend "bee" is not defined; did you mean "be"?`,
			},
		},
		{
			name:   "duplicate route names",
			routes: "  - {name: r, backend: be, match: {path: /a}, auth: none}\n  - {name: r, backend: be, match: {path: /b}, auth: none}\n",
			want:   []string{`6:12 error routes[1].name: duplicate route name "r"; first defined at routes[0].name (p.yaml:5:12)`},
		},
		{
			name: "durations Envoy refuses (issue 14 fault 4)",
			routes: "  - {name: r, backend: be, timeout: 9223372036854775807ns, auth: none}\n" +
				"  - {name: s, backend: be, timeout: 2562047h1s, match: {path: /s}, auth: none}\n" +
				"  - {name: u, backend: be, timeout: 2562047h, match: {path: /u}, auth: none}\n",
			want: []string{
				`5:37 error routes[0].timeout: duration "9223372036854775807ns" is out of Envoy's range`,
				`6:37 error routes[1].timeout: duration "2562047h1s" is out of Envoy's range`,
			},
		},
		{
			name: "match text no request can carry (issue 14 fault 4)",
			routes: "  - {name: r, backend: be, match: {path: \"/a\\0b\"}, auth: none}\n" +
				"  - {name: s, backend: be, match: {pathPrefix: \"/a\\u202eb\"}, auth: none}\n" +
				"  - {name: t, backend: be, match: {path: /t, headers: [{name: x, exact: " + strings.Repeat("v", 8193) + "}]}, auth: none}\n" +
				"  - {name: u, backend: be, match: {path: /u, headers: [{name: x, prefix: \"a\\nb\"}]}, auth: none}\n",
			want: []string{
				`5:42 error routes[0].match.path: value "/a\x00b" contains a control character`,
				`6:48 error routes[1].match.pathPrefix: value "/a\u202eb" contains a bidirectional-text control character`,
				`7:73 error routes[2].match.headers[0].exact: value is 8193 bytes long; no request can match it`,
				`8:74 error routes[3].match.headers[0].prefix: value "a\nb" contains a control character`,
			},
		},
		{
			name:   "invalid regex",
			routes: "  - {name: r, backend: be, match: {pathRegex: \"(\"}, auth: none}\n",
			want:   []string{`5:47 error routes[0].match.pathRegex: invalid regex "(": missing closing ): ` + "`(`"},
		},
		{
			name:   "regex too big for Envoy",
			routes: "  - {name: r, backend: be, match: {pathRegex: \"[a-z]{500}[0-9]{600}\"}, auth: none}\n",
			want:   []string{`5:47 error routes[0].match.pathRegex: regex "[a-z]{500}[0-9]{600}" is too complex: 1102 instructions, Envoy's limit is 1000`},
		},
		{
			name:   "more than one path condition",
			routes: "  - {name: r, backend: be, match: {path: /a, pathPrefix: /b}, auth: none}\n",
			want:   []string{`5:36 error routes[0].match: more than one path condition: path, pathPrefix`},
		},
		{
			name:   "paths start with a slash",
			routes: "  - {name: r, backend: be, match: {pathPrefix: api}, auth: none}\n  - {name: s, backend: be, match: {path: api}, auth: none}\n",
			want: []string{
				`5:48 error routes[0].match.pathPrefix: pathPrefix "api" must start with "/"`,
				`6:42 error routes[1].match.path: path "api" must start with "/"`,
			},
		},
		{
			name:   "invalid hosts",
			routes: "  - {name: r, backend: be, match: {hosts: [A.com, \"a.com:80\", \"*\", \"a.*.com\", any, -a.com, b.com, b.com]}, auth: none}\n",
			want: []string{
				`5:44 error routes[0].match.hosts[0]: invalid host "A.com": a host must be lower case`,
				`5:51 error routes[0].match.hosts[1]: invalid host "a.com:80": a host must not include a port`,
				`5:63 error routes[0].match.hosts[2]: invalid host "*": a bare "*" is not allowed; leave out hosts to match any host`,
				`5:68 error routes[0].match.hosts[3]: invalid host "a.*.com": only a leading "*." wildcard is allowed`,
				`5:79 error routes[0].match.hosts[4]: invalid host "any": "any" is the name of the catch-all virtual host; use a fully qualified name`,
				`5:84 error routes[0].match.hosts[5]: invalid host "-a.com": label "-a" is not a DNS label (1-63 letters, digits and '-', not starting or ending with '-')`,
				`5:99 error routes[0].match.hosts[7]: duplicate host "b.com"; first listed at routes[0].match.hosts[6] (p.yaml:5:92)`,
			},
		},
		{
			name:   "methods",
			routes: "  - {name: r, backend: be, match: {methods: [GET, FETCH, get]}, auth: none}\n",
			want: []string{
				`5:51 error routes[0].match.methods[1]: unknown HTTP method "FETCH"; did you mean "PATCH"?`,
				`5:58 error routes[0].match.methods[2]: duplicate method "get"; first listed at routes[0].match.methods[0] (p.yaml:5:46)`,
			},
		},
		{
			name: "headers",
			routes: "  - name: r\n    backend: be\n    match:\n      headers:\n        - {name: \":path\", exact: /}\n" +
				"        - {name: \"x a\", exact: b}\n        - {name: x-b}\n        - {name: x-c, exact: a, prefix: b}\n" +
				"        - {name: x-d, regex: \"[\"}\n        - {name: x-e, present: false}\n    auth: none\n",
			want: []string{
				`9:18 error routes[0].match.headers[0].name: pseudo-header ":path" cannot be matched as a header`,
				`10:18 error routes[0].match.headers[1].name: invalid header name "x a"`,
				`11:12 error routes[0].match.headers[2]: header condition needs exactly one of exact, prefix, regex or present: true; 0 set`,
				`12:12 error routes[0].match.headers[3]: header condition needs exactly one of exact, prefix, regex or present: true; 2 set`,
				`13:30 error routes[0].match.headers[4].regex: invalid regex "[": missing closing ]: ` + "`[`",
				`14:12 error routes[0].match.headers[5]: header condition needs exactly one of exact, prefix, regex or present: true; 0 set`,
			},
		},
		{
			name:   "rewrite on a regex match",
			routes: "  - {name: r, backend: be, match: {pathRegex: /a.*}, rewrite: {pathPrefix: /}, auth: none}\n",
			want:   []string{`5:76 error routes[0].rewrite.pathPrefix: rewrite.pathPrefix cannot be used with match.pathRegex`},
		},
		{
			name:   "rewrite prefix starts with a slash",
			routes: "  - {name: r, backend: be, rewrite: {pathPrefix: v2}, auth: none}\n",
			want:   []string{`5:50 error routes[0].rewrite.pathPrefix: rewrite.pathPrefix "v2" must start with "/"`},
		},
		{
			name:   "timeouts",
			routes: "  - {name: r, backend: be, timeout: -1s, match: {path: /a}, auth: none}\n  - {name: s, backend: be, timeout: soon, auth: none}\n",
			want: []string{
				`5:37 error routes[0].timeout: timeout must not be negative, got -1s`,
				`6:37 error routes[1].timeout: invalid duration "soon"`,
			},
		},
		{
			name: "identical match is never reached, whatever the order of its lists",
			routes: "  - {name: a, backend: be, match: {hosts: [x.com, y.com], pathPrefix: /p, methods: [GET, POST]}, auth: none}\n" +
				"  - {name: b, backend: be, match: {hosts: [y.com, x.com], pathPrefix: /p, methods: [post, GET]}, auth: none}\n",
			want: []string{`6:36 error routes[1].match: route "b" has the same match as route "a" at routes[0] (p.yaml:5:6) on gateway "gw": one of them is never reached`},
		},
		{
			name:   "a gateway-less route collides with a gateway-bound one",
			routes: "  - {name: a, backend: be, gateway: gw, auth: none}\n  - {name: b, backend: be, auth: none}\n",
			want:   []string{`6:6 error routes[1].match: route "b" has the same match as route "a" at routes[0] (p.yaml:5:6) on gateway "gw": one of them is never reached`},
		},
		{
			name:   "matches that differ only in headers are both reachable",
			routes: "  - {name: a, backend: be, match: {headers: [{name: x, exact: \"1\"}]}, auth: none}\n  - {name: b, backend: be, match: {headers: [{name: x, exact: \"2\"}]}, auth: none}\n",
			want:   []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := base + "routes:\n" + tt.routes
			if got := render(buildString(src)); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestValidateSameMatchOnDifferentGateways(t *testing.T) {
	src := "version: 1\ngateways:\n  - {name: a, listeners: [{name: http, port: 80}]}\n  - {name: b, listeners: [{name: http, port: 80}]}\n" +
		"backends: [{name: be, endpoints: [\"10.0.0.1:80\"]}]\n" +
		"routes:\n  - {name: x, gateway: a, backend: be, auth: none}\n  - {name: y, gateway: b, backend: be, auth: none}\n"
	if ds := buildString(src); len(ds) != 0 {
		t.Errorf("diagnostics: %q, want none", render(ds))
	}
}

func TestValidateProgrammaticPolicy(t *testing.T) {
	p := &Policy{
		Version:  1,
		Gateways: []Gateway{{Name: "gw", Listeners: []Listener{{Name: "http", Port: 8080}}}},
		Routes:   []Route{{Name: "r", Auth: &RouteAuth{Public: true}}},
		Backends: []Backend{{Name: "be", Endpoints: []string{"10.0.0.1:80"}}},
	}
	want := []string{
		`0:0 error routes[0].backend: route has no backend`,
	}
	if got := render(p.Validate()); !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n got %q\nwant %q", got, want)
	}
}

func TestInvalidNameSaysWhy(t *testing.T) {
	ds := buildString("version: 1\ngateways: [{name: my_gw.v1, listeners: [{name: http, port: 80}]}]\n")
	want := `p.yaml:2:19: error: gateways[0].name: invalid gateway name "my_gw.v1"; fix: use 1-63 lower-case letters, ` +
		`digits and '-', starting and ending with a letter or digit (no dots, no underscores: names become Envoy ` +
		`resource names and stat names), e.g. "my-gw-v1"`
	if len(ds) != 1 || ds[0].String() != want {
		t.Errorf("got %q\nwant %q", ds, want)
	}
}

func TestValidateReportsEveryMistake(t *testing.T) {
	for _, path := range []string{
		"testdata/invalid/mistakes.yaml", "testdata/invalid/auth_mistakes.yaml", "testdata/invalid/ratelimit_mistakes.yaml",
		"testdata/invalid/observability_mistakes.yaml",
	} {
		t.Run(path, func(t *testing.T) {
			files := readFiles(t, path)
			_, ds := Build(files)
			// Each file marks each mistake with a "mistake N" comment.
			marked := strings.Count(string(files[0].Content), "# mistake ")
			errs := ds.Errors()
			if len(errs) != marked || len(ds) != len(errs) {
				t.Fatalf("got %d errors and %d warnings, want %d errors:\n%s", len(errs), len(ds.Warnings()), marked, ds.Err())
			}
			// Each error is on a line marked as a mistake, one per line.
			lines := strings.Split(string(files[0].Content), "\n")
			seen := map[int]bool{}
			for _, d := range errs {
				if !strings.Contains(lines[d.Range.Line-1], "# mistake") || seen[d.Range.Line] {
					t.Errorf("error on unmarked or already reported line %d: %s", d.Range.Line, d)
				}
				seen[d.Range.Line] = true
			}
		})
	}
}
