package extauthz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/internal/racesample"
)

// TestLocalKeysLargeTableCost measures what the Envoy module does on
// Envoy's main thread for each exceptions push at the store's bound
// (apikey.MaxExceptions): decode the FilterConfig JSON and build the
// Local (tgConfigNew), and for a successor (the module's usual push: the
// same config but its table) decode and Local.Derive. It logs the JSON
// size, the times and the heap kept;
// it fails only when one push holds the main thread for more than a
// second (a rough budget: every revocation pushes the whole table), and
// not under the race detector (about ten times slower).
func TestLocalKeysLargeTableCost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a table of apikey.MaxExceptions entries")
	}
	sig, err := apikey.NewSigner(keyPepper)
	if err != nil {
		t.Fatal(err)
	}
	k := &envoymod.Keys{PublicKey: base64.RawURLEncoding.EncodeToString(sig.PublicKey()), Fresh: true, Epoch: "e1"}
	for i := range apikey.MaxExceptions {
		e := envoymod.KeyException{ID: fmt.Sprintf("k%021d", i), Revoked: i%2 == 0}
		if !e.Revoked {
			e.Tier, e.Roles, e.ExpiresAt = "pro", []string{"user", "reader"}, time.Now().Add(time.Hour).Unix()
		}
		k.Exceptions = append(k.Exceptions, e)
	}
	b, err := json.Marshal(envoymod.FilterConfig{IdentityHeaders: testIdentityHeaders, KeyHeader: "x-api-key", Keys: k})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	cfg, err := envoymod.DecodeFilterConfig(b) // the module's decoding
	if err != nil {
		t.Fatal(err)
	}
	decoded := time.Since(start)
	local, err := NewLocal(context.Background(), cfg, LocalOptions{Options: Options{Logger: quietLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	took := time.Since(start)
	cfg = envoymod.FilterConfig{}
	runtime.GC()
	runtime.ReadMemStats(&after)
	succ := successorCost(t, local, b)
	t.Logf("%d exceptions: config JSON %.1f MB; decode %s, decode+NewLocal %s, a successor's decode+Derive %s; "+
		"heap kept %.1f MB", len(k.Exceptions), float64(len(b))/1e6, decoded.Round(time.Millisecond),
		took.Round(time.Millisecond), succ.Round(time.Millisecond),
		float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/1e6)
	if max(took, succ) > time.Second && !racesample.Enabled {
		t.Errorf("one exceptions push holds Envoy's main thread %s, budget 1s", max(took, succ).Round(time.Millisecond))
	}
}

// successorCost is what the module's successor of prev (a push of the
// config b) costs: decode, then Local.Derive.
func successorCost(t *testing.T, prev *Local, b []byte) time.Duration {
	t.Helper()
	runtime.GC()
	start := time.Now()
	cfg, err := envoymod.DecodeFilterConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	next, err := prev.Derive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	next.Close()
	return took
}
