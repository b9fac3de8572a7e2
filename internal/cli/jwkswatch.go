package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/internal/jwkswatch"
	"github.com/tollgate/tollgate/xds"
)

// envJWKSWatch overrides the JWKS watch's interval (jwkswatch.Options):
// for tests only (the e2e suite sets 1s, to see a withdrawal within
// seconds); it is not a supported setting, so it is no flag.
const envJWKSWatch = "TOLLGATE_TEST_JWKS_WATCH_INTERVAL"

// jwksWatchSwappers returns the JWKS watch (newJWKSWatch) as the policy
// follower it is, or none when envoyModule is set: the module then decides
// every native route, no jwt_authn runs, and the module drops a withdrawn
// key's tokens at its own JWKS refresh (docs/operations/envoy-module.md),
// so the control plane has nothing to watch.
func jwksWatchSwappers(ctx context.Context, envoyModule string, xsrv *xds.Server, log *slog.Logger) ([]controlplane.TableSwapper, error) {
	if envoyModule != "" {
		return nil, nil
	}
	w, err := newJWKSWatch(ctx, xsrv, log)
	if err != nil {
		return nil, err
	}
	return []controlplane.TableSwapper{w}, nil
}

// newJWKSWatch returns the watch of the remote JWKS jwt_authn verifies,
// which starts a new JWKS epoch on xsrv when one loses a key (jwt_authn's
// token caches outlive a withdrawn key otherwise).
func newJWKSWatch(ctx context.Context, xsrv *xds.Server, log *slog.Logger) (*jwkswatch.Watch, error) {
	var interval time.Duration
	if v := os.Getenv(envJWKSWatch); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive duration", envJWKSWatch, v)
		}
		interval = d
	}
	w, err := jwkswatch.New(ctx, jwkswatch.Options{Interval: interval, Logger: log,
		Bump: func(reason string) { xsrv.BumpJWKSEpoch(reason) }})
	if err != nil {
		return nil, fmt.Errorf("jwks watch: %w", err)
	}
	return w, nil
}
