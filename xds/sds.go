package xds

import (
	"context"

	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// sdsCache is the snapshot cache plus a second, non-ADS snapshot cache that
// answers state-of-the-world SDS requests, both holding the same snapshot
// object per node.
//
// Why: in ADS mode go-control-plane answers a state-of-the-world request
// only if it names every resource of its type in the snapshot. Envoy asks
// for secrets as it meets references to them: the clusters' secrets while
// clusters initialise, the listeners' only once LDS starts, which waits for
// those clusters. The first SDS request never names the listeners' secrets,
// so it would go unanswered until the clusters' initial fetch timeout
// (15 s). A non-ADS cache answers each request with the secrets it names.
// Delta requests carry per-resource subscriptions and stay on the ADS cache.
type sdsCache struct {
	cache.SnapshotCache                     // ADS: everything but SotW SDS
	secrets             cache.SnapshotCache // non-ADS: SotW SDS
}

func newSDSCache(log cacheLogger) *sdsCache {
	return &sdsCache{
		SnapshotCache: cache.NewSnapshotCache(true, cache.IDHash{}, log),
		secrets:       cache.NewSnapshotCache(false, cache.IDHash{}, log),
	}
}

// mux returns the cache the xDS server serves from.
func (c *sdsCache) mux() *cache.MuxCache {
	return &cache.MuxCache{
		Classify: func(r *cache.Request) string {
			if r.GetTypeUrl() == resource.SecretType {
				return "secrets"
			}
			return "ads"
		},
		ClassifyDelta: func(*cache.DeltaRequest) string { return "ads" },
		Caches:        map[string]cache.Cache{"ads": c.SnapshotCache, "secrets": c.secrets},
	}
}

// SetSnapshot sets snap for node in both caches.
func (c *sdsCache) SetSnapshot(ctx context.Context, node string, snap cache.ResourceSnapshot) error {
	if err := c.SnapshotCache.SetSnapshot(ctx, node, snap); err != nil {
		return err
	}
	return c.secrets.SetSnapshot(ctx, node, snap)
}

// ClearSnapshot drops node from both caches.
func (c *sdsCache) ClearSnapshot(node string) {
	c.SnapshotCache.ClearSnapshot(node)
	c.secrets.ClearSnapshot(node)
}
