package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/admin"
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

// newKeysServer serves the admin API over a signing memory key store, as
// tollgate serve wires it.
func newKeysServer(t *testing.T) (string, *apikey.MemoryStore) {
	t.Helper()
	st, err := store.OpenDir(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	pepper := []byte("0123456789abcdef0123")
	signer, err := apikey.NewSigner(pepper)
	if err != nil {
		t.Fatal(err)
	}
	keys := apikey.NewMemoryStoreWithSigner(pepper, signer)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := admin.NewServer(log, controlplane.New(log, st, nopApplier{}, controlplane.Options{}), keys,
		admin.Access{Token: "tok"}, prometheus.NewRegistry())
	s.SetReady()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL, keys
}

// TestKeysCreateFormat: keys create issues a signed key by default and an
// opaque one with --format opaque; either authenticates against the store
// (the ext_authz path); an unknown format is a usage error before any call.
func TestKeysCreateFormat(t *testing.T) {
	url, keys := newKeysServer(t)
	tests := []struct {
		name   string
		args   []string
		prefix string
		format string
	}{
		{"default", nil, apikey.SignedKeyPrefix, apikey.FormatSigned},
		{"signed", []string{"--format", "signed"}, apikey.SignedKeyPrefix, apikey.FormatSigned},
		{"opaque", []string{"--format", "opaque"}, "tg_", apikey.FormatOpaque},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"keys", "create", "--consumer", "alice", "--roles", "user", "--server", url, "--token", "tok", "-o", "json"}, tt.args...)
			if code := Execute(args, &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			var res admin.CreateKeyResponse
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("output %q: %v", out.String(), err)
			}
			if !strings.HasPrefix(res.Key, tt.prefix) || res.Record.Format != tt.format {
				t.Fatalf("key %q, record %+v; want prefix %q and format %s", res.Key, res.Record, tt.prefix, tt.format)
			}
			rec, err := keys.Lookup(context.Background(), res.Key)
			if err != nil || rec.ID != res.Record.ID || rec.Consumer != "alice" {
				t.Fatalf("Lookup of the created key = %+v, %v", rec, err)
			}
		})
	}
	var out, errOut bytes.Buffer
	code := Execute([]string{"keys", "create", "--consumer", "alice", "--format", "jwt", "--server", "http://127.0.0.1:1"}, &out, &errOut)
	if all := out.String() + errOut.String(); code != ExitUsage || !strings.Contains(all, `--format "jwt": want signed or opaque`) {
		t.Errorf("--format jwt: exit %d, output %q; want a usage error", code, all)
	}
}

// TestKeysCreateTextOutputSigned: the text output's first line is the
// signed key alone, the second names its id.
func TestKeysCreateTextOutputSigned(t *testing.T) {
	url, _ := newKeysServer(t)
	var out, errOut bytes.Buffer
	if code := Execute([]string{"keys", "create", "--consumer", "bob", "--server", url, "--token", "tok"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(out.String(), "\n")
	id, err := apikey.Parse(lines[0])
	if err != nil || !strings.Contains(lines[1], "(id "+id+",") {
		t.Fatalf("output %q: first line must be the key (%v), the second name its id", out.String(), err)
	}
}
