package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/internal/upstream"
)

// featuresPolicy has two gateways on one control plane: "public" (the
// connection's peer is the client) and "lb" (one trusted proxy in front).
// Format arguments: public port, lb port, the upstream address.
const featuresPolicy = `version: 1
auth: {apiKeys: {}}
gateways:
  - name: public
    listeners: [{name: http, port: %[1]d, address: 127.0.0.1}]
    headers:
      request: {set: {x-client-ip: "%%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%%"}}
      response: {add: {x-gateway: public}}
  - name: lb
    listeners: [{name: http, port: %[2]d, address: 127.0.0.1}]
    edge: {xffTrustedHops: 1}
    headers:
      request: {set: {x-client-ip: "%%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%%"}}
routes:
  - name: headers
    match: {pathPrefix: /headers}
    backend: app
    auth: none
    headers:
      request: {add: {x-added: one}, set: {x-set: fixed}, remove: [x-drop]}
      response: {add: {x-resp-added: "yes"}, set: {cache-control: no-store}, remove: [x-upstream-drop]}
  - name: regex
    match: {pathPrefix: /regex/}
    backend: app
    auth: none
    rewrite: {pathRegex: {pattern: "^/regex/([a-z]+)/([0-9]+)$", substitution: '/v2/\2/\1'}, host: internal.example:8080}
  - name: autohost
    match: {pathPrefix: /autohost}
    backend: app
    auth: none
    rewrite: {hostFromBackend: true}
  - name: query
    match: {pathPrefix: /query}
    backend: app
    auth: none
    query: {add: {source: gateway}, set: {v: "2"}, remove: [debug]}
  - name: admin
    match: {pathPrefix: /admin}
    auth: none
    directResponse: {status: 403, body: "forbidden\n"}
  - {name: public, match: {pathPrefix: /public}, backend: app, auth: none}
  - name: old
    match: {pathPrefix: /old}
    auth: none
    redirect: {scheme: https, host: new.example.com, pathPrefix: /new, status: 308}
  - name: cors
    match: {pathPrefix: /cors}
    backend: app
    auth: none
    cors: &cors
      allowOrigins: ["https://app.example.com"]
      allowOriginRegexes: ['https://[a-z]+\.example\.org']
      allowMethods: [GET, PUT]
      allowHeaders: [x-custom]
      exposeHeaders: [x-upstream]
      allowCredentials: true
      maxAge: 10m
  - {name: cors-private, match: {pathPrefix: /private}, backend: app, cors: *cors}
  - {name: no-cors-private, match: {pathPrefix: /nocors}, backend: app}
  - name: compress
    match: {pathPrefix: /compress}
    backend: app
    auth: none
    compression: {minLength: 1024, contentTypes: [application/json, text/plain]}
  - name: lua
    match: {pathPrefix: /lua}
    backend: app
    auth: none
    lua: |
      function envoy_on_request(request_handle)
        request_handle:headers():add("x-lua-req", "hello")
      end
      function envoy_on_response(response_handle)
        response_handle:headers():add("x-lua-resp", "world")
      end
  - name: lua-broken
    match: {pathPrefix: /lua-broken}
    backend: app
    auth: none
    lua: |
      function envoy_on_request(request_handle)
        request_handle:nosuchmethod()
      end
backends:
  - {name: app, endpoints: [%[3]q]}
`

// featureUpstream is the test's upstream: it echoes requests as JSON like the
// demo upstream, marks its responses with a Server and an x-envoy-* header
// (which Envoy must strip) and x-upstream-drop (which a route removes), and
// answers /compress?size=N&ct=T with N bytes of type T.
type featureUpstream struct {
	hits atomic.Int64
	addr string
}

func startFeatureUpstream(t *testing.T) *featureUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &featureUpstream{addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(a.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return a
}

func (a *featureUpstream) serve(w http.ResponseWriter, r *http.Request) {
	a.hits.Add(1)
	h := w.Header()
	h.Set("Server", "upstream/1.0")
	h.Set("X-Envoy-Upstream-Secret", "internal")
	h.Set("X-Upstream-Drop", "1")
	h.Set("X-Upstream", "app")
	if size := r.URL.Query().Get("size"); size != "" {
		n, _ := strconv.Atoi(size)
		h.Set("Content-Type", r.URL.Query().Get("ct"))
		_, _ = io.WriteString(w, strings.Repeat("tollgate compresses text ", n/25+1)[:n])
		return
	}
	e := upstream.Echo{Upstream: "app", Method: r.Method, Path: r.URL.Path, Host: r.Host, Query: r.URL.RawQuery,
		Args: r.URL.Query(), Headers: map[string]string{}}
	for k, v := range r.Header {
		e.Headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	h.Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(e)
}

// featureStack is the stack of TestHTTPFeatures*, TestCORS*, TestCompression*, TestEdgeDefaults: both gateways' Envoys.
type featureStack struct {
	s           *stack
	publicEnvoy *harness.Envoy
	app         *featureUpstream
	public, lb  string // base URLs
	publicAddr  string
	client      *harness.HTTPClient
	rawClient   *http.Client // no transparent gzip
}

func startFeatureStack(t *testing.T) *featureStack {
	t.Helper()
	app := startFeatureUpstream(t)
	pp, lp := harness.FreePort(t), harness.FreePort(t)
	s := startStack(t, fmt.Sprintf(featuresPolicy, pp, lp, app.addr))
	pe := s.envoy("public", "features-public", "delta")
	s.envoy("lb", "features-lb", "delta")
	return &featureStack{
		s: s, publicEnvoy: pe, app: app, public: fmt.Sprintf("http://127.0.0.1:%d", pp), lb: fmt.Sprintf("http://127.0.0.1:%d", lp),
		publicAddr: fmt.Sprintf("127.0.0.1:%d", pp), client: harness.NewHTTPClient(false),
		rawClient: &http.Client{Transport: &http.Transport{DisableCompression: true, DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// echo sends a request and decodes the upstream's echo; it fails the test
// unless the status is 200.
func (ts *featureStack) echo(t *testing.T, method, url string, headers map[string]string) (*harness.HTTPResponse, upstream.Echo) {
	t.Helper()
	resp, err := ts.client.Do(testCtx(t, 10*time.Second), method, url, "", headers, nil)
	if err != nil {
		t.Fatal(err)
	}
	var e upstream.Echo
	if resp.Status != http.StatusOK {
		t.Fatalf("%s %s: status %d, body %s", method, url, resp.Status, resp.Body)
	}
	if err := resp.JSON(&e); err != nil {
		t.Fatal(err)
	}
	return resp, e
}

func TestHTTPFeaturesThroughEnvoy(t *testing.T) {
	ts := startFeatureStack(t)
	t.Run("request and response headers", func(t *testing.T) { checkHeaders(t, ts) })
	t.Run("internal headers removed from local replies", func(t *testing.T) { checkLocalReplyHeaders(t, ts) })
	t.Run("regex path rewrite and host rewrite", func(t *testing.T) { checkRewrites(t, ts) })
	t.Run("host rewrite from the backend", func(t *testing.T) { checkAutoHostRewrite(t, ts) })
	t.Run("query parameters", func(t *testing.T) { checkQuery(t, ts) })
	t.Run("direct response and redirect", func(t *testing.T) { checkAnswers(t, ts) })
	t.Run("lua", func(t *testing.T) { checkLua(t, ts) })
	t.Run("a push with a Lua syntax error is refused by Envoy and rolled back", func(t *testing.T) { checkRejectedLuaPush(t, ts) })
}

func checkHeaders(t *testing.T, ts *featureStack) {
	resp, e := ts.echo(t, "GET", ts.public+"/headers", map[string]string{
		"x-drop": "secret", "x-set": "client", "x-added": "client", "x-request-id": "client-chosen",
	})
	want := map[string]string{"x-added": "client,one", "x-set": "fixed", "x-client-ip": "127.0.0.1"}
	for k, v := range want {
		if got := e.Headers[k]; got != v {
			t.Errorf("upstream saw %s = %q, want %q", k, got, v)
		}
	}
	if _, ok := e.Headers["x-drop"]; ok {
		t.Errorf("upstream saw x-drop, which the route removes")
	}
	if id := e.Headers["x-request-id"]; len(id) != 36 || id == "client-chosen" {
		t.Errorf("upstream saw x-request-id %q, want a UUID generated by Envoy", id)
	}
	if resp.Header.Get("x-request-id") != e.Headers["x-request-id"] {
		t.Errorf("response x-request-id %q, upstream saw %q", resp.Header.Get("x-request-id"), e.Headers["x-request-id"])
	}
	for k, v := range map[string]string{"x-resp-added": "yes", "cache-control": "no-store", "x-gateway": "public"} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("response %s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"server", "x-upstream-drop", "x-envoy-upstream-secret", "x-envoy-upstream-service-time"} {
		if got := resp.Header.Values(k); len(got) > 0 {
			t.Errorf("response has %s: %q, want it removed", k, got)
		}
	}
}

func checkLocalReplyHeaders(t *testing.T, ts *featureStack) {
	resp, err := ts.client.Get(testCtx(t, 10*time.Second), ts.public+"/nowhere", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 404 || resp.Header.Get("server") != "" {
		t.Errorf("GET /nowhere = %d with server %q, want 404 without server", resp.Status, resp.Header.Get("server"))
	}
}

func checkRewrites(t *testing.T, ts *featureStack) {
	_, e := ts.echo(t, "GET", ts.public+"/regex/users/42", nil)
	if e.Path != "/v2/42/users" || e.Host != "internal.example:8080" {
		t.Errorf("upstream saw path %q host %q, want /v2/42/users on internal.example:8080", e.Path, e.Host)
	}
}

func checkAutoHostRewrite(t *testing.T, ts *featureStack) {
	_, e := ts.echo(t, "GET", ts.public+"/autohost", nil)
	if e.Host != ts.app.addr {
		t.Errorf("upstream saw host %q, want the endpoint %q", e.Host, ts.app.addr)
	}
}

func checkQuery(t *testing.T, ts *featureStack) {
	_, e := ts.echo(t, "GET", ts.public+"/query?debug=1&keep=yes&v=1", map[string]string{"x-user-id": "forged"})
	want := map[string][]string{"source": {"gateway"}, "v": {"2"}, "keep": {"yes"}}
	if fmt.Sprint(e.Args) != fmt.Sprint(want) {
		t.Errorf("upstream saw query %q (%v), want %v", e.Query, e.Args, want)
	}
	// The route's query mutations add to the header mutation filter's
	// own: the identity headers are still stripped.
	if v, ok := e.Headers["x-user-id"]; ok {
		t.Errorf("upstream saw a client's x-user-id %q on a route with query mutations", v)
	}
}

func checkAnswers(t *testing.T, ts *featureStack) {
	before := ts.app.hits.Load()
	resp, err := ts.client.Get(testCtx(t, 10*time.Second), ts.public+"/admin/users", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 403 || string(resp.Body) != "forbidden\n" {
		t.Errorf("direct response = %d %q, want 403 \"forbidden\\n\"", resp.Status, resp.Body)
	}
	resp, err = ts.client.Get(testCtx(t, 10*time.Second), ts.public+"/old/page?x=1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if loc := resp.Header.Get("location"); resp.Status != 308 || loc != "https://new.example.com/new/page?x=1" {
		t.Errorf("redirect = %d to %q, want 308 to https://new.example.com/new/page?x=1", resp.Status, loc)
	}
	if n := ts.app.hits.Load() - before; n != 0 {
		t.Errorf("the upstream got %d requests for routes without a backend", n)
	}
}

func checkLua(t *testing.T, ts *featureStack) {
	resp, e := ts.echo(t, "GET", ts.public+"/lua", nil)
	if e.Headers["x-lua-req"] != "hello" || resp.Header.Get("x-lua-resp") != "world" {
		t.Errorf("lua: upstream x-lua-req %q, response x-lua-resp %q", e.Headers["x-lua-req"], resp.Header.Get("x-lua-resp"))
	}
	resp, e = ts.echo(t, "GET", ts.public+"/public", nil)
	if e.Headers["x-lua-req"] != "" || resp.Header.Get("x-lua-resp") != "" {
		t.Errorf("lua ran on a route without a script")
	}
	// A run-time error in a script is logged by Envoy, and the request
	// goes on without the script's changes.
	if _, e := ts.echo(t, "GET", ts.public+"/lua-broken", nil); e.Path != "/lua-broken" {
		t.Errorf("run-time Lua error: upstream saw %q", e.Path)
	}
}

func checkRejectedLuaPush(t *testing.T, ts *featureStack) {
	before := ts.s.status().Version
	bad := strings.Replace(fmt.Sprintf(featuresPolicy, 1, 2, ts.app.addr), `add("x-lua-req", "hello")`, `add("x-lua-req", "hello"`, 1)
	bad = strings.Replace(bad, "port: 1,", "port: "+strings.TrimPrefix(ts.publicAddr, "127.0.0.1:")+",", 1)
	bad = strings.Replace(bad, "port: 2,", "port: "+strings.TrimPrefix(ts.lb, "http://127.0.0.1:")+",", 1)
	stdout, stderr, code := ts.s.run("push", writeFile(t, "bad-lua.yaml", bad))
	out := stdout + stderr
	t.Logf("push: exit %d\n%s", code, out)
	if code != 1 {
		t.Errorf("push of a broken Lua script: exit %d, want 1", code)
	}
	if !strings.Contains(out, "script load error") {
		t.Errorf("push output does not carry Envoy's reason")
	}
	if after := ts.s.status().Version; after != before {
		t.Errorf("served version %s after a rejected push, want %s", after, before)
	}
	if _, e := ts.echo(t, "GET", ts.public+"/lua", nil); e.Headers["x-lua-req"] != "hello" {
		t.Errorf("after the rejected push the old script no longer runs")
	}
}

func TestCORSThroughEnvoy(t *testing.T) {
	ts := startFeatureStack(t)
	preflight := func(t *testing.T, path, origin string) *harness.HTTPResponse {
		t.Helper()
		resp, err := ts.client.Do(testCtx(t, 10*time.Second), "OPTIONS", ts.public+path, "", map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-custom",
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, path := range []string{"/cors", "/private"} {
		t.Run("preflight answered by envoy on "+path, func(t *testing.T) {
			before := ts.app.hits.Load()
			resp := preflight(t, path, "https://app.example.com")
			want := map[string]string{
				"access-control-allow-origin":      "https://app.example.com",
				"access-control-allow-methods":     "GET,PUT",
				"access-control-allow-headers":     "x-custom",
				"access-control-allow-credentials": "true",
				"access-control-max-age":           "600",
			}
			if resp.Status != 200 {
				t.Errorf("preflight status %d, want 200", resp.Status)
			}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("preflight %s = %q, want %q", k, got, v)
				}
			}
			if n := ts.app.hits.Load() - before; n != 0 {
				t.Errorf("the upstream got %d requests for a preflight", n)
			}
		})
	}
	t.Run("origin regex", func(t *testing.T) {
		if got := preflight(t, "/cors", "https://shop.example.org").Header.Get("access-control-allow-origin"); got != "https://shop.example.org" {
			t.Errorf("allow-origin = %q for an origin matching the regex", got)
		}
	})
	t.Run("disallowed origin gets no CORS headers", func(t *testing.T) {
		before := ts.app.hits.Load()
		resp := preflight(t, "/cors", "https://evil.example.net")
		if got := resp.Header.Get("access-control-allow-origin"); got != "" {
			t.Errorf("preflight from a disallowed origin got allow-origin %q", got)
		}
		if n := ts.app.hits.Load() - before; n != 0 {
			t.Errorf("a disallowed preflight reached the upstream (%d requests)", n)
		}
		r, _ := ts.echo(t, "GET", ts.public+"/cors", map[string]string{"Origin": "https://evil.example.net"})
		if got := r.Header.Get("access-control-allow-origin"); got != "" {
			t.Errorf("actual request from a disallowed origin got allow-origin %q", got)
		}
	})
	t.Run("actual request", func(t *testing.T) {
		resp, _ := ts.echo(t, "GET", ts.public+"/cors", map[string]string{"Origin": "https://app.example.com"})
		if resp.Header.Get("access-control-allow-origin") != "https://app.example.com" ||
			resp.Header.Get("access-control-expose-headers") != "x-upstream" {
			t.Errorf("actual response CORS headers: allow-origin %q expose %q", resp.Header.Get("access-control-allow-origin"),
				resp.Header.Get("access-control-expose-headers"))
		}
	})
	t.Run("a preflight to a protected route without cors needs credentials", func(t *testing.T) {
		before := ts.app.hits.Load()
		if resp := preflight(t, "/nocors", "https://app.example.com"); resp.Status != 401 {
			t.Errorf("preflight to /nocors without credentials = %d, want 401", resp.Status)
		}
		if n := ts.app.hits.Load() - before; n != 0 {
			t.Errorf("a preflight to a protected route without cors reached the upstream (%d requests)", n)
		}
	})
	t.Run("private route still needs credentials", func(t *testing.T) {
		resp, err := ts.client.Get(testCtx(t, 10*time.Second), ts.public+"/private", "", map[string]string{"Origin": "https://app.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 401 {
			t.Errorf("GET /private without credentials = %d, want 401", resp.Status)
		}
	})
}

func TestCompressionThroughEnvoy(t *testing.T) {
	ts := startFeatureStack(t)
	decoders := map[string]func(io.Reader) (io.Reader, error){
		"gzip": func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) },
		"br":   func(r io.Reader) (io.Reader, error) { return brotli.NewReader(r), nil },
	}
	tests := []struct {
		name, accept, ct string
		size             int
		wantEncoding     string
	}{
		{"gzip", "gzip", "application/json", 4000, "gzip"},
		{"brotli", "br", "text/plain", 4000, "br"},
		{"brotli preferred on a tie", "gzip, br", "application/json", 4000, "br"},
		{"q-values honoured", "gzip;q=1.0, br;q=0.5", "application/json", 4000, "gzip"},
		{"content type with parameters", "gzip", "application/json; charset=utf-8", 4000, "gzip"},
		{"below the minimum length", "gzip, br", "application/json", 500, ""},
		{"no accept-encoding", "", "application/json", 4000, ""},
		{"other content type", "gzip, br", "image/png", 4000, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(testCtx(t, 10*time.Second), "GET",
				fmt.Sprintf("%s/compress?size=%d&ct=%s", ts.public, tt.size, url.QueryEscape(tt.ct)), nil)
			if tt.accept != "" {
				req.Header.Set("Accept-Encoding", tt.accept)
			}
			resp, err := ts.rawClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			enc := resp.Header.Get("Content-Encoding")
			if enc != tt.wantEncoding {
				t.Fatalf("content-encoding %q, want %q", enc, tt.wantEncoding)
			}
			body := raw
			if enc != "" {
				r, err := decoders[enc](bytes.NewReader(raw))
				if err == nil {
					body, err = io.ReadAll(r)
				}
				if err != nil {
					t.Fatalf("decode %s: %v", enc, err)
				}
				if len(raw) >= len(body) {
					t.Errorf("%s body is %d bytes for %d plain", enc, len(raw), len(body))
				}
			}
			want := strings.Repeat("tollgate compresses text ", tt.size/25+1)[:tt.size]
			if string(body) != want {
				t.Errorf("body differs from the upstream's (%d bytes, want %d)", len(body), len(want))
			}
		})
	}
	t.Run("other routes are not compressed", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(testCtx(t, 10*time.Second), "GET", ts.public+"/public?pad="+strings.Repeat("x", 3000), nil)
		req.Header.Set("Accept-Encoding", "gzip, br")
		resp, err := ts.rawClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if enc := resp.Header.Get("Content-Encoding"); enc != "" {
			t.Errorf("route without compression answered with content-encoding %q", enc)
		}
	})
}

// rawRequest sends request (a complete HTTP/1.1 request head) on a new
// connection to addr and returns the status.
func rawRequest(t *testing.T, addr, request string) int {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", request, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestEdgeDefaults(t *testing.T) {
	ts := startFeatureStack(t)
	t.Run("path tricks do not reach a route they should not", func(t *testing.T) { checkPathTricks(t, ts) })
	t.Run("header with underscore rejected", func(t *testing.T) { checkUnderscoreHeader(t, ts) })
	t.Run("too many request headers", func(t *testing.T) { checkHeaderCount(t, ts) })
	t.Run("request headers larger than 60 KiB", func(t *testing.T) { checkHeaderSize(t, ts) })
	t.Run("overload manager watches the heap", func(t *testing.T) { checkOverloadStats(t, ts) })
	t.Run("client IP with 0 and 1 trusted hops", func(t *testing.T) { checkClientIP(t, ts) })
	t.Run("a client's x-envoy-original-path never reaches the upstream", func(t *testing.T) { checkOriginalPathStripped(t, ts) })
}

// checkOriginalPathStripped sends x-envoy-original-path (where Envoy's
// router records a rewritten path) from clients Envoy treats as external
// and as internal (an RFC 1918 address behind the lb gateway's trusted
// hop, which Envoy's own sanitizing of edge requests leaves alone): the
// edge filter removes it for every client.
func checkOriginalPathStripped(t *testing.T, ts *featureStack) {
	for _, c := range []struct{ name, base, xff string }{
		{"external client", ts.public, ""},
		{"external client behind a trusted hop", ts.lb, "203.0.113.7"},
		{"internal client behind a trusted hop", ts.lb, "10.1.2.3"},
		{"loopback client behind a trusted hop", ts.lb, "127.0.0.1"},
	} {
		h := map[string]string{"X-Envoy-Original-Path": "/forged"}
		if c.xff != "" {
			h["X-Forwarded-For"] = c.xff
		}
		if _, e := ts.echo(t, "GET", c.base+"/public/real", h); e.Headers["x-envoy-original-path"] != "" {
			t.Errorf("%s: the upstream got x-envoy-original-path %q", c.name, e.Headers["x-envoy-original-path"])
		}
	}
}

func checkPathTricks(t *testing.T, ts *featureStack) {
	for _, path := range []string{
		"/public/../admin", "//admin", "/%61dmin", "/public/..%2Fadmin", "/public/..%2fadmin", "/public%2F..%2Fadmin",
		"/./admin", "/public/%2E%2E/admin", "/admin%2F", "/ADMIN/../admin",
	} {
		before := ts.app.hits.Load()
		status := rawRequest(t, ts.publicAddr, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		hits := ts.app.hits.Load() - before
		t.Logf("GET %s -> %d (upstream requests: %d)", path, status, hits)
		if hits != 0 || status == 200 {
			t.Errorf("GET %s = %d and reached the upstream %d times; it must be refused, redirected or answered 403/404", path, status, hits)
		}
	}
	if status := rawRequest(t, ts.publicAddr, "GET /public/a//b/../c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); status != 200 {
		t.Errorf("a normalisable public path = %d, want 200", status)
	}
}

func checkUnderscoreHeader(t *testing.T, ts *featureStack) {
	before := ts.app.hits.Load()
	status := rawRequest(t, ts.publicAddr, "GET /public HTTP/1.1\r\nHost: x\r\nx_user_id: admin\r\nConnection: close\r\n\r\n")
	if status != 400 || ts.app.hits.Load() != before {
		t.Errorf("header with underscore: status %d, upstream requests %d; want 400 and none", status, ts.app.hits.Load()-before)
	}
}

func checkHeaderCount(t *testing.T, ts *featureStack) {
	var b strings.Builder
	for i := range 120 {
		fmt.Fprintf(&b, "x-h%d: v\r\n", i)
	}
	status := rawRequest(t, ts.publicAddr, "GET /public HTTP/1.1\r\nHost: x\r\n"+b.String()+"Connection: close\r\n\r\n")
	if status != 431 {
		t.Errorf("120 headers: status %d, want 431", status)
	}
}

func checkHeaderSize(t *testing.T, ts *featureStack) {
	status := rawRequest(t, ts.publicAddr, "GET /public HTTP/1.1\r\nHost: x\r\nx-big: "+strings.Repeat("a", 61<<10)+"\r\nConnection: close\r\n\r\n")
	if status != 431 {
		t.Errorf("61 KiB header: status %d, want 431", status)
	}
}

func checkOverloadStats(t *testing.T, ts *featureStack) {
	ctx := testCtx(t, 10*time.Second)
	// The monitor reports (pressure in percent, far below the 90% of
	// the first action) and no action is active.
	stats := map[string]func(int64) bool{
		"overload.envoy.resource_monitors.fixed_heap.pressure":           func(v int64) bool { return v >= 0 && v < 90 },
		"overload.envoy.overload_actions.stop_accepting_requests.active": func(v int64) bool { return v == 0 },
		"overload.envoy.overload_actions.shrink_heap.active":             func(v int64) bool { return v == 0 },
	}
	for name, ok := range stats {
		if err := ts.publicEnvoy.WaitStat(ctx, name, ok); err != nil {
			t.Errorf("stat %s: %v", name, err)
		}
	}
}

func checkClientIP(t *testing.T, ts *featureStack) {
	xff := map[string]string{"X-Forwarded-For": "203.0.113.7"}
	_, e := ts.echo(t, "GET", ts.public+"/public", xff)
	// Envoy appends the peer to X-Forwarded-For; for a loopback peer it
	// appends the host's own address instead.
	xffGot := strings.Split(e.Headers["x-forwarded-for"], ",")
	if e.Headers["x-client-ip"] != "127.0.0.1" || len(xffGot) != 2 || xffGot[0] != "203.0.113.7" {
		t.Errorf("0 hops: client ip %q, x-forwarded-for %q; want 127.0.0.1 (the peer), XFF appended",
			e.Headers["x-client-ip"], e.Headers["x-forwarded-for"])
	}
	_, e = ts.echo(t, "GET", ts.lb+"/public", xff)
	if e.Headers["x-client-ip"] != "203.0.113.7" {
		t.Errorf("1 trusted hop: client ip %q, want 203.0.113.7 from X-Forwarded-For", e.Headers["x-client-ip"])
	}
	_, e = ts.echo(t, "GET", ts.lb+"/public", nil)
	if e.Headers["x-client-ip"] != "127.0.0.1" {
		t.Errorf("1 trusted hop without X-Forwarded-For: client ip %q, want the peer 127.0.0.1", e.Headers["x-client-ip"])
	}
}

// TestValidateWithEnvoy checks that `tollgate validate --with-envoy`
// reports a Lua syntax error that the policy checks cannot see.
func TestValidateWithEnvoy(t *testing.T) {
	if _, err := harness.EnvoyBinary(); err != nil {
		t.Skip(err)
	}
	bin := harness.BuildTollgate(t)
	const policy = `version: 1
gateways: [{name: public, listeners: [{name: http, port: 8080}]}]
backends: [{name: be, endpoints: ["127.0.0.1:9000"]}]
routes:
  - name: lua
    backend: be
    auth: none
    lua: |
      function envoy_on_request(h)
        h:headers():add("x-lua", %s)
      end
`
	run := func(args ...string) (string, int) {
		cmd := exec.CommandContext(testCtx(t, time.Minute), bin, args...)
		out, err := cmd.CombinedOutput()
		var exit interface{ ExitCode() int }
		if errors.As(err, &exit) {
			return string(out), exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	good := writeFile(t, "good.yaml", fmt.Sprintf(policy, `"1"`))
	bad := writeFile(t, "bad.yaml", fmt.Sprintf(policy, `"1"`+" +"))
	if out, code := run("validate", "--with-envoy", good); code != 0 || !strings.Contains(out, "envoy --mode validate: OK") {
		t.Errorf("good policy: exit %d\n%s", code, out)
	}
	if out, code := run("validate", bad); code != 0 {
		t.Errorf("without --with-envoy the Lua error is invisible, yet exit %d\n%s", code, out)
	}
	out, code := run("validate", "--with-envoy", bad)
	if code != 1 || !strings.Contains(out, "script load error") {
		t.Errorf("bad Lua: exit %d, want 1 with Envoy's script load error\n%s", code, out)
	}
	t.Logf("validate --with-envoy on bad Lua:\n%s", out)
}
