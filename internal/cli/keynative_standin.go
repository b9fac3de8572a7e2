package cli

// Stand-in for package extauthz/apikey's signer and exceptions watcher
// (branch keysign, /work/wt/KEYSIGN_API.md) until it lands on main: the
// same key derivation (HKDF-SHA256 of the pepper, info "tollgate api-key
// signing v1", Ed25519) and the same Redis layout, so keys and tables
// written by keysign work unchanged. Replaced by apikey.SignerOf and
// apikey.WatchExceptions once keysign is on main.

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/xds/translator"
)

// Redis keys of the exceptions table (keysign's layout).
const (
	standinExceptionsKey = "tollgate:apikey:{exceptions}"
	standinVersionKey    = "tollgate:apikey:{exceptions}:version"
)

// openNativeKeys returns the native key settings of o: a signer derived
// from the key pepper and a watcher of the exceptions table in Redis; none
// without Redis or a pepper.
func openNativeKeys(o serveOptions, log *slog.Logger) (nativeKeys, error) {
	pepper := o.keyPepper
	if pepper == "" {
		pepper = os.Getenv(envPepper)
	}
	if o.redisURL == "" || len(pepper) < 16 {
		return nativeKeys{}, nil
	}
	jwks, err := standinJWKS([]byte(pepper))
	if err != nil {
		return nativeKeys{}, err
	}
	opts, err := hotPathRedisOptions(o.redisURL)
	if err != nil {
		return nativeKeys{}, &UsageError{fmt.Errorf("--redis: %w", err)}
	}
	rdb := newRedisClient(opts)
	return nativeKeys{jwks: jwks, watch: func(ctx context.Context, onChange func(translator.KeyExceptions)) {
		standinWatch(ctx, rdb, log, onChange)
	}}, nil
}

// standinJWKS is the public JWKS of the key signer of pepper.
func standinJWKS(pepper []byte) (string, error) {
	seed, err := hkdf.Key(sha256.New, pepper, nil, "tollgate api-key signing v1", ed25519.SeedSize)
	if err != nil {
		return "", fmt.Errorf("derive the API-key signer: %w", err)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	b, err := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "OKP", "crv": "Ed25519",
		"x": base64.RawURLEncoding.EncodeToString(pub), "kid": base64.RawURLEncoding.EncodeToString(sum[:9]), "alg": "EdDSA", "use": "sig"}}})
	return string(b), err
}

// standinWatch polls the table every keyExceptionsInterval until ctx ends,
// calling onChange when the table or its freshness changed; the first call
// comes after the first load, or after keyExceptionsMaxStale without one.
func standinWatch(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger, onChange func(translator.KeyExceptions)) {
	start, lastOK := time.Now(), time.Time{}
	var cur translator.KeyExceptions
	version, sent := int64(-1), false
	t := time.NewTicker(keyExceptionsInterval)
	defer t.Stop()
	for {
		v, items, err := standinLoad(ctx, rdb, version)
		switch {
		case err != nil:
			log.Debug("API-key exceptions table unreadable", "err", err)
		case items != nil || v != version:
			cur.Items, version = items, v
			fallthrough
		default:
			lastOK = time.Now()
		}
		fresh := !lastOK.IsZero() && time.Since(lastOK) <= keyExceptionsMaxStale
		changed := !sent || fresh != cur.Fresh || (err == nil && items != nil)
		if (!lastOK.IsZero() || time.Since(start) > keyExceptionsMaxStale) && changed {
			cur.Loaded, cur.Fresh, sent = true, fresh, true
			onChange(cur)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// standinLoad reads the version and, when it differs from have, the items.
func standinLoad(ctx context.Context, rdb redis.UniversalClient, have int64) (int64, []translator.KeyException, error) {
	s, err := rdb.Get(ctx, standinVersionKey).Result()
	if err != nil && err != redis.Nil {
		return 0, nil, err
	}
	v, _ := strconv.ParseInt(s, 10, 64)
	if v == have {
		return v, nil, nil
	}
	m, err := rdb.HGetAll(ctx, standinExceptionsKey).Result()
	if err != nil {
		return 0, nil, err
	}
	items := make([]translator.KeyException, 0, len(m))
	for id, raw := range m {
		var e struct {
			Revoked   bool      `json:"revoked"`
			Tier      string    `json:"tier"`
			Roles     []string  `json:"roles"`
			ExpiresAt time.Time `json:"expiresAt"`
		}
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return 0, nil, fmt.Errorf("exception %q: %w", id, err)
		}
		items = append(items, translator.KeyException{ID: id, Revoked: e.Revoked, Tier: e.Tier, Roles: e.Roles, ExpiresAt: e.ExpiresAt})
	}
	slices.SortFunc(items, func(a, b translator.KeyException) int { return cmpString(a.ID, b.ID) })
	return v, items, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
