package policy

import (
	"slices"
	"testing"
)

func TestLoadShapeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "unknown field suggests the closest",
			src:  base + "routes:\n  - {name: r, backend: be, timeot: 5s, auth: none}\n",
			want: []string{`5:28 error routes[0].timeot: unknown field "timeot"; did you mean "timeout"?`},
		},
		{
			name: "unknown field suggests case-insensitively",
			src:  base + "routes:\n  - name: r\n    backend: be\n    match:\n      pathprefix: /api\n    auth: none\n",
			want: []string{`8:7 error routes[0].match.pathprefix: unknown field "pathprefix"; did you mean "pathPrefix"?`},
		},
		{
			name: "unknown field without a close name",
			src:  base + "routes:\n  - {name: r, backend: be, colour: red, auth: none}\n",
			want: []string{`5:28 error routes[0].colour: unknown field "colour"`},
		},
		{
			name: "string where an integer belongs",
			src:  "version: 1\ngateways: [{name: gw, listeners: [{name: http, port: \"8080\"}]}]\n",
			want: []string{`2:54 error gateways[0].listeners[0].port: expected an integer, got string "8080"`},
		},
		{
			name: "integer where a string belongs",
			src:  base + "routes:\n  - {name: r, backend: be, timeout: 5, auth: none}\n",
			want: []string{`5:37 error routes[0].timeout: expected a string, got integer 5`},
		},
		{
			name: "scalar where a list belongs",
			src:  base + "routes:\n  - {name: r, backend: be, match: {hosts: a.com}, auth: none}\n",
			want: []string{`5:43 error routes[0].match.hosts: expected a list, got string "a.com"`},
		},
		{
			name: "list where a mapping belongs",
			src:  base + "routes:\n  - {name: r, backend: be, match: [a], auth: none}\n",
			want: []string{`5:35 error routes[0].match: expected a mapping, got a list`},
		},
		{
			name: "no value",
			src:  base + "routes:\n  - name: r\n    backend: be\n    gateway:\n    auth: none\n",
			want: []string{`7:5 error routes[0].gateway: field "gateway" has no value`},
		},
		{
			name: "empty string",
			src:  base + "routes:\n  - {name: r, backend: be, gateway: \"\", auth: none}\n",
			want: []string{`5:37 error routes[0].gateway: empty string`},
		},
		{
			name: "string where a boolean belongs",
			src:  base + "routes:\n  - {name: r, backend: be, match: {headers: [{name: x, present: \"yes\"}]}, auth: none}\n",
			want: []string{`5:65 error routes[0].match.headers[0].present: expected true or false, got string "yes"`},
		},
		{
			name: "duplicate key",
			src:  base + "routes:\n  - name: r\n    backend: be\n    name: s\n    auth: none\n",
			want: []string{`7:5 error routes[0].name: duplicate field "name" (first set at line 5)`},
		},
		{
			name: "missing required field points at the mapping",
			src:  base + "routes:\n  - name: r\n    timeout: 1s\n    auth: none\n",
			want: []string{`5:5 error routes[0].backend: route has no backend`},
		},
		{
			name: "merge keys are rejected",
			src:  base + "routes:\n  - <<: {timeout: 1s}\n    name: r\n    backend: be\n    auth: none\n",
			want: []string{`5:5 error routes[0]: YAML merge keys (<<) are not supported`},
		},
		{
			name: "tags are rejected",
			src:  base + "routes:\n  - {name: r, backend: !!str be, auth: none}\n",
			want: []string{`5:24 error routes[0].backend: YAML tag !!str is not supported`},
		},
		{
			name: "unknown alias",
			src:  base + "routes:\n  - {name: r, backend: *nope, auth: none}\n",
			want: []string{`5:24 error routes[0].backend: unknown alias "nope"`},
		},
		{
			name: "a plain value starting with U+E000 is a string, not an alias",
			src:  base + "routes:\n  - {name: r, backend: \uE000be, auth: none}\n",
			want: []string{
				`3:13 warning backends[0]: backend "be" is not used by any route`,
				`5:24 error routes[0].backend: backend "\ue000be" is not defined`,
			},
		},
		{
			name: "a plain value starting with U+E000 beside an unknown alias",
			src:  base + "routes:\n  - {name: r, backend: *nope, auth: none}\n  - {name: s, backend: \uE000nope, match: {pathPrefix: /s}, auth: none}\n",
			want: []string{
				`5:24 error routes[0].backend: unknown alias "nope"`,
				`6:24 error routes[1].backend: backend "\ue000nope" is not defined`,
			},
		},
		{
			name: "huge integer",
			src:  "version: 99999999999999999999999\ngateways: [{name: gw, listeners: [{name: http, port: 80}]}]\n",
			want: []string{`1:10 error version: expected an integer, got string "99999999999999999999999"`},
		},
		{
			name: "missing version",
			src:  "gateways: [{name: gw, listeners: [{name: http, port: 80}]}]\n",
			want: []string{`1:1 error version: missing required field "version"`},
		},
		{
			name: "unsupported version",
			src:  "version: 2\ngateways: [{name: gw, listeners: [{name: http, port: 80}]}]\n",
			want: []string{`1:10 error version: unsupported version 2`},
		},
		{
			name: "document is not a mapping",
			src:  "- version: 1\n",
			want: []string{`1:1 error : expected a mapping, got a list`},
		},
		{
			name: "syntax error is one error with its line",
			src:  "version: 1\nroutes:\n  - name: a\n   bad: [\n",
			want: []string{`4:4 error : invalid YAML: value is not allowed in this context`},
		},
		{
			name: "every shape error at once",
			src:  base + "routes:\n  - {name: r, backend: be, timeot: 5s, match: {pathprefix: /}, gateway: 1, auth: none}\n",
			want: []string{
				`5:28 error routes[0].timeot: unknown field "timeot"; did you mean "timeout"?`,
				`5:48 error routes[0].match.pathprefix: unknown field "pathprefix"; did you mean "pathPrefix"?`,
				`5:73 error routes[0].gateway: expected a string, got integer 1`,
			},
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

func TestLoadModel(t *testing.T) {
	src := base + `routes:
  - name: r
    gateway: gw
    match:
      hosts: [a.example.com]
      pathPrefix: /api
      methods: [get]
      headers: [{name: X-A, regex: "v[0-9]"}]
    backend: be
    rewrite: {pathPrefix: /v2}
    timeout: 3s
`
	p, ds := Load([]File{{Name: "p.yaml", Content: []byte(src)}})
	want := Route{
		Name:    "r",
		Gateway: "gw",
		Match: Match{
			Hosts:      []string{"a.example.com"},
			PathPrefix: "/api",
			Methods:    []string{"get"},
			Headers:    []HeaderMatch{{Name: "X-A", Regex: "v[0-9]"}},
		},
		Backend: "be",
		Rewrite: &Rewrite{PathPrefix: "/v2"},
		Timeout: "3s",
	}
	if len(ds) != 0 || len(p.Routes) != 1 {
		t.Fatalf("Load: %d routes, diagnostics %q", len(p.Routes), render(ds))
	}
	if got := p.Routes[0]; !routesEqual(got, want) {
		t.Errorf("route:\n got %+v\nwant %+v", got, want)
	}
	if p.Version != 1 || p.Gateways[0].Listeners[0].Port != 8080 || p.Backends[0].Endpoints[0] != "10.0.0.1:80" {
		t.Errorf("policy: %+v", p)
	}
}

func routesEqual(a, b Route) bool {
	return a.Name == b.Name && a.Gateway == b.Gateway && a.Backend == b.Backend && a.Timeout == b.Timeout &&
		*a.Rewrite == *b.Rewrite &&
		slices.Equal(a.Match.Hosts, b.Match.Hosts) && a.Match.PathPrefix == b.Match.PathPrefix &&
		slices.Equal(a.Match.Methods, b.Match.Methods) && slices.Equal(a.Match.Headers, b.Match.Headers)
}

func TestLoadAnchorsAndAliases(t *testing.T) {
	src := `version: 1
gateways: [{name: gw, listeners: [{name: http, port: 8080}]}]
backends:
  - {name: a, endpoints: &eps ["10.0.0.1:80", "10.0.0.2:80"]}
  - {name: b, endpoints: *eps}
routes:
  - {name: ra, backend: a, match: {pathPrefix: /a}, auth: none}
  - {name: rb, backend: b, match: {pathPrefix: /b}, auth: none}
`
	cfg, ds := Build([]File{{Name: "p.yaml", Content: []byte(src)}})
	if len(ds) != 0 {
		t.Fatalf("diagnostics: %q", render(ds))
	}
	if b, _ := cfg.Backend("b"); len(b.Endpoints) != 2 {
		t.Errorf("backend b endpoints = %v, want the 2 aliased ones", b.Endpoints)
	}
}

func TestLoadMultiDocumentIndicesContinue(t *testing.T) {
	src := base + "routes: [{name: a, backend: be, auth: none}]\n---\nversion: 1\nroutes: [{name: b, backend: nope, match: {path: /b}, auth: none}]\n"
	want := []string{`7:29 error routes[1].backend: backend "nope" is not defined`}
	if got := render(buildString(src)); !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n got %q\nwant %q", got, want)
	}
}

func TestLoadEmptyFileWarns(t *testing.T) {
	files := []File{
		{Name: "a.yaml", Content: []byte(base + "routes: [{name: a, backend: be, auth: none}]\n")},
		{Name: "b.yaml", Content: []byte("# nothing yet\n")},
	}
	cfg, ds := Build(files)
	want := []string{"b.yaml:1:1 : file has no policy content"}
	if got := renderFiles(ds); cfg == nil || !slices.Equal(got, want) {
		t.Errorf("cfg nil: %v, diagnostics:\n got %q\nwant %q", cfg == nil, got, want)
	}
}

func TestLoadBrokenEntryIsNotComparedWithOthers(t *testing.T) {
	src := base + "routes:\n  - foo\n  - {name: r, backend: be, auth: none}\n"
	want := []string{`5:5 error routes[0]: expected a mapping, got string "foo"`}
	if got := render(buildString(src)); !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n got %q\nwant %q", got, want)
	}
}

func TestLoadDuplicateVersionKeepsOtherChecks(t *testing.T) {
	src := "version: 1\nversion: 1\ngateways: []\n"
	want := []string{
		`2:1 error version: duplicate field "version" (first set at line 1)`,
		`3:11 error gateways: no gateways defined`,
	}
	if got := render(buildString(src)); !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n got %q\nwant %q", got, want)
	}
}
