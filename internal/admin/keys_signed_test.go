package admin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/internal/store"
)

// TestSignedKeysAPI: a signing store issues signed keys by default; an
// unknown format, and extending a signed key's expiry, are 400s that say
// what to do.
func TestSignedKeysAPI(t *testing.T) {
	st, err := store.OpenDir(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	pepper := []byte("0123456789abcdef0123")
	signer, err := apikey.NewSigner(pepper)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := NewServer(log, controlplane.New(log, st, nopApplier{}, controlplane.Options{}),
		apikey.NewMemoryStoreWithSigner(pepper, signer), Access{Token: "tok"}, prometheus.NewRegistry())
	s.SetReady()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	c, ctx := NewClient(srv.URL, "tok"), context.Background()

	created, err := c.CreateKey(ctx, CreateKeyRequest{Consumer: "alice", ExpiresIn: "1h"})
	if err != nil || !strings.HasPrefix(created.Key, apikey.SignedKeyPrefix) || created.Record.Format != apikey.FormatSigned {
		t.Fatalf("CreateKey = %+v, %v; want a signed key", created, err)
	}
	_, err = c.CreateKey(ctx, CreateKeyRequest{Consumer: "alice", Format: "jwt"})
	if apiStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), `format "jwt"`) {
		t.Errorf("CreateKey with format jwt: %v, want 400 naming the format", err)
	}
	for _, expires := range []string{"2h", "never"} {
		_, err := c.UpdateKey(ctx, created.Record.ID, UpdateKeyRequest{ExpiresIn: &expires})
		if apiStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "can only be shortened; create a new key") {
			t.Errorf("UpdateKey expiresIn %s: %v, want 400 saying a signed key's expiry can only be shortened", expires, err)
		}
	}
	shorter := "30m"
	if _, err := c.UpdateKey(ctx, created.Record.ID, UpdateKeyRequest{ExpiresIn: &shorter}); err != nil {
		t.Errorf("shortening a signed key: %v", err)
	}
}
