package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/tollgate/tollgate/internal/jwkswatch"
	"github.com/tollgate/tollgate/xds"
)

// envJWKSWatch overrides the JWKS watch's interval (jwkswatch.Options):
// for tests only (the e2e suite sets 1s, to see a withdrawal within
// seconds); it is not a supported setting, so it is no flag.
const envJWKSWatch = "TOLLGATE_TEST_JWKS_WATCH_INTERVAL"

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
