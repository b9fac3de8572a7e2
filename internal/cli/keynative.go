package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/tollgate/tollgate/xds/translator"
)

// Native API-key path settings: how often the exceptions table is polled
// and how long a table may go unconfirmed before Envoy refuses signed keys
// (503 key_store_unavailable).
const (
	keyExceptionsInterval = 200 * time.Millisecond
	keyExceptionsMaxStale = time.Second
)

// nativeKeys is what `tollgate serve` needs for the native API-key path:
// the signer's public JWKS (for the translator) and the exceptions-table
// watcher. A zero nativeKeys (no signer) leaves every API-key route on
// ext_authz.
type nativeKeys struct {
	jwks string
	// watch blocks until ctx ends, calling onChange with every new view of
	// the exceptions table.
	watch func(ctx context.Context, onChange func(translator.KeyExceptions))
}

// serveKeyExceptions runs the watcher and pushes every view to set (the
// xDS server's SetKeyExceptions). Every control-plane replica runs its
// own, reading the shared store, so a revocation made through any replica
// reaches the Envoys of all of them.
func (k nativeKeys) serveKeyExceptions(ctx context.Context, set func(translator.KeyExceptions), log *slog.Logger) {
	if k.watch == nil {
		return
	}
	go k.watch(ctx, func(x translator.KeyExceptions) {
		log.Debug("API-key exceptions table", "items", len(x.Items), "fresh", x.Fresh)
		set(x)
	})
}
