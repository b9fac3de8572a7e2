package envoy

import (
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

func TestHeaderValueOptions(t *testing.T) {
	got := HeaderValueOptions(HeaderChanges{Add: []Header{{"x-a", "1"}}, Set: []Header{{"x-b", "%DOWNSTREAM_REMOTE_ADDRESS%"}}})
	if len(got) != 2 ||
		got[0].GetAppendAction() != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD || got[0].GetHeader().GetKey() != "x-a" ||
		got[1].GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || got[1].GetHeader().GetValue() != "%DOWNSTREAM_REMOTE_ADDRESS%" {
		t.Errorf("HeaderValueOptions = %v", got)
	}
	if HeaderValueOptions(HeaderChanges{Remove: []string{"x"}}) != nil {
		t.Error("no add or set must give nil")
	}
}

func TestRedirectRoute(t *testing.T) {
	match := RouteMatchPrefix("/old")
	for status, code := range redirectCodes {
		r, err := RedirectRoute("r", match, RedirectOptions{Scheme: "https", PathPrefix: "/new", Status: status})
		if err != nil {
			t.Fatal(err)
		}
		a := r.GetRedirect()
		if a.GetResponseCode() != code || a.GetSchemeRedirect() != "https" || a.GetPrefixRewrite() != "/new" {
			t.Errorf("status %d: %v", status, a)
		}
		if err := Validate(RouteConfiguration("rc", VirtualHost("vh", []string{"*"}, r))); err != nil {
			t.Errorf("status %d: %v", status, err)
		}
	}
	if _, err := RedirectRoute("r", match, RedirectOptions{Status: 200}); err == nil {
		t.Error("status 200 accepted")
	}
}

func TestCORSPolicy(t *testing.T) {
	p := CORSPolicy(CORSOptions{
		AllowOrigins: []string{"https://a.example"}, AllowOriginRegexes: []string{`https://.*\.b\.example`},
		AllowMethods: []string{"GET", "PUT"}, MaxAge: 10 * time.Minute,
	})
	if p.GetMaxAge() != "600" || p.GetAllowMethods() != "GET,PUT" || len(p.GetAllowOriginStringMatch()) != 2 ||
		p.GetForwardNotMatchingPreflights().GetValue() {
		t.Errorf("CORSPolicy = %v", p)
	}
	if err := Validate(p); err != nil {
		t.Error(err)
	}
}

func TestApplyEdgeStripsInternalHeaders(t *testing.T) {
	m := HTTPConnectionManager("http", "http")
	ApplyEdge(m, EdgeOptions{XFFTrustedHops: 2, StripInternalHeaders: true, MaxHeadersCount: 50})
	if m.GetXffNumTrustedHops() != 2 || m.GetCommonHttpProtocolOptions().GetMaxHeadersCount().GetValue() != 50 ||
		m.GetServerHeaderTransformation().String() != "PASS_THROUGH" || !m.GetAlwaysSetRequestIdInResponse() {
		t.Errorf("ApplyEdge: %v", m)
	}
	if m.GetMaxRequestHeadersKb() != nil {
		t.Error("MaxRequestHeadersKB 0 must keep Envoy's default")
	}
	if err := Validate(m); err != nil {
		t.Error(err)
	}
}
