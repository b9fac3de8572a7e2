package transform

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tollgate/tollgate/transform/contract"
)

// startService serves a Service on a loopback port and returns a client.
func startService(t *testing.T) (extprocv3.ExternalProcessorClient, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	g := grpc.NewServer()
	New(Options{Metrics: m}).Register(g)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(l)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return extprocv3.NewExternalProcessorClient(conn), reg
}

// counter returns the value of the counter name whose labels include
// labels (name=value pairs), 0 if there is none.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// exchange opens a stream with settings and sends msgs, returning the
// answers.
func exchangeMsgs(t *testing.T, c extprocv3.ExternalProcessorClient, settings string, msgs ...*extprocv3.ProcessingRequest) []*extprocv3.ProcessingResponse {
	t.Helper()
	ctx := metadata.AppendToOutgoingContext(t.Context(), contract.MetadataKey, settings)
	s, err := c.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*extprocv3.ProcessingResponse
	for _, m := range msgs {
		if err := s.Send(m); err != nil {
			t.Fatal(err)
		}
		r, err := s.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		out = append(out, r)
	}
	s.CloseSend()
	return out
}

func headers(kv ...string) *corev3.HeaderMap {
	h := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Headers = append(h.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return h
}

func respHeaders(ctype string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: headers(":status", "200", "content-type", ctype)}}}
}

func respBody(b string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: []byte(b), EndOfStream: true}}}
}

func reqHeaders(ctype string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: headers(":method", "POST", "content-type", ctype)}}}
}

func reqBody(b string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(b), EndOfStream: true}}}
}

func headerValue(m *extprocv3.HeaderMutation, name string) string {
	for _, h := range m.GetSetHeaders() {
		if h.GetHeader().GetKey() == name {
			return string(h.GetHeader().GetRawValue())
		}
	}
	return ""
}

func TestServiceConvertsResponse(t *testing.T) {
	c, reg := startService(t)
	got := exchangeMsgs(t, c, "response=json-to-xml;root=order", respHeaders("application/json; charset=utf-8"), respBody(`{"id":1}`))
	if got[0].GetResponseHeaders() == nil {
		t.Fatalf("headers answer = %v, want a ResponseHeaders answer", got[0])
	}
	cr := got[1].GetResponseBody().GetResponse()
	want := decl + `<order xmlns:json="urn:tollgate:json"><id json:type="number">1</id></order>`
	if body := string(cr.GetBodyMutation().GetBody()); body != want {
		t.Errorf("body = %s, want %s", body, want)
	}
	if ct := headerValue(cr.GetHeaderMutation(), "content-type"); ct != XMLContentType {
		t.Errorf("content-type = %q, want %q", ct, XMLContentType)
	}
	if cl := headerValue(cr.GetHeaderMutation(), "content-length"); cl != strconv.Itoa(len(want)) {
		t.Errorf("content-length = %q, body length %d", cl, len(want))
	}
	if rm := cr.GetHeaderMutation().GetRemoveHeaders(); len(rm) != 1 || rm[0] != "etag" {
		t.Errorf("removed headers %v, want [etag]", rm)
	}
	if n := counter(t, reg, "tollgate_transform_streams_total"); n != 1 {
		t.Errorf("streams = %v, want 1", n)
	}
	if n := counter(t, reg, "tollgate_transform_bodies_total", "direction", "response", "conversion", "json-to-xml", "outcome", "converted"); n != 1 {
		t.Errorf("converted bodies = %v, want 1", n)
	}
}

func TestServiceConvertsRequest(t *testing.T) {
	c, _ := startService(t)
	got := exchangeMsgs(t, c, "request=xml-to-json", reqHeaders("text/xml"), reqBody(`<a><b>1</b></a>`))
	cr := got[1].GetRequestBody().GetResponse()
	if body := string(cr.GetBodyMutation().GetBody()); body != `{"b":"1"}` {
		t.Errorf("body = %s", body)
	}
	if ct := headerValue(cr.GetHeaderMutation(), "content-type"); ct != JSONContentType {
		t.Errorf("content-type = %q", ct)
	}
}

func TestServiceAnswers(t *testing.T) {
	tests := []struct {
		name       string
		settings   string
		msgs       []*extprocv3.ProcessingRequest
		wantStatus int    // of an immediate response; 0: none
		wantError  string // its "error" member
	}{
		{"other content type passes", "response=json-to-xml", []*extprocv3.ProcessingRequest{respHeaders("text/plain"), respBody("{")}, 0, ""},
		{"malformed response is 502", "response=json-to-xml", []*extprocv3.ProcessingRequest{respHeaders("application/json"), respBody(`{"a":`)}, 502, codeBadUpstreamBody},
		{"malformed request is 400", "request=xml-to-json", []*extprocv3.ProcessingRequest{reqHeaders("application/xml"), reqBody(`<a>`)}, 400, codeInvalidBody},
		{"large request is 413", "request=json-to-xml;max=4", []*extprocv3.ProcessingRequest{reqHeaders("application/json"), reqBody(`"12345"`)}, 413, codeBodyTooLarge},
		{"large response is 502", "response=xml-to-json;max=4", []*extprocv3.ProcessingRequest{respHeaders("application/xml"), respBody(`<a>1</a>`)}, 502, codeUpstreamTooLarge},
		// Issue 12: bodies within the input bound whose conversion would
		// amplify (14 KB of JSON into 13 MB of XML) or hold too many elements.
		{"amplifying request is 413", "request=json-to-xml", []*extprocv3.ProcessingRequest{reqHeaders("application/json"), reqBody(string(amplifyingJSON(1000, 14<<10)))}, 413, codeBodyTooLarge},
		{"amplifying response is 502", "response=json-to-xml", []*extprocv3.ProcessingRequest{respHeaders("application/json"), respBody(string(amplifyingJSON(1000, 14<<10)))}, 502, codeUpstreamTooLarge},
		{"request with too many elements is 413", "request=xml-to-json", []*extprocv3.ProcessingRequest{reqHeaders("application/xml"), reqBody(string(manyElementsXML(200_000)))}, 413, codeBodyTooLarge},
		{"response with too many elements is 502", "response=xml-to-json", []*extprocv3.ProcessingRequest{respHeaders("application/xml"), respBody(string(manyElementsXML(200_000)))}, 502, codeUpstreamTooLarge},
		{"partial content passes", "response=json-to-xml", []*extprocv3.ProcessingRequest{
			{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
				Headers: headers(":status", "206", "content-type", "application/json")}}},
			respBody(`{"a":`),
		}, 0, ""},
		{"compressed body passes", "response=json-to-xml", []*extprocv3.ProcessingRequest{
			{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
				Headers: headers(":status", "200", "content-type", "application/json", "content-encoding", "gzip")}}},
			respBody("\x1f\x8b not json"),
		}, 0, ""},
		{"request body on a response-only route passes", "response=json-to-xml", []*extprocv3.ProcessingRequest{reqHeaders("application/json"), reqBody(`{`)}, 0, ""},
	}
	c, _ := startService(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := exchangeMsgs(t, c, tt.settings, tt.msgs...)
			last := got[len(got)-1]
			ir := last.GetImmediateResponse()
			switch {
			case tt.wantStatus == 0 && ir != nil:
				t.Fatalf("got immediate response %v, want the body to pass", ir)
			case tt.wantStatus == 0:
				body := last.GetRequestBody().GetResponse()
				if body == nil {
					body = last.GetResponseBody().GetResponse()
				}
				if body.GetBodyMutation() != nil || body.GetHeaderMutation() != nil {
					t.Fatalf("passthrough answer mutates: %v", last)
				}
			case ir == nil || int(ir.GetStatus().GetCode()) != tt.wantStatus:
				t.Fatalf("answer = %v, want an immediate %d", last, tt.wantStatus)
			case !strings.Contains(string(ir.GetBody()), `"error":"`+tt.wantError+`"`) || headerValue(ir.GetHeaders(), "content-type") != JSONContentType:
				t.Fatalf("immediate response body %s headers %v, want a JSON error %q", ir.GetBody(), ir.GetHeaders(), tt.wantError)
			}
		})
	}
}

// TestServiceSkipsBodiesItWillNotConvert: a header answer overrides the
// processing mode to NONE for a body of another type, keeping the rest of
// the route's mode; a convertible body keeps the route's mode.
func TestServiceSkipsBodiesItWillNotConvert(t *testing.T) {
	c, _ := startService(t)
	settings := "request=xml-to-json;response=json-to-xml"
	got := exchangeMsgs(t, c, settings, reqHeaders("text/plain"), respHeaders("application/json"))
	m := got[0].GetModeOverride()
	if m.GetRequestBodyMode() != procmodev3.ProcessingMode_NONE || m.GetResponseBodyMode() != procmodev3.ProcessingMode_BUFFERED ||
		m.GetResponseHeaderMode() != procmodev3.ProcessingMode_SEND {
		t.Errorf("request headers of text/plain: mode override %v", m)
	}
	if got[1].GetModeOverride() != nil {
		t.Errorf("response headers of application/json: mode override %v, want none", got[1].GetModeOverride())
	}
	got = exchangeMsgs(t, c, "request=xml-to-json", respHeaders("application/json"))
	if m := got[0].GetModeOverride(); m.GetResponseBodyMode() != procmodev3.ProcessingMode_NONE || m.GetRequestBodyMode() != procmodev3.ProcessingMode_BUFFERED {
		t.Errorf("response headers on a request-only route: mode override %v", m)
	}
}

func TestServiceRejectsStreamWithoutSettings(t *testing.T) {
	c, _ := startService(t)
	s, err := c.Process(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Send reports io.EOF when the server has already ended the stream; the
	// status is then read from Recv (grpc.ClientStream.SendMsg's contract).
	if err := s.Send(respHeaders("application/json")); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if _, err := s.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("recv = %v, want InvalidArgument", err)
	}
}

func TestSettingsRoundTrip(t *testing.T) {
	in := contract.Settings{Request: contract.XMLToJSON, Response: contract.JSONToXML, Root: "order", MaxBodyBytes: 1024}
	out, err := contract.Decode(in.Encode())
	if err != nil || out != in {
		t.Fatalf("Decode(Encode(%+v)) = %+v, %v", in, out, err)
	}
	for _, bad := range []string{"request=csv", "max=0", "max=x", "color=red"} {
		if _, err := contract.Decode(bad); err == nil {
			t.Errorf("Decode(%q) accepted", bad)
		}
	}
}
