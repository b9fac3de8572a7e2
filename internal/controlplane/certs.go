package controlplane

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/xds/translator"
)

// CertWatcher is where certificate material changes come from:
// *certs.Store.
type CertWatcher interface {
	// Poll re-reads the certificate files and reports whether any changed.
	Poll() bool
	// Changed is signalled when material changed (a run-time Set, say).
	Changed() <-chan struct{}
}

// WatchCertificates polls w every interval (the policy's certificate
// files, by content hash) and listens for its Changed signal; on a change it
// runs RefreshSecrets. It returns when ctx ends.
func (c *Controller) WatchCertificates(ctx context.Context, w CertWatcher, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !w.Poll() {
				continue
			}
			// Poll also signalled Changed: handled on the next turn.
		case <-w.Changed():
			if err := c.RefreshSecrets(ctx); err != nil {
				c.log.Error("certificate rotation failed; Envoy keeps the previous certificates", "err", err)
			}
		}
	}
}

// RefreshSecrets re-translates the served policy, with the stored endpoint
// overrides, with the current certificate material and applies the result. Only SDS secrets can differ
// (the policy did not change), so Apply moves each gateway in one step that
// updates the secrets' content and version: listeners and clusters, which
// reference the secrets by their stable names, are untouched.
func (c *Controller) RefreshSecrets(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.cur.Load()
	if s == nil {
		return nil
	}
	overrides, err := c.store.EndpointOverrides()
	if err != nil {
		return fmt.Errorf("refresh secrets of %s: %w", s.version.ID, err)
	}
	res, err := c.translateAll(withOverrides(s.cfg, overrides), s) // endpoints.go
	if err != nil {
		return fmt.Errorf("refresh secrets of %s: %w", s.version.ID, err)
	}
	if !secretsChanged(s.resources, res) {
		return nil
	}
	if _, err := c.xds.Apply(ctx, res); err != nil {
		return fmt.Errorf("refresh secrets of %s: %w", s.version.ID, err)
	}
	c.cur.Store(&served{version: s.version, cfg: s.cfg, resources: res})
	c.log.Info("certificates refreshed", "version", s.version.ID)
	return nil
}

// secretsChanged reports whether any gateway's secrets differ between a and
// b (same gateways: the policy did not change).
func secretsChanged(a, b map[string]*translator.Resources) bool {
	for g, rb := range b {
		ra := a[g]
		if ra == nil || len(ra.Secrets) != len(rb.Secrets) {
			return true
		}
		for i := range rb.Secrets {
			if !proto.Equal(ra.Secrets[i], rb.Secrets[i]) {
				return true
			}
		}
	}
	return false
}
