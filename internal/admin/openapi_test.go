package admin

import (
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// openAPIPath is the admin API's OpenAPI document, relative to this package.
const openAPIPath = "../../docs/reference/admin-api.yaml"

// openAPIDoc is the part of an OpenAPI 3 document the tests check.
type openAPIDoc struct {
	OpenAPI string `yaml:"openapi"`
	Info    struct {
		Title   string `yaml:"title"`
		Version string `yaml:"version"`
	} `yaml:"info"`
	Security   []map[string][]string      `yaml:"security"`
	Paths      map[string]openAPIPathItem `yaml:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `yaml:"type"`
			Scheme string `yaml:"scheme"`
		} `yaml:"securitySchemes"`
		Responses map[string]any `yaml:"responses"`
		Schemas   map[string]any `yaml:"schemas"`
	} `yaml:"components"`
}

// openAPIPathItem is one path's operations.
type openAPIPathItem struct {
	Parameters []any      `yaml:"parameters"`
	Get        *openAPIOp `yaml:"get"`
	Put        *openAPIOp `yaml:"put"`
	Post       *openAPIOp `yaml:"post"`
	Delete     *openAPIOp `yaml:"delete"`
	Patch      *openAPIOp `yaml:"patch"`
	Head       *openAPIOp `yaml:"head"`
	Options    *openAPIOp `yaml:"options"`
	Trace      *openAPIOp `yaml:"trace"`
}

// operations returns the item's operations by lower-case method.
func (p openAPIPathItem) operations() map[string]*openAPIOp {
	all := map[string]*openAPIOp{"get": p.Get, "put": p.Put, "post": p.Post, "delete": p.Delete,
		"patch": p.Patch, "head": p.Head, "options": p.Options, "trace": p.Trace}
	for m, op := range all {
		if op == nil {
			delete(all, m)
		}
	}
	return all
}

// openAPIOp is one operation.
type openAPIOp struct {
	OperationID string                 `yaml:"operationId"`
	Security    *[]map[string][]string `yaml:"security"`
	Responses   map[string]any         `yaml:"responses"`
	RequestBody map[string]any         `yaml:"requestBody"`
}

func loadOpenAPI(t *testing.T) (openAPIDoc, []byte) {
	t.Helper()
	raw, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", openAPIPath, err)
	}
	return doc, raw
}

// documented returns the document's operations as "METHOD /path".
func (d openAPIDoc) documented() []string {
	var out []string
	for path, item := range d.Paths {
		for method := range item.operations() {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIMatchesRoutes: docs/reference/admin-api.yaml documents every
// route the admin server registers, and nothing else.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	served := slices.Sorted(slices.Values(Routes()))
	documented := doc.documented()
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("the server registers %q but %s does not document it", r, openAPIPath)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("%s documents %q but the server does not register it", openAPIPath, r)
		}
	}
}

// TestOpenAPIDocumentShape checks the document's OpenAPI 3 structure: every
// operation has an operationId and responses, bodies on the methods that
// take one, the bearer scheme, the guard's 421 and 403 everywhere, 401 on
// every route but the health checks, 415 wherever a body is sent, and
// every local $ref resolves.
func TestOpenAPIDocumentShape(t *testing.T) {
	doc, raw := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Info.Title == "" || doc.Info.Version == "" {
		t.Fatalf("openapi = %q, info = %+v: want an OpenAPI 3 document with a title and version", doc.OpenAPI, doc.Info)
	}
	if s := doc.Components.SecuritySchemes["adminToken"]; s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("securitySchemes.adminToken = %+v, want http bearer", s)
	}
	if len(doc.Security) != 1 || doc.Security[0]["adminToken"] == nil {
		t.Errorf("top-level security = %v, want [{adminToken: []}]", doc.Security)
	}
	ids := map[string]bool{}
	for path, item := range doc.Paths {
		for method, op := range item.operations() {
			where := strings.ToUpper(method) + " " + path
			checkOperation(t, where, method, op)
			if ids[op.OperationID] {
				t.Errorf("%s: operationId %q is used twice", where, op.OperationID)
			}
			ids[op.OperationID] = true
		}
	}
	checkRefs(t, doc, string(raw))
}

func checkOperation(t *testing.T, where, method string, op *openAPIOp) {
	t.Helper()
	if op.OperationID == "" || len(op.Responses) == 0 {
		t.Errorf("%s: want an operationId and responses", where)
	}
	public := op.Security != nil && len(*op.Security) == 0
	want := []string{"403", "421"}
	if !public {
		want = append(want, "401")
	}
	switch method {
	case "post", "put", "patch":
		if op.RequestBody == nil {
			t.Errorf("%s: no requestBody", where)
		}
		want = append(want, "415", "400")
	}
	for _, code := range want {
		if op.Responses[code] == nil {
			t.Errorf("%s: no %s response", where, code)
		}
	}
	ok := false
	for code := range op.Responses {
		ok = ok || (len(code) == 3 && code[0] == '2')
	}
	if !ok {
		t.Errorf("%s: no 2xx response", where)
	}
	if public != (where == "GET /healthz" || where == "GET /readyz") {
		t.Errorf("%s: security: [] (no token) is for /healthz and /readyz only", where)
	}
}

// checkRefs fails on a "#/components/<kind>/<name>" reference to nothing.
func checkRefs(t *testing.T, doc openAPIDoc, raw string) {
	t.Helper()
	kinds := map[string]map[string]any{"schemas": doc.Components.Schemas, "responses": doc.Components.Responses}
	for _, part := range strings.Split(raw, "#/components/")[1:] {
		ref := part[:strings.IndexAny(part, `"'`)]
		kind, name, _ := strings.Cut(ref, "/")
		if kind == "parameters" {
			continue
		}
		if _, ok := kinds[kind][name]; !ok {
			t.Errorf("$ref #/components/%s resolves to nothing", ref)
		}
	}
}

// TestRoutesAreServed: every recorded pattern reaches a handler (the
// record and the mux cannot disagree).
func TestRoutesAreServed(t *testing.T) {
	s := NewServer(nil, nil, nil, Access{}, nil)
	mux := s.routes()
	for _, p := range mux.patterns {
		method, path, _ := strings.Cut(p, " ")
		path = strings.NewReplacer("{id}", "x", "{backend}", "x").Replace(path)
		req, _ := http.NewRequest(method, path, nil)
		if _, pattern := mux.Handler(req); pattern != p {
			t.Errorf("%s %s is served by %q, want %q", method, path, pattern, p)
		}
	}
}
