package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/xds"
	"github.com/tollgate/tollgate/xds/translator"
)

type nopApplier struct{}

func (nopApplier) Apply(context.Context, map[string]*translator.Resources) ([]xds.GatewayResult, error) {
	return nil, nil
}
func (nopApplier) Status() []xds.NodeStatus { return nil }

func newTestAPI(t *testing.T, token string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(newTestServer(t, Access{Token: token}).Handler())
	t.Cleanup(srv.Close)
	return srv
}

// newTestServer returns a ready admin API over an empty directory store.
func newTestServer(t *testing.T, access Access) *Server {
	t.Helper()
	st, err := store.OpenDir(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := NewServer(log, controlplane.New(log, st, nopApplier{}, controlplane.Options{}), nil, access, prometheus.NewRegistry())
	s.SetReady()
	return s
}

const validPolicy = `version: 1
gateways:
  - name: public
    listeners: [{name: http, port: 8080}]
routes:
  - {name: r, backend: b, auth: none}
backends:
  - {name: b, endpoints: ["127.0.0.1:9001"]}
  - {name: unused, endpoints: ["127.0.0.1:9002"]}
`

func TestAdminRequiresToken(t *testing.T) {
	srv := newTestAPI(t, "s3cret")
	tests := []struct {
		name, token string
		wantStatus  int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "nope", http.StatusUnauthorized},
		{"right token", "s3cret", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClient(srv.URL, tt.token).Status(context.Background())
			got := http.StatusOK
			var apiErr *APIError
			if errors.As(err, &apiErr) {
				got = apiErr.Status
			}
			if got != tt.wantStatus {
				t.Fatalf("status = %d (%v), want %d", got, err, tt.wantStatus)
			}
		})
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz without token: %v %v", resp, err)
	}
}

func TestAdminPushRoundTrip(t *testing.T) {
	srv := newTestAPI(t, "tok")
	c := NewClient(srv.URL, "tok")
	ctx := context.Background()
	res, err := c.Push(ctx, PolicyRequest{Files: []store.File{{Name: "p.yaml", Content: validPolicy}}, Source: "test", Message: "first cut"})
	if err != nil || !res.Applied {
		t.Fatalf("push = %+v, %v", res, err)
	}
	if len(res.Diagnostics.Warnings()) != 1 {
		t.Errorf("push diagnostics = %v, want the unused-backend warning to survive JSON", res.Diagnostics)
	}
	cur, err := c.Current(ctx)
	if err != nil || cur.ID != res.Version || cur.Files[0].Content != validPolicy {
		t.Fatalf("current = %+v, %v", cur, err)
	}
	h, err := c.History(ctx)
	if err != nil || len(h) != 1 || h[0].Source != "test" || h[0].Reason != "first cut" {
		t.Fatalf("history = %+v, %v", h, err)
	}
}

func TestAdminRejectsInvalidPolicyWithDiagnostics(t *testing.T) {
	srv := newTestAPI(t, "tok")
	bad := "version: 1\ngateways:\n  - name: public\n    listeners: [{name: http, port: 0}]\nroutes:\n  - {name: r, backend: nope}\n"
	_, err := NewClient(srv.URL, "tok").Push(context.Background(), PolicyRequest{Files: []store.File{{Name: "bad.yaml", Content: bad}}})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity {
		t.Fatalf("err = %v, want a 422", err)
	}
	if len(apiErr.Diagnostics.Errors()) < 2 {
		t.Fatalf("diagnostics = %v, want every error (port and backend)", apiErr.Diagnostics)
	}
	for _, d := range apiErr.Diagnostics {
		if d.Range.File != "bad.yaml" || d.Range.Line == 0 || d.Path == "" {
			t.Errorf("diagnostic without file:line or path: %+v", d)
		}
	}
}

func TestAdminUnknownVersionIs404(t *testing.T) {
	srv := newTestAPI(t, "tok")
	_, err := NewClient(srv.URL, "tok").Rollback(context.Background(), RollbackRequest{Version: "abcdef012345"})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("err = %v, want 404", err)
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9900", true}, {"localhost:1", true}, {"[::1]:9900", true},
		{"0.0.0.0:9900", false}, {":9900", false}, {"10.0.0.1:80", false},
	}
	for _, tt := range tests {
		if got := IsLoopback(tt.addr); got != tt.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}
