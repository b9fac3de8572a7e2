package policy

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	goccy "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
	"go.yaml.in/yaml/v3"

	"github.com/tollgate/tollgate/internal/parallel"
)

// Load parses files, in order, into one Policy: their lists are
// concatenated, so an index in a diagnostic path counts across files.
//
// Load checks the shape strictly: YAML syntax (one error per broken file;
// the other files are still read), unknown fields (with the allowed ones and
// a did-you-mean), wrong value types, duplicate keys, empty strings, missing
// required fields and the version of each file. It does not check values;
// that is Validate's job.
//
// The Policy is never nil: it holds whatever could be read, and remembers the
// position of every field and which fields failed, so that Validate can
// point at file:line:col and stay quiet about what Load already reported.
//
// Before parsing, Load checks each file's bytes against DefaultLimits (size,
// nesting depth, node count, scalar size, list length) and that it is UTF-8
// text without NUL bytes; a file that fails is reported and not parsed.
func Load(files []File) (*Policy, Diagnostics) {
	return loadLimited(files, DefaultLimits())
}

func loadLimited(files []File, lim Limits) (*Policy, Diagnostics) {
	return loadSpread(files, lim, parallel.Workers, nil)
}

// loadSpread is loadLimited loading a long routes list over workers(n,
// minItems) goroutines (load_routes.go; tests force the parallel path with
// it), parsing through cache (nil for none; see ParseCache).
func loadSpread(files []File, lim Limits, workers func(n, minItems int) int, cache *ParseCache) (*Policy, Diagnostics) {
	p := &Policy{src: newSource()}
	refused := checkLimits(files, lim)
	parsed := parseFiles(files, refused, cache)
	s := newSchema()
	var ds Diagnostics
	for i, f := range files {
		p.src.files = append(p.src.files, f.Name)
		if refused[i] != nil {
			p.src.partial = true
			ds = append(ds, *refused[i])
			continue
		}
		ds = append(ds, loadFile(p, s, f, parsed[i], workers)...)
	}
	return p, ds
}

type parseResult struct {
	docs []*yaml.Node // one body per document; nil for an empty one
	// anchors is set when a node has an anchor: an alias may then read a
	// part of the tree twice, so the loader must not release any of it.
	anchors bool
	// lazy builds the lazyNode items of the routes list (nil: none).
	lazy lazyItems
	err  error
}

// parseFiles parses every file not refused, concurrently: parsing
// dominates Load's cost. A large file may be parsed by several goroutines
// (see parseYAML): as many as its share of the bytes to parse is of
// GOMAXPROCS, rounded up. With a cache, the parts of the files it takes
// that did not change since its last build are not parsed again, and the
// cache then holds this build's parts.
func parseFiles(files []File, refused []*Diagnostic, cache *ParseCache) []parseResult {
	sess := cache.begin()
	defer sess.commit()
	if sess != nil {
		sess.lazy = true // the loader reads lazyNode items (loadItem)
	}
	out := make([]parseResult, len(files))
	procs := runtime.GOMAXPROCS(0)
	sem := make(chan struct{}, procs)
	total := 0
	for i, f := range files {
		if refused[i] == nil {
			total += len(f.Content)
		}
	}
	var wg sync.WaitGroup
	for i, f := range files {
		if refused[i] != nil {
			continue
		}
		workers := max(1, (procs*len(f.Content)+total-1)/max(total, 1))
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = parseYAML(f.Content, workers, sess)
		})
	}
	wg.Wait()
	return out
}

func loadFile(p *Policy, s *schema, f File, res parseResult, workers func(n, minItems int) int) Diagnostics {
	name := f.Name
	if res.err != nil {
		p.src.partial = true
		return Diagnostics{syntaxDiagnostic(name, f.Content, res.err)}
	}
	l := &loader{p: p, schema: s, file: name, keepTree: res.anchors, spread: workers, lazy: res.lazy}
	empty := true
	for _, body := range res.docs {
		if body == nil || isEmptyDocument(body) {
			continue
		}
		empty = false
		l.anchors = make(map[string]*yaml.Node)
		mapping(l, "", body, p, s.document)
	}
	if empty {
		l.diags = append(l.diags, Diagnostic{
			Severity: SeverityWarning,
			Summary:  "file has no policy content",
			Detail:   "add policy content or remove the file",
			Range:    Range{File: name, Line: 1, Column: 1},
		})
	}
	return l.diags
}

// syntaxDiagnostic reports a file the YAML parser refused. It words the
// error as goccy/go-yaml does, when that parser refuses the file too: it
// points at the offending token (line and column), where yaml.v3 names
// only the line of the enclosing collection. Only a broken file pays for
// this second parse.
func syntaxDiagnostic(file string, content []byte, err error) Diagnostic {
	d := Diagnostic{
		Severity: SeverityError,
		Detail:   "fix the YAML syntax; nothing else in this file was checked",
		Range:    Range{File: file},
	}
	if msg, r, ok := goccySyntaxError(file, content); ok {
		d.Summary, d.Range = "invalid YAML: "+msg, r
		return d
	}
	msg, line := syntaxError(err)
	d.Summary = "invalid YAML: " + msg
	d.Range.Line = line
	return d
}

// goccySyntaxError returns goccy/go-yaml's syntax error for content, if
// that parser refuses it.
func goccySyntaxError(file string, content []byte) (msg string, r Range, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_, err := goccyparser.ParseBytes(content, 0, goccyparser.AllowDuplicateMapKey())
	var yerr goccy.Error
	if !errors.As(err, &yerr) {
		return "", Range{}, false
	}
	r = Range{File: file}
	if tk := yerr.GetToken(); tk != nil && tk.Position != nil {
		r.Line, r.Column = tk.Position.Line, tk.Position.Column
	}
	return yerr.GetMessage(), r, true
}

// isEmptyDocument reports whether a document's body is nothing at all
// (not even an explicit null).
func isEmptyDocument(body *yaml.Node) bool {
	return body.Kind == yaml.ScalarNode && body.Style == 0 && body.Value == ""
}

// loader walks one file's AST into the Policy.
type loader struct {
	p       *Policy
	schema  *schema
	file    string
	anchors map[string]*yaml.Node // anchors of the current document
	// keepTree is set when the file has anchors: appendList then leaves
	// the tree whole (see there).
	keepTree bool
	diags    Diagnostics
	// spread says how many goroutines load n list items (load_routes.go).
	spread func(n, minItems int) int
	// lazy builds the routes list's lazyNode items (loadItem).
	lazy lazyItems
	// paths builds the paths of the values read (entry, loadItem).
	paths pathArena
}

// field is one allowed key of a mapping that loads into a T.
type field[T any] struct {
	name     string
	required bool
	hint     string // how to fix a missing required field
	load     func(l *loader, dst *T, path string, n *yaml.Node)
}

// schema holds the allowed fields of every mapping in a policy. It is built
// once per Load, so walking a mapping allocates no field tables.
type schema struct {
	document []field[Policy]
	gateway  []field[Gateway]
	listener []field[Listener]
	route    []field[Route]
	match    []field[Match]
	header   []field[HeaderMatch]
	rewrite  []field[Rewrite]
	backend  []field[Backend]
	auth     authSchema
	limits   rateLimitSchema
	obs      observabilitySchema
	tls      tlsSchema
	traffic  trafficSchema
	http     httpSchema
}

func newSchema() *schema {
	return &schema{
		document: documentFields(),
		gateway:  gatewayFields(),
		listener: listenerFields(),
		route:    routeFields(),
		match:    matchFields(),
		header:   headerFields(),
		rewrite:  rewriteFields(),
		backend:  backendFields(),
		auth:     newAuthSchema(),
		limits:   newRateLimitSchema(),
		obs:      newObservabilitySchema(),
		tls:      newTLSSchema(),
		traffic:  newTrafficSchema(),
		http:     newHTTPSchema(),
	}
}

func documentFields() []field[Policy] {
	return []field[Policy]{
		{name: "version", required: true, hint: "add `version: 1` at the top of the file", load: loadVersion},
		{name: "gateways", load: func(l *loader, p *Policy, path string, n *yaml.Node) {
			p.Gateways = appendList(l, path, n, p.Gateways, l.schema.gateway)
		}},
		{name: "routes", load: func(l *loader, p *Policy, path string, n *yaml.Node) {
			p.Routes = appendRoutes(l, path, n, p.Routes) // load_routes.go
		}},
		{name: "backends", load: func(l *loader, p *Policy, path string, n *yaml.Node) {
			p.Backends = appendList(l, path, n, p.Backends, l.schema.backend)
		}},
		{name: "auth", load: loadAuth},
		{name: "rateLimits", load: loadRateLimits},
		{name: "observability", load: loadObservability},
	}
}

func loadVersion(l *loader, p *Policy, path string, n *yaml.Node) {
	v, ok := l.integer(path, n)
	if !ok {
		return
	}
	if v != KnownVersion {
		l.fail(path, n, fmt.Sprintf("unsupported version %d", v),
			fmt.Sprintf("set `version: %d`, the only version this Tollgate knows", KnownVersion))
		return
	}
	p.Version = v
}

func gatewayFields() []field[Gateway] {
	return append([]field[Gateway]{
		{name: "name", required: true, hint: "add `name: <gateway name>`", load: func(l *loader, g *Gateway, path string, n *yaml.Node) {
			g.Name = l.str(path, n)
		}},
		{name: "listeners", required: true, hint: "add `listeners:` with at least one listener", load: func(l *loader, g *Gateway, path string, n *yaml.Node) {
			g.Listeners = appendList(l, path, n, []Listener{}, l.schema.listener)
		}},
		{name: "auth", load: func(l *loader, g *Gateway, path string, n *yaml.Node) {
			g.Auth = &GatewayAuth{}
			mapping(l, path, n, g.Auth, l.schema.auth.gateway)
		}},
		{name: "redirectHTTPS", load: func(l *loader, g *Gateway, path string, n *yaml.Node) {
			g.RedirectHTTPS = l.boolean(path, n)
		}},
		{name: "hsts", load: loadGatewayHSTS},
	}, gatewayHTTPFields()...)
}

func listenerFields() []field[Listener] {
	return []field[Listener]{
		{name: "name", required: true, hint: "add `name: <listener name>`", load: func(l *loader, ln *Listener, path string, n *yaml.Node) {
			ln.Name = l.str(path, n)
		}},
		{name: "port", required: true, hint: "add `port: <1..65535>`", load: func(l *loader, ln *Listener, path string, n *yaml.Node) {
			ln.Port, _ = l.integer(path, n)
		}},
		{name: "address", load: func(l *loader, ln *Listener, path string, n *yaml.Node) {
			ln.Address = l.str(path, n)
		}},
		{name: "tls", load: loadListenerTLS},
	}
}

func routeFields() []field[Route] {
	return append([]field[Route]{
		{name: "name", required: true, hint: "add `name: <route name>`", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.Name = l.str(path, n)
		}},
		{name: "gateway", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.Gateway = l.str(path, n)
		}},
		{name: "match", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			mapping(l, path, n, &r.Match, l.schema.match)
		}},
		{name: "backend", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.Backend = l.str(path, n)
		}},
		{name: "rewrite", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.Rewrite = &Rewrite{}
			mapping(l, path, n, r.Rewrite, l.schema.rewrite)
		}},
		{name: "timeout", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.Timeout = l.str(path, n)
		}},
		{name: "auth", load: loadRouteAuth},
		{name: "rateLimit", load: loadRouteRateLimit},
		{name: "accessLog", load: loadRouteAccessLog},
		{name: "transform", load: loadRouteTransform},
	}, append(routeTrafficFields(), routeHTTPFields()...)...)
}

func matchFields() []field[Match] {
	return []field[Match]{
		{name: "hosts", load: func(l *loader, m *Match, path string, n *yaml.Node) {
			m.Hosts = l.strings(path, n)
		}},
		{name: "path", load: func(l *loader, m *Match, path string, n *yaml.Node) {
			m.Path = l.str(path, n)
		}},
		{name: "pathPrefix", load: func(l *loader, m *Match, path string, n *yaml.Node) {
			m.PathPrefix = l.str(path, n)
		}},
		{name: "pathRegex", load: func(l *loader, m *Match, path string, n *yaml.Node) {
			m.PathRegex = l.str(path, n)
		}},
		{name: "methods", load: func(l *loader, m *Match, path string, n *yaml.Node) {
			m.Methods = l.strings(path, n)
		}},
		{name: "headers", load: func(l *loader, m *Match, path string, n *yaml.Node) {
			m.Headers = appendList(l, path, n, []HeaderMatch{}, l.schema.header)
		}},
	}
}

func headerFields() []field[HeaderMatch] {
	return []field[HeaderMatch]{
		{name: "name", required: true, hint: "add `name: <header name>`", load: func(l *loader, h *HeaderMatch, path string, n *yaml.Node) {
			h.Name = l.str(path, n)
		}},
		{name: "exact", load: func(l *loader, h *HeaderMatch, path string, n *yaml.Node) {
			h.Exact = l.str(path, n)
		}},
		{name: "prefix", load: func(l *loader, h *HeaderMatch, path string, n *yaml.Node) {
			h.Prefix = l.str(path, n)
		}},
		{name: "regex", load: func(l *loader, h *HeaderMatch, path string, n *yaml.Node) {
			h.Regex = l.str(path, n)
		}},
		{name: "present", load: func(l *loader, h *HeaderMatch, path string, n *yaml.Node) {
			h.Present = l.boolean(path, n)
		}},
	}
}

func rewriteFields() []field[Rewrite] {
	return append([]field[Rewrite]{
		{name: "pathPrefix", load: func(l *loader, rw *Rewrite, path string, n *yaml.Node) {
			rw.PathPrefix = l.str(path, n)
		}},
	}, rewriteHTTPFields()...)
}

func backendFields() []field[Backend] {
	return append([]field[Backend]{
		{name: "name", required: true, hint: "add `name: <backend name>`", load: func(l *loader, b *Backend, path string, n *yaml.Node) {
			b.Name = l.str(path, n)
		}},
		{name: "endpoints", load: loadEndpoints},
		{name: "loadBalancing", load: loadLoadBalancing},
		{name: "connectTimeout", load: func(l *loader, b *Backend, path string, n *yaml.Node) {
			b.ConnectTimeout = l.str(path, n)
		}},
		{name: "tls", load: loadBackendTLS},
	}, backendTrafficFields()...)
}

// fail reports an error at n and marks path as failed so Validate does not
// report it again. A failure that may hide a name makes the policy partial.
func (l *loader) fail(path string, n *yaml.Node, summary, detail string) {
	l.p.src.markFailed(path)
	if hidesNames(path) {
		l.p.src.partial = true
	}
	l.errorAt(path, l.rangeOf(n), summary, detail)
}

func (l *loader) errorAt(path string, r Range, summary, detail string) {
	l.diags = append(l.diags, Diagnostic{
		Severity: SeverityError, Summary: summary, Detail: detail, Path: path, Range: r,
	})
}

// record remembers where path's value is.
func (l *loader) record(path string, n *yaml.Node) {
	r := l.rangeOf(n)
	l.p.src.add(path, r.Line, r.Column)
}

// hidesNames reports whether a failure at path may drop a gateway, route or
// backend name: a whole top-level list, one of its entries, or its name.
func hidesNames(path string) bool {
	top, rest, _ := strings.Cut(path, "[")
	switch top {
	case "", "gateways", "routes", "backends":
	default:
		return false
	}
	_, after, _ := strings.Cut(rest, "]")
	return after == "" || after == ".name"
}
