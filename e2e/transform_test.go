package e2e

import (
	"bytes"
	"encoding/json/jsontext"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/internal/loadgen"
	"github.com/tollgate/tollgate/transform"
)

const transformPolicy = `version: 1
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: xml, match: {pathPrefix: /xml/}, backend: app, auth: none, transform: {response: json-to-xml, rootElement: doc}}
  - {name: upload, match: {pathPrefix: /upload/}, backend: app, auth: none, transform: {request: xml-to-json}}
  - {name: roundtrip, match: {pathPrefix: /roundtrip/}, backend: app, auth: none, transform: {request: json-to-xml, response: xml-to-json}}
  - {name: small, match: {pathPrefix: /small/}, backend: app, auth: none, transform: {request: xml-to-json, maxBodyBytes: 64}}
  - {name: lenient, match: {pathPrefix: /lenient/}, backend: app, auth: none, transform: {response: json-to-xml, failureMode: open}}
  - {name: plain, match: {pathPrefix: /plain/}, backend: app, auth: none}
backends:
  - {name: app, endpoints: [%q]}
`

// docJSON is what the upstream answers on .../data.
const docJSON = `{"id":42,"name":"Ann <&> \"B\"","tags":["a","b"],"one":[1.50],"none":[],"nested":{"ok":true,"nil":null,"empty":{}},"weird key":"x","text":"line1\nline2\ttab"}`

// amplifyingJSON (64 KB) is what the upstream answers on .../amplify: one
// 1000-byte member name repeated per item of its array, 64 MB as XML
// without the output bound (issue 12).
var amplifyingJSON = []byte(`{"` + strings.Repeat("k", 1000) + `":[0` + strings.Repeat(",0", 32<<10) + `]}`)

// manyElementsXML (800 KB, 200 000 elements) is what the upstream answers
// on .../manyxml: within the 1 MiB body bound, over the element bound.
var manyElementsXML = []byte("<r>" + strings.Repeat("<a/>", 200_000) + "</r>")

// seen is what the app upstream received last.
type seen struct {
	body          []byte
	contentType   string
	contentLength int64
}

// appUpstream answers GET .../data with docJSON, .../bad with malformed
// JSON, .../text with plain text, and echoes any other request's body with
// its content type, remembering what it received.
type appUpstream struct {
	mu   sync.Mutex
	last seen
	addr string
}

func startAppUpstream(t *testing.T) *appUpstream {
	t.Helper()
	u := &appUpstream{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(u.serve), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *appUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.last = seen{body: body, contentType: r.Header.Get("Content-Type"), contentLength: r.ContentLength}
	u.mu.Unlock()
	switch {
	case strings.HasSuffix(r.URL.Path, "/data"):
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, docJSON)
	case strings.HasSuffix(r.URL.Path, "/bad"):
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"a":`)
	case strings.HasSuffix(r.URL.Path, "/big"):
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"s":"`+strings.Repeat("x", 1200<<10)+`"}`)
	case strings.HasSuffix(r.URL.Path, "/amplify"):
		w.Header().Set("Content-Type", "application/json")
		w.Write(amplifyingJSON)
	case strings.HasSuffix(r.URL.Path, "/manyxml"):
		w.Header().Set("Content-Type", "application/xml")
		w.Write(manyElementsXML)
	case strings.HasSuffix(r.URL.Path, "/text"):
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "not {json}")
	default:
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Write(body)
	}
}

func (u *appUpstream) lastSeen() seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

// transformStack is a gateway whose routes transform bodies.
type transformStack struct {
	*stack
	app  *appUpstream
	base string
	http *harness.HTTPClient
}

func startTransformStack(t *testing.T, opts stackOptions) *transformStack {
	t.Helper()
	app := startAppUpstream(t)
	port := harness.FreePort(t)
	s := startStackWith(t, fmt.Sprintf(transformPolicy, port, app.addr), opts)
	s.envoy("public", "tf-0", "delta")
	c := harness.NewHTTPClient(true)
	t.Cleanup(c.Close)
	return &transformStack{stack: s, app: app, base: fmt.Sprintf("http://127.0.0.1:%d", port), http: c}
}

func (ts *transformStack) do(t *testing.T, method, path, ctype string, body []byte) *harness.HTTPResponse {
	t.Helper()
	h := map[string]string{}
	if ctype != "" {
		h["Content-Type"] = ctype
	}
	resp, err := ts.http.Do(testCtx(t, 10*time.Second), method, ts.base+path, "", h, body)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestTransformThroughEnvoy runs every conversion through a real Envoy and
// the service inside `tollgate serve`.
func TestTransformThroughEnvoy(t *testing.T) {
	ts := startTransformStack(t, stackOptions{})

	t.Run("json upstream response arrives as xml", func(t *testing.T) {
		resp := ts.do(t, "GET", "/xml/data", "", nil)
		want, err := transform.JSONToXML([]byte(docJSON), "doc")
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 200 || !bytes.Equal(resp.Body, want) {
			t.Fatalf("GET /xml/data = %d %s\nwant 200 %s", resp.Status, resp.Body, want)
		}
		checkBodyHeaders(t, resp.Header, transform.XMLContentType, len(want))
		if etag := resp.Header.Get("ETag"); etag != "" {
			t.Errorf("converted response kept the upstream's ETag %s", etag)
		}
	})
	t.Run("xml request body arrives as json", func(t *testing.T) {
		in := `<order><id json:type="number" xmlns:json="urn:tollgate:json">7</id><item>a</item><item>b</item></order>`
		resp := ts.do(t, "POST", "/upload/echo", "application/xml", []byte(in))
		got := ts.app.lastSeen()
		want := `{"id":7,"item":["a","b"]}`
		if resp.Status != 200 || string(got.body) != want {
			t.Fatalf("upstream received %q (status %d), want %s", got.body, resp.Status, want)
		}
		if got.contentType != transform.JSONContentType || got.contentLength != int64(len(want)) {
			t.Errorf("upstream content-type %q length %d, want %q %d", got.contentType, got.contentLength, transform.JSONContentType, len(want))
		}
	})
	t.Run("json to xml to json round trip", func(t *testing.T) {
		resp := ts.do(t, "POST", "/roundtrip/echo", "application/json", []byte(docJSON))
		if got := ts.app.lastSeen(); !strings.HasPrefix(got.contentType, "application/xml") || !bytes.HasPrefix(got.body, []byte("<?xml")) {
			t.Fatalf("upstream received %s %q, want XML", got.contentType, got.body)
		}
		if resp.Status != 200 || !bytes.Equal(canonicalJSON(t, resp.Body), canonicalJSON(t, []byte(docJSON))) {
			t.Fatalf("round trip = %d %s\nwant %s", resp.Status, resp.Body, docJSON)
		}
		checkBodyHeaders(t, resp.Header, transform.JSONContentType, len(resp.Body))
	})
	t.Run("other content types pass untouched", func(t *testing.T) {
		bodiesBefore := ts.transformMetric(t, "tollgate_transform_bodies_total")
		resp := ts.do(t, "GET", "/xml/text", "", nil)
		if resp.Status != 200 || string(resp.Body) != "not {json}" || resp.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("GET /xml/text = %d %q %q", resp.Status, resp.Header.Get("Content-Type"), resp.Body)
		}
		resp = ts.do(t, "POST", "/upload/echo", "application/json", []byte(`{"k":1}`))
		if got := ts.app.lastSeen(); resp.Status != 200 || string(got.body) != `{"k":1}` {
			t.Fatalf("json on an xml-to-json route: upstream got %q (status %d)", got.body, resp.Status)
		}
		if after := ts.transformMetric(t, "tollgate_transform_bodies_total"); after != bodiesBefore {
			t.Errorf("the service saw %d bodies it does not convert, want none (the header answer skips them)", after-bodiesBefore)
		}
	})
	t.Run("malformed bodies", func(t *testing.T) {
		resp := ts.do(t, "GET", "/xml/bad", "", nil)
		checkJSONError(t, resp, 502, "bad_upstream_body")
		resp = ts.do(t, "POST", "/upload/echo", "application/xml", []byte(`<a><b></a>`))
		checkJSONError(t, resp, 400, "invalid_body")
	})
	t.Run("body over the route bound", func(t *testing.T) {
		resp := ts.do(t, "POST", "/small/echo", "application/xml", []byte("<a>"+strings.Repeat("x", 100)+"</a>"))
		checkJSONError(t, resp, 413, "body_too_large")
	})
	t.Run("bodies over Envoy's 1 MiB buffer", func(t *testing.T) {
		big := []byte("<a>" + strings.Repeat("x", 1200<<10) + "</a>")
		if resp := ts.do(t, "POST", "/upload/echo", "application/xml", big); resp.Status != 413 {
			t.Errorf("1.2 MB request = %d %.200s, want 413 from Envoy", resp.Status, resp.Body)
		}
		if resp := ts.do(t, "GET", "/xml/big", "", nil); resp.Status != 500 {
			t.Errorf("1.2 MB response = %d %.200s, want 500 from Envoy", resp.Status, resp.Body)
		}
	})
	t.Run("a route without transform never calls the service", func(t *testing.T) {
		before := ts.transformStreams(t)
		for range 20 {
			if resp := ts.do(t, "POST", "/plain/echo", "application/json", []byte(docJSON)); resp.Status != 200 || string(resp.Body) != docJSON {
				t.Fatalf("plain route = %d %s", resp.Status, resp.Body)
			}
		}
		if resp := ts.do(t, "GET", "/plain/data", "", nil); resp.Header.Get("ETag") != `"v1"` || string(resp.Body) != docJSON {
			t.Fatalf("plain route = %d %v %s, want the upstream's answer untouched", resp.Status, resp.Header, resp.Body)
		}
		if after := ts.transformStreams(t); after != before {
			t.Fatalf("service streams went from %d to %d on a route without transform", before, after)
		}
		ts.do(t, "GET", "/xml/data", "", nil)
		if after := ts.transformStreams(t); after != before+1 {
			t.Fatalf("service streams went from %d to %d after one transformed request, want +1", before, after)
		}
	})
}

// TestTransformAmplificationBounded is the regression test of issue 12
// item 2 through a real Envoy: bodies within the route's input bound whose
// conversion would amplify (JSON → XML: a member name repeated per array
// item) or build a tree of too many elements (XML → JSON) are refused with
// 413 on the request side (the upstream never sees them) and 502 on the
// response side, the service inside `tollgate serve` keeps working, and its
// peak RSS grows by less than 96 MiB (it grew by 326 MiB before the bounds,
// by 38 MiB after).
func TestTransformAmplificationBounded(t *testing.T) {
	ts := startTransformStack(t, stackOptions{})
	if resp := ts.do(t, "GET", "/xml/data", "", nil); resp.Status != 200 {
		t.Fatalf("warm-up GET /xml/data = %d %s", resp.Status, resp.Body)
	}
	hwmBefore := vmHWM(t, ts.cp.Pid())

	tests := []struct {
		name, method, path, ctype string
		body                      []byte
		status                    int
		code                      string
	}{
		{"json-to-xml request", "POST", "/roundtrip/echo", "application/json", amplifyingJSON, 413, "body_too_large"},
		{"xml-to-json request", "POST", "/upload/echo", "application/xml", manyElementsXML, 413, "body_too_large"},
		{"json-to-xml response", "GET", "/xml/amplify", "", nil, 502, "upstream_too_large"},
		{"xml-to-json response", "GET", "/roundtrip/manyxml", "", nil, 502, "upstream_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.do(t, "GET", "/plain/data", "", nil) // the upstream's last body is now empty
			resp := ts.do(t, tt.method, tt.path, tt.ctype, tt.body)
			checkJSONError(t, resp, tt.status, tt.code)
			if got := ts.app.lastSeen(); tt.method == "POST" && len(got.body) > 0 {
				t.Errorf("the upstream received %d bytes of a refused request body", len(got.body))
			}
		})
	}

	if ts.cp.Exited() {
		t.Fatalf("tollgate exited:\n%s", ts.cp.LogTail(20))
	}
	want, err := transform.JSONToXML([]byte(docJSON), "doc")
	if err != nil {
		t.Fatal(err)
	}
	if resp := ts.do(t, "GET", "/xml/data", "", nil); resp.Status != 200 || !bytes.Equal(resp.Body, want) {
		t.Fatalf("GET /xml/data after the refused bodies = %d %.200s", resp.Status, resp.Body)
	}
	if resp := ts.do(t, "POST", "/roundtrip/echo", "application/json", []byte(docJSON)); resp.Status != 200 {
		t.Fatalf("round trip after the refused bodies = %d %.200s", resp.Status, resp.Body)
	}
	hwmAfter := vmHWM(t, ts.cp.Pid())
	t.Logf("tollgate VmHWM %d MiB before, %d MiB after", hwmBefore>>20, hwmAfter>>20)
	if hwmAfter-hwmBefore > 96<<20 {
		t.Errorf("tollgate's peak RSS grew by %d MiB (from %d MiB), want less than 96", (hwmAfter-hwmBefore)>>20, hwmBefore>>20)
	}
}

// vmHWM returns the peak resident set size of process pid in bytes, from
// /proc/<pid>/status (the test is skipped where there is none).
func vmHWM(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc status for tollgate: %v", err)
	}
	m := regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB$`).FindSubmatch(b)
	if m == nil {
		t.Skipf("no VmHWM in /proc/%d/status", pid)
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return kb << 10
}

// TestTransformServiceDown: Envoys reach a separate `serve --only extproc`;
// while it runs, bodies convert; once it is gone, transform routes fail
// closed with 503, failureMode open routes pass bodies unconverted, and
// routes without transform are unaffected.
func TestTransformServiceDown(t *testing.T) {
	bin := harness.BuildTollgate(t)
	epAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	ep := harness.StartProcess(t, "tollgate-extproc", bin, "serve", "--only", "extproc", "--extproc-addr", epAddr,
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)))
	if err := harness.WaitPort(testCtx(t, 20*time.Second), epAddr); err != nil {
		t.Fatalf("extproc replica not listening: %v\n%s", err, ep.LogTail(20))
	}
	ts := startTransformStack(t, stackOptions{args: []string{"--extproc-advertise-addr", epAddr}})
	if resp := ts.do(t, "GET", "/xml/data", "", nil); resp.Status != 200 || !bytes.HasPrefix(resp.Body, []byte("<?xml")) {
		t.Fatalf("with the replica up: %d %s", resp.Status, resp.Body)
	}
	if err := ep.Kill(); err != nil && !strings.Contains(err.Error(), "killed") {
		t.Fatalf("kill the replica: %v", err)
	}
	var resp *harness.HTTPResponse
	err := harness.WaitFor(testCtx(t, 15*time.Second), func() (bool, error) {
		resp = ts.do(t, "GET", "/xml/data", "", nil)
		return resp.Status == 503, nil
	})
	if err != nil {
		t.Fatalf("transform route with the service down: %d %s, want 503", resp.Status, resp.Body)
	}
	if resp := ts.do(t, "GET", "/lenient/data", "", nil); resp.Status != 200 || string(resp.Body) != docJSON {
		t.Fatalf("failureMode open route with the service down = %d %s, want the unconverted body", resp.Status, resp.Body)
	}
	if resp := ts.do(t, "GET", "/plain/data", "", nil); resp.Status != 200 || string(resp.Body) != docJSON {
		t.Fatalf("plain route with the service down = %d %s", resp.Status, resp.Body)
	}
}

// silentProcessor is an ext_proc server that reads messages and never
// answers them.
type silentProcessor struct {
	extprocv3.UnimplementedExternalProcessorServer
}

func (silentProcessor) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		if _, err := s.Recv(); err != nil {
			return nil
		}
	}
}

// TestTransformServiceSilent: a service that accepts the stream but never
// answers fails a transform route with 504 (Envoy's timeout answer; the
// filter's status_on_error covers the other failures) after the 1 s
// message timeout, and a failureMode open route passes the body
// unconverted.
func TestTransformServiceSilent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(g, silentProcessor{})
	go g.Serve(l)
	t.Cleanup(g.Stop)
	ts := startTransformStack(t, stackOptions{args: []string{"--extproc-advertise-addr", l.Addr().String()}})
	start := time.Now()
	resp := ts.do(t, "GET", "/xml/data", "", nil)
	if took := time.Since(start); resp.Status != 504 || took < 900*time.Millisecond || took > 5*time.Second {
		t.Fatalf("transform route with a silent service: %d after %s, want 504 after the 1 s message timeout", resp.Status, took)
	}
	if resp := ts.do(t, "GET", "/lenient/data", "", nil); resp.Status != 200 || string(resp.Body) != docJSON {
		t.Fatalf("failureMode open route with a silent service = %d %s, want the unconverted body", resp.Status, resp.Body)
	}
}

// transformStreams reads tollgate_transform_streams_total from /metrics.
func (s *stack) transformStreams(t *testing.T) int {
	t.Helper()
	return s.transformMetric(t, "tollgate_transform_streams_total")
}

// transformMetric sums the samples of a counter on /metrics (0 if none).
func (s *stack) transformMetric(t *testing.T, name string) int {
	t.Helper()
	resp, err := harness.HTTPGet(testCtx(t, 10*time.Second), "http://"+s.adminAddr+"/metrics", "", map[string]string{"Authorization": "Bearer " + testToken})
	if err != nil || resp.Status != 200 {
		t.Fatalf("GET /metrics: %v %v", err, resp)
	}
	sum := 0
	for _, m := range regexp.MustCompile(`(?m)^`+name+`(?:\{[^}]*\})? (\d+)$`).FindAllSubmatch(resp.Body, -1) {
		n, _ := strconv.Atoi(string(m[1]))
		sum += n
	}
	return sum
}

// checkBodyHeaders checks a converted body's content-type and that its
// content-length, when sent, is the body's length.
func checkBodyHeaders(t *testing.T, h http.Header, ctype string, n int) {
	t.Helper()
	if got := h.Get("Content-Type"); got != ctype {
		t.Errorf("content-type = %q, want %q", got, ctype)
	}
	if cl := h.Get("Content-Length"); cl != strconv.Itoa(n) {
		t.Errorf("content-length = %q, want %d (transfer-encoding %q)", cl, n, h.Get("Transfer-Encoding"))
	}
}

func checkJSONError(t *testing.T, resp *harness.HTTPResponse, status int, code string) {
	t.Helper()
	var e struct{ Error, Message string }
	if resp.Status != status || resp.JSON(&e) != nil || e.Error != code || e.Message == "" {
		t.Fatalf("got %d %s, want %d with error %q", resp.Status, resp.Body, status, code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != transform.JSONContentType {
		t.Errorf("error content-type = %q", ct)
	}
}

// canonicalJSON re-encodes a JSON document compactly (member order and
// number literals kept).
func canonicalJSON(t *testing.T, in []byte) []byte {
	t.Helper()
	v := jsontext.Value(bytes.Clone(in))
	if err := v.Compact(); err != nil {
		t.Fatalf("invalid JSON %s: %v", in, err)
	}
	return v
}

// TestTransformLatency measures a transformed route against a plain one
// through the same Envoy and upstream (closed loop, internal/loadgen). It
// runs only with TOLLGATE_TRANSFORM_LATENCY=1: it takes ~45 s and its
// numbers mean something only on an otherwise idle machine.
func TestTransformLatency(t *testing.T) {
	if os.Getenv("TOLLGATE_TRANSFORM_LATENCY") != "1" {
		t.Skip("set TOLLGATE_TRANSFORM_LATENCY=1 to measure")
	}
	ts := startTransformStack(t, stackOptions{})
	for _, conns := range []int{1, 4} {
		for _, path := range []string{"/plain/data", "/xml/data", "/plain/data", "/xml/data"} {
			r := loadgen.Run(ts.base+path, func(int) string { return "" }, conns, time.Second, 4*time.Second)
			if r.OK == 0 || r.Bad > 0 {
				t.Fatalf("%s: %d ok, %d bad", path, r.OK, r.Bad)
			}
			t.Logf("%-12s conns=%d  rps=%8.0f  p50=%8s  p99=%8s", path, conns, r.RPS, r.P50, r.P99)
		}
	}
}
