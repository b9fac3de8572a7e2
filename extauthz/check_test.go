package extauthz

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/policy/ir"
)

// newTestService returns a service with API keys in memory and one key
// for consumer acme (roles user), which it returns.
func newTestService(t *testing.T) (*Service, string) {
	t.Helper()
	keys := apikey.NewMemoryStore([]byte("unit-test-pepper-0123456789"))
	key, _, err := keys.Create(context.Background(), apikey.Record{Consumer: "acme", Tier: "pro", Tenant: "t1",
		Roles: []string{"user"}, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	s := New(context.Background(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Keys: keys})
	t.Cleanup(s.Close)
	cfg := &ir.Config{Auth: ir.Auth{APIKeys: &ir.APIKeys{Header: "x-api-key"},
		IdentityHeaders: ir.IdentityHeaders{UserID: "x-user-id", Roles: "x-user-roles", Tenant: "x-tenant-id", Tier: "x-consumer-tier"}}}
	if _, err := s.Swap(cfg); err != nil {
		t.Fatal(err)
	}
	return s, key
}

// checkReq builds a CheckRequest for a route requirement and headers.
func checkReq(ext map[string]string, method string, headers map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		ContextExtensions: ext,
		Request:           &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: method, Headers: headers}},
	}}
}

func route(methods, roles string) map[string]string {
	ext := map[string]string{contract.KeyRoute: "r", contract.KeyMethods: methods}
	if roles != "" {
		ext[contract.KeyRoles] = roles
	}
	return ext
}

func TestCheckDecisions(t *testing.T) {
	s, key := newTestService(t)
	tests := []struct {
		name       string
		ext        map[string]string
		method     string
		headers    map[string]string
		wantStatus int // 0: allowed
		wantReason string
	}{
		{"valid key", route("apiKey", "user"), "GET", map[string]string{"x-api-key": key}, 0, ""},
		{"valid key, Authorization form", route("apiKey", ""), "GET", map[string]string{"authorization": "ApiKey " + key}, 0, ""},
		{"missing role", route("apiKey", "admin"), "GET", map[string]string{"x-api-key": key}, 403, "missing_role"},
		{"no credentials", route("apiKey", ""), "GET", nil, 401, "missing_credentials"},
		{"malformed key", route("apiKey", ""), "GET", map[string]string{"x-api-key": "tg_nope"}, 401, "malformed_key"},
		{"method not allowed on route", route("jwt", ""), "GET", map[string]string{"x-api-key": key}, 401, "method_not_allowed"},
		{"two credentials", route("apiKey", ""), "GET", map[string]string{"x-api-key": key, "authorization": "Bearer x.y.z"}, 401, "ambiguous_credentials"},
		{"repeated header joined by Envoy", route("apiKey", ""), "GET", map[string]string{"x-api-key": key + "," + key}, 401, "ambiguous_credentials"},
		{"basic auth scheme", route("apiKey", ""), "GET", map[string]string{"authorization": "Basic dTpw"}, 401, "unsupported_scheme"},
		{"no route requirement", map[string]string{}, "GET", map[string]string{"x-api-key": key}, 403, "no_route_requirement"},
		// Envoy's CORS filter answers real preflights on routes with a CORS
		// policy; one that reaches ext_authz is an ordinary request.
		{"CORS preflight headers are no credential", route("apiKey", "admin"), "OPTIONS", map[string]string{"origin": "https://a.test", "access-control-request-method": "GET"}, 401, "missing_credentials"},
		{"OPTIONS without preflight headers", route("apiKey", ""), "OPTIONS", nil, 401, "missing_credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := s.Check(context.Background(), checkReq(tt.ext, tt.method, tt.headers))
			if err != nil {
				t.Fatalf("Check returned an error (it must deny instead): %v", err)
			}
			status, reason := outcome(resp)
			if status != tt.wantStatus || reason != tt.wantReason {
				t.Fatalf("Check = %d %q, want %d %q", status, reason, tt.wantStatus, tt.wantReason)
			}
		})
	}
}

// outcome returns the HTTP status of a denial (0 when allowed) and its reason.
func outcome(resp *authv3.CheckResponse) (int, string) {
	if d := resp.GetDeniedResponse(); d != nil {
		return int(d.GetStatus().GetCode()), resp.GetStatus().GetMessage()
	}
	return 0, ""
}

func TestCheckAllowedSetsIdentityAndStripsCredentials(t *testing.T) {
	s, key := newTestService(t)
	resp, _ := s.Check(context.Background(), checkReq(route("apiKey", "user"), "GET", map[string]string{"x-api-key": key}))
	ok := resp.GetOkResponse()
	if ok == nil || resp.GetStatus().GetCode() != int32(code.Code_OK) {
		t.Fatalf("not allowed: %v", resp)
	}
	want := map[string]string{"x-user-id": "acme", "x-user-roles": "user", "x-tenant-id": "t1", "x-consumer-tier": "pro"}
	for _, h := range ok.GetHeaders() {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %s is not set with OVERWRITE_IF_EXISTS_OR_ADD", h.GetHeader().GetKey())
		}
		if want[h.GetHeader().GetKey()] != h.GetHeader().GetValue() {
			t.Errorf("header %s = %q", h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		delete(want, h.GetHeader().GetKey())
	}
	if len(want) != 0 {
		t.Errorf("identity headers not set: %v", want)
	}
	if got := strings.Join(ok.GetHeadersToRemove(), ","); got != "authorization,x-api-key" {
		t.Errorf("headers_to_remove = %q, want the credentials", got)
	}
	md := resp.GetDynamicMetadata().GetFields()
	if md["consumer"].GetStringValue() != "acme" || md["tier"].GetStringValue() != "pro" || md["route"].GetStringValue() != "r" {
		t.Errorf("dynamic metadata = %v", md)
	}
}

func TestCheckDeniedResponses(t *testing.T) {
	s, _ := newTestService(t)
	resp, _ := s.Check(context.Background(), checkReq(route("apiKey,jwt", ""), "GET", nil))
	d := resp.GetDeniedResponse()
	if resp.GetStatus().GetCode() != int32(code.Code_UNAUTHENTICATED) || d.GetStatus().GetCode() != 401 {
		t.Fatalf("response = %v", resp)
	}
	hs := map[string]string{}
	for _, h := range d.GetHeaders() {
		hs[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if hs["www-authenticate"] != `Bearer realm="tollgate", ApiKey realm="tollgate"` || hs["content-type"] != "application/json" {
		t.Errorf("headers = %v", hs)
	}
	if d.GetBody() != `{"error":"unauthorized","reason":"missing_credentials"}` {
		t.Errorf("body = %s", d.GetBody())
	}
}

func TestCheckBeforeFirstSwapDenies(t *testing.T) {
	s := New(context.Background(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	resp, err := s.Check(context.Background(), checkReq(route("apiKey", ""), "GET", nil))
	if err != nil {
		t.Fatal(err)
	}
	if status, reason := outcome(resp); status != 503 || reason != "not_ready" {
		t.Fatalf("Check before any table = %d %q, want 503 not_ready", status, reason)
	}
}

func TestSwapRestore(t *testing.T) {
	s, key := newTestService(t)
	restore, err := s.Swap(&ir.Config{}) // a policy without API keys
	if err != nil {
		t.Fatal(err)
	}
	req := checkReq(route("apiKey", ""), "GET", map[string]string{"x-api-key": key})
	if status, _ := outcome(mustCheck(t, s, req)); status != 401 {
		t.Fatalf("after swapping to a policy without API keys: %d, want 401", status)
	}
	restore()
	if status, _ := outcome(mustCheck(t, s, req)); status != 0 {
		t.Fatalf("after restore: %d, want allowed", status)
	}
	if _, err := New(context.Background(), Options{}).Swap(&ir.Config{Auth: ir.Auth{APIKeys: &ir.APIKeys{Header: "x-api-key"}}}); err == nil {
		t.Fatal("a policy with API keys was accepted by a service without a key store")
	}
}

func mustCheck(t *testing.T, s *Service, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	resp, err := s.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
