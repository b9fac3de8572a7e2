package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/xds"
	"github.com/tollgate/tollgate/xds/translator"
)

func TestEndpointsAPI(t *testing.T) {
	ctx := context.Background()
	c := NewClient(newTestAPI(t, "tok").URL, "tok")
	if _, err := c.Push(ctx, PolicyRequest{Files: []store.File{{Name: "p.yaml", Content: validPolicy}}}); err != nil {
		t.Fatal(err)
	}
	status := func(err error) int {
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			return apiErr.Status
		}
		if err != nil {
			t.Fatal(err)
		}
		return http.StatusOK
	}
	if _, err := c.Endpoints(ctx, "nope"); status(err) != http.StatusNotFound {
		t.Errorf("unknown backend: %v", err)
	}
	if _, err := c.SetEndpoints(ctx, "b", EndpointsRequest{Endpoints: []string{"users.internal:80"}}); status(err) != http.StatusUnprocessableEntity {
		t.Errorf("DNS name: %v", err)
	}
	if _, err := c.SetEndpoints(ctx, "b", EndpointsRequest{}); status(err) != http.StatusUnprocessableEntity {
		t.Errorf("no endpoints: %v", err)
	}
	v, err := c.SetEndpoints(ctx, "b", EndpointsRequest{Endpoints: []string{"127.0.0.5:80"}})
	if err != nil || !v.Overridden || v.Endpoints[0] != "127.0.0.5:80" {
		t.Fatalf("set = %+v, %v", v, err)
	}
	if v, err = c.Endpoints(ctx, "b"); err != nil || !v.Overridden {
		t.Fatalf("get = %+v, %v", v, err)
	}
	if v, err = c.ResetEndpoints(ctx, "b", "test"); err != nil || v.Overridden || v.Endpoints[0] != "127.0.0.1:9001" {
		t.Fatalf("reset = %+v, %v", v, err)
	}
}

// nackApplier rejects every apply while nack is set, as the xDS server does
// when a proxy NACKs.
type nackApplier struct{ nack atomic.Bool }

func (a *nackApplier) Apply(context.Context, map[string]*translator.Resources) ([]xds.GatewayResult, error) {
	if a.nack.Load() {
		return nil, &xds.NackError{Node: "n1", Nack: xds.Nack{Type: "listener", Message: "cannot bind"}}
	}
	return nil, nil
}
func (a *nackApplier) Status() []xds.NodeStatus { return nil }

// An endpoint change through a replica whose proxies refused the store's
// current version is a conflict (409), and changes nothing.
func TestEndpointsAPIConflictOnReplicaBehindTheStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	controller := func(a controlplane.Applier) *controlplane.Controller {
		st, err := store.OpenDir(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		return controlplane.New(log, st, a, controlplane.Options{})
	}
	mine, other := &nackApplier{}, controller(nopApplier{})
	s := NewServer(log, controller(mine), nil, Access{Token: "tok"}, prometheus.NewRegistry())
	s.SetReady()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	c := NewClient(srv.URL, "tok")
	if _, err := c.Push(ctx, PolicyRequest{Files: []store.File{{Name: "p.yaml", Content: validPolicy}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Push(ctx, []store.File{{Name: "p.yaml", Content: strings.Replace(validPolicy, "8080", "8081", 1)}}, "push", "other"); err != nil {
		t.Fatal(err)
	}
	mine.nack.Store(true)
	var apiErr *APIError
	if _, err := c.SetEndpoints(ctx, "b", EndpointsRequest{Endpoints: []string{"127.0.0.5:80"}}); !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Fatalf("set through the replica behind the store: %v, want 409", err)
	}
	if m, err := other.Endpoints("b"); err != nil || m.Overridden {
		t.Errorf("after the refused change the store has %+v, %v; want no override", m, err)
	}
}
