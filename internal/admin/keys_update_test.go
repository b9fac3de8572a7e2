package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/internal/store"
)

const tieredPolicy = validPolicy + `rateLimits:
  tiers: {free: [{requests: 10, per: minute}], pro: unlimited}
  defaultTier: free
`

// newKeysAPI returns a client of an admin API with a memory key store,
// serving policy unless it is empty.
func newKeysAPI(t *testing.T, policy string) (*Client, *apikey.MemoryStore) {
	t.Helper()
	st, err := store.OpenDir(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	keys := apikey.NewMemoryStore([]byte("0123456789abcdef0123"))
	s := NewServer(log, controlplane.New(log, st, nopApplier{}, controlplane.Options{}), keys, Access{Token: "tok"}, prometheus.NewRegistry())
	s.SetReady()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	c := NewClient(srv.URL, "tok")
	if policy != "" {
		if _, err := c.Push(context.Background(), PolicyRequest{Files: []store.File{{Name: "p.yaml", Content: policy}}}); err != nil {
			t.Fatal(err)
		}
	}
	return c, keys
}

func apiStatus(err error) int {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status
	}
	if err != nil {
		return -1
	}
	return http.StatusOK
}

// TestCreateKeyChecksTheTier: a tier the served policy does not define is
// refused with the known tiers, instead of falling back to the default
// tier silently; without tiers in the policy any tier goes.
func TestCreateKeyChecksTheTier(t *testing.T) {
	tests := []struct {
		name, policy, tier string
		wantStatus         int
		wantErr            string
	}{
		{"known tier", tieredPolicy, "pro", http.StatusCreated, ""},
		{"no tier", tieredPolicy, "", http.StatusCreated, ""},
		{"typo", tieredPolicy, "prro", http.StatusBadRequest, `unknown tier "prro": the served policy's tiers are free, pro`},
		{"policy without tiers", validPolicy, "gold", http.StatusCreated, ""},
		{"no policy yet", "", "gold", http.StatusCreated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newKeysAPI(t, tt.policy)
			_, err := c.CreateKey(context.Background(), CreateKeyRequest{Consumer: "alice", Tier: tt.tier})
			got := apiStatus(err)
			if got == http.StatusOK {
				got = http.StatusCreated
			}
			if got != tt.wantStatus || (tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("create with tier %q = %v (status %d), want %d %q", tt.tier, err, got, tt.wantStatus, tt.wantErr)
			}
		})
	}
}

// TestUpdateKeyKeepsTheKey: PATCH /v1/keys/{id} changes tier, roles and
// expiry; the same key authenticates with the new values at once.
func TestUpdateKeyKeepsTheKey(t *testing.T) {
	ctx := context.Background()
	c, keys := newKeysAPI(t, tieredPolicy)
	created, err := c.CreateKey(ctx, CreateKeyRequest{Consumer: "alice", Tier: "free", Roles: []string{"user"}, ExpiresIn: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Record.ID
	pro, roles, never := "pro", []string{"user", "admin"}, neverExpires
	rec, err := c.UpdateKey(ctx, id, UpdateKeyRequest{Tier: &pro, Roles: &roles, ExpiresIn: &never})
	if err != nil || rec.Tier != pro || !slices.Equal(rec.Roles, roles) || !rec.ExpiresAt.IsZero() {
		t.Fatalf("update = %+v, %v", rec, err)
	}
	got, err := keys.Lookup(ctx, created.Key)
	if err != nil || got.Tier != pro || !slices.Equal(got.Roles, roles) || !got.ExpiresAt.IsZero() {
		t.Fatalf("lookup of the same key after the update = %+v, %v", got, err)
	}
	day := "24h"
	if rec, err := c.UpdateKey(ctx, id, UpdateKeyRequest{ExpiresIn: &day}); err != nil || rec.Tier != pro || time.Until(rec.ExpiresAt) < 23*time.Hour {
		t.Fatalf("update of the expiry alone = %+v, %v", rec, err)
	}
	typo, bad := "prro", "soon"
	tests := []struct {
		name, id   string
		req        UpdateKeyRequest
		wantStatus int
	}{
		{"unknown tier", id, UpdateKeyRequest{Tier: &typo}, http.StatusBadRequest},
		{"bad expiry", id, UpdateKeyRequest{ExpiresIn: &bad}, http.StatusBadRequest},
		{"nothing to change", id, UpdateKeyRequest{}, http.StatusBadRequest},
		{"unknown key", "NoSuchId", UpdateKeyRequest{Tier: &pro}, http.StatusNotFound},
	}
	for _, tt := range tests {
		if _, err := c.UpdateKey(ctx, tt.id, tt.req); apiStatus(err) != tt.wantStatus {
			t.Errorf("%s: %v, want HTTP %d", tt.name, err, tt.wantStatus)
		}
	}
	if err := c.RevokeKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateKey(ctx, id, UpdateKeyRequest{Tier: &pro}); apiStatus(err) != http.StatusConflict {
		t.Errorf("update of a revoked key: %v, want 409", err)
	}
}

// TestUpdateKeyRefusesRolesThatSplit: PATCH refuses a role the roles
// header would split, like create does, and leaves the key unchanged.
func TestUpdateKeyRefusesRolesThatSplit(t *testing.T) {
	c, _ := newKeysAPI(t, "")
	created, err := c.CreateKey(context.Background(), CreateKeyRequest{Consumer: "acme", Roles: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{"user,admin"}
	_, err = c.UpdateKey(context.Background(), created.Record.ID, UpdateKeyRequest{Roles: &bad})
	if apiStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "roles[0]") {
		t.Fatalf("update with role %q: %v, want 400 naming roles[0]", bad[0], err)
	}
}
