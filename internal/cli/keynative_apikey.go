package cli

import (
	"context"
	"log/slog"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/xds/translator"
)

// openNativeKeys returns the native key settings of the key store: its
// signer's public JWKS and a watcher of its exceptions table; none when
// the store signs no keys.
func openNativeKeys(keys apikey.Store, log *slog.Logger) nativeKeys {
	signer := apikey.SignerOf(keys)
	src, ok := keys.(apikey.ExceptionSource)
	if signer == nil || !ok {
		return nativeKeys{}
	}
	return nativeKeys{jwks: signer.JWKS(), watch: func(ctx context.Context, onChange func(translator.KeyExceptions)) {
		apikey.WatchExceptions(ctx, src, keyExceptionsInterval, keyExceptionsMaxStale, log, func(v apikey.ExceptionsView) {
			onChange(keyTable(v))
		})
	}}
}

// keyTable is the translator's form of an exceptions view.
func keyTable(v apikey.ExceptionsView) translator.KeyExceptions {
	out := translator.KeyExceptions{Loaded: true, Fresh: v.Fresh, Epoch: v.Epoch, Items: make([]translator.KeyException, len(v.Items))}
	for i, e := range v.Items {
		out.Items[i] = translator.KeyException{ID: e.ID, Revoked: e.Revoked, Tier: e.Tier, Roles: e.Roles, ExpiresAt: e.ExpiresAt}
	}
	return out
}
