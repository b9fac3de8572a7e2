package cli

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// waitEnvoyReady polls Envoy's admin /ready until it answers 200 or the
// timeout passes.
func waitEnvoyReady(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s", url, timeout)
		case <-tick.C:
		}
	}
}
