package admin

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/tollgate/tollgate/internal/store"
)

func TestEndpointsAPI(t *testing.T) {
	ctx := context.Background()
	c := NewClient(newTestAPI(t, "").URL, "")
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
