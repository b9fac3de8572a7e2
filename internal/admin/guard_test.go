package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/store"
)

// guardCase is one request to the admin API and the status it must get.
type guardCase struct {
	name, method, path, host string
	headers                  map[string]string
	body                     string
	want                     int
}

// pushBody is a valid push of validPolicy.
func pushBody(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(PolicyRequest{Files: []store.File{{Name: "p.yaml", Content: validPolicy}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func runGuardCases(t *testing.T, access Access, cases []guardCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestServer(t, access).Handler()
			var body *strings.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			var req *http.Request
			if body != nil {
				req = httptest.NewRequest(tt.method, tt.path, body)
			} else {
				req = httptest.NewRequest(tt.method, tt.path, nil)
			}
			req.Host = tt.host
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("%s %s (Host %q, %v) = %d %s, want %d", tt.method, tt.path, tt.host, tt.headers, rec.Code, rec.Body, tt.want)
			}
		})
	}
}

var authJSON = map[string]string{"Authorization": "Bearer tok", "Content-Type": "application/json"}

// with returns authJSON plus extra headers (an empty value deletes one).
func with(extra map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range authJSON {
		out[k] = v
	}
	for k, v := range extra {
		if v == "" {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

func TestGuardHost(t *testing.T) {
	loop := Access{Token: "tok", ListenAddr: "127.0.0.1:9900", AllowedHosts: []string{"admin.internal"}}
	runGuardCases(t, loop, []guardCase{
		{"loopback IPv4", "GET", "/v1/status", "127.0.0.1:9900", authJSON, "", 200},
		{"localhost", "GET", "/v1/status", "localhost:9900", authJSON, "", 200},
		{"loopback IPv6", "GET", "/v1/status", "[::1]:9900", authJSON, "", 200},
		{"allowed host", "GET", "/v1/status", "admin.internal:9900", authJSON, "", 200},
		{"allowed host, case and trailing dot", "GET", "/v1/status", "ADMIN.Internal.", authJSON, "", 200},
		{"rebinding name", "GET", "/v1/status", "evil.example:9900", authJSON, "", 421},
		{"rebinding name, health", "GET", "/healthz", "evil.example:9900", nil, "", 421},
		{"rebinding name, push", "POST", "/v1/policy", "evil.example:9900", authJSON, pushBody(t), 421},
		{"other IP on a loopback listener", "GET", "/v1/status", "10.0.0.5:9900", authJSON, "", 421},
		{"no Host", "GET", "/v1/status", "", authJSON, "", 421},
	})
	wild := Access{Token: "tok", ListenAddr: "0.0.0.0:9900"}
	runGuardCases(t, wild, []guardCase{
		{"pod IP on a wildcard listener", "GET", "/readyz", "10.0.0.5:9900", nil, "", 200},
		{"IPv6 on a wildcard listener", "GET", "/v1/status", "[fd00::1]:9900", authJSON, "", 200},
		{"a name on a wildcard listener", "GET", "/v1/status", "tollgate:9900", authJSON, "", 421},
	})
	named := Access{Token: "tok", ListenAddr: "10.1.2.3:9900"}
	runGuardCases(t, named, []guardCase{
		{"the listen host", "GET", "/v1/status", "10.1.2.3:9900", authJSON, "", 200},
		{"another IP", "GET", "/v1/status", "10.1.2.4:9900", authJSON, "", 421},
	})
}

func TestGuardOrigin(t *testing.T) {
	const host = "127.0.0.1:9900"
	none := Access{Token: "tok", ListenAddr: host}
	runGuardCases(t, none, []guardCase{
		{"cross-site page", "POST", "/v1/policy", host, with(map[string]string{"Origin": "http://evil.example"}), pushBody(t), 403},
		{"cross-site page, GET", "GET", "/v1/policy", host, with(map[string]string{"Origin": "http://evil.example"}), "", 403},
		{"opaque origin", "POST", "/v1/policy", host, with(map[string]string{"Origin": "null"}), pushBody(t), 403},
		{"same-origin page (rebound)", "GET", "/v1/status", host, with(map[string]string{"Origin": "http://127.0.0.1:9900"}), "", 403},
		{"preflight", "OPTIONS", "/v1/policy", host, map[string]string{"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}, "", 403},
		{"no-cors page request", "GET", "/metrics", host, with(map[string]string{"Sec-Fetch-Site": "cross-site"}), "", 403},
		{"typed in the address bar", "GET", "/v1/status", host, with(map[string]string{"Sec-Fetch-Site": "none"}), "", 200},
		{"no Origin (CLI, curl)", "GET", "/v1/status", host, authJSON, "", 200},
	})
	ui := Access{Token: "tok", ListenAddr: host, AllowedOrigins: []string{"https://ui.example/"}}
	runGuardCases(t, ui, []guardCase{
		{"allowed origin", "GET", "/v1/status", host, with(map[string]string{"Origin": "https://UI.example"}), "", 200},
		{"allowed origin's preflight", "OPTIONS", "/v1/policy", host, map[string]string{"Origin": "https://ui.example", "Access-Control-Request-Method": "POST"}, "", 204},
		{"allowed origin still needs the token", "GET", "/v1/status", host, map[string]string{"Origin": "https://ui.example"}, "", 401},
		{"other origin", "GET", "/v1/status", host, with(map[string]string{"Origin": "https://ui.example.evil"}), "", 403},
	})
}

func TestGuardAllowedOriginGetsCORSHeaders(t *testing.T) {
	h := newTestServer(t, Access{Token: "tok", AllowedOrigins: []string{"https://ui.example"}}).Handler()
	req := httptest.NewRequest("OPTIONS", "/v1/policy", nil)
	req.Host = "127.0.0.1"
	req.Header.Set("Origin", "https://ui.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	got := rec.Header()
	if got.Get("Access-Control-Allow-Origin") != "https://ui.example" || !strings.Contains(got.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight answer headers %v", got)
	}
}

func TestGuardContentType(t *testing.T) {
	const host = "127.0.0.1:9900"
	a := Access{Token: "tok", ListenAddr: host}
	runGuardCases(t, a, []guardCase{
		{"text/plain push", "POST", "/v1/policy", host, with(map[string]string{"Content-Type": "text/plain"}), pushBody(t), 415},
		{"form push", "POST", "/v1/policy", host, with(map[string]string{"Content-Type": "application/x-www-form-urlencoded"}), pushBody(t), 415},
		{"no content type", "POST", "/v1/policy", host, with(map[string]string{"Content-Type": ""}), pushBody(t), 415},
		{"empty POST without content type", "POST", "/v1/rollback", host, with(map[string]string{"Content-Type": ""}), "", 415},
		{"text/plain body on DELETE", "DELETE", "/v1/endpoints/b", host, with(map[string]string{"Content-Type": "text/plain"}), "x", 415},
		{"json with charset", "POST", "/v1/policy", host, with(map[string]string{"Content-Type": "application/json; charset=utf-8"}), pushBody(t), 200},
		{"GET without body or type", "GET", "/v1/status", host, with(map[string]string{"Content-Type": ""}), "", 200},
	})
}

func TestGuardToken(t *testing.T) {
	const host = "127.0.0.1:9900"
	runGuardCases(t, Access{Token: "tok", ListenAddr: host}, []guardCase{
		{"no token", "GET", "/v1/status", host, with(map[string]string{"Authorization": ""}), "", 401},
		{"wrong token", "GET", "/v1/status", host, with(map[string]string{"Authorization": "Bearer tok2"}), "", 401},
		{"token prefix", "GET", "/v1/status", host, with(map[string]string{"Authorization": "Bearer to"}), "", 401},
		{"other scheme", "GET", "/v1/status", host, with(map[string]string{"Authorization": "Basic tok"}), "", 401},
		{"scheme is case-insensitive", "GET", "/v1/status", host, with(map[string]string{"Authorization": "bearer tok"}), "", 200},
		{"metrics need the token", "GET", "/metrics", host, nil, "", 401},
		{"health is open", "GET", "/healthz", host, nil, "", 200},
		{"keys need the token", "POST", "/v1/keys", host, with(map[string]string{"Authorization": ""}), `{"consumer":"x"}`, 401},
	})
	// No configured token: everything authenticated is refused (fail closed).
	runGuardCases(t, Access{ListenAddr: host}, []guardCase{
		{"empty bearer", "GET", "/v1/status", host, with(map[string]string{"Authorization": "Bearer "}), "", 401},
		{"no header", "POST", "/v1/policy", host, with(map[string]string{"Authorization": ""}), pushBody(t), 401},
	})
}

// TestCrossSitePushLeavesPolicyUntouched sends the cross-site requests a
// web page can make without a CORS preflight (text/plain POST, with and
// without Origin, under a rebound name) and checks nothing was pushed.
func TestCrossSitePushLeavesPolicyUntouched(t *testing.T) {
	s := newTestServer(t, Access{Token: "tok", ListenAddr: "127.0.0.1:9900"})
	h := s.Handler()
	for _, hdr := range []map[string]string{
		{"Content-Type": "text/plain", "Origin": "http://evil.example"},
		{"Content-Type": "text/plain"},
		{"Content-Type": "text/plain", "Origin": "http://127.0.0.1:9900"},
	} {
		for _, host := range []string{"127.0.0.1:9900", "evil.example:9900"} {
			req := httptest.NewRequest("POST", "/v1/policy", strings.NewReader(pushBody(t)))
			req.Host = host
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code/100 == 2 {
				t.Errorf("cross-site push %v to %s = %d, want a refusal", hdr, host, rec.Code)
			}
		}
	}
	if v := s.ctl.Current(); v != nil {
		t.Fatalf("a refused push changed the policy to %s", v.ID)
	}
}
