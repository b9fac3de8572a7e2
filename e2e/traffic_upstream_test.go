package e2e

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// trafficUpstream is an upstream whose health and failures the test
// switches: /healthz answers 200 while healthy (503 otherwise); every other
// path answers 503 while failing, else 200 (paths ending in /slow after
// 400ms). Every answer names it in
// X-Upstream. It counts the requests it served (health checks apart) and
// the mirrored copies (whose Host ends in "-shadow").
type trafficUpstream struct {
	name     string
	addr     string
	unhealth atomic.Bool
	failing  atomic.Bool
	served   atomic.Int64
	shadowed atomic.Int64
}

func startTrafficUpstream(t *testing.T, name string) *trafficUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &trafficUpstream{name: name, addr: ln.Addr().String()}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("upstream %s: %v", name, err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return u
}

func (u *trafficUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Upstream", u.name)
	if r.URL.Path == "/healthz" {
		if u.unhealth.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return
	}
	u.served.Add(1)
	if r.URL.Path == "/slow" || strings.HasSuffix(r.URL.Path, "/slow") {
		select {
		case <-time.After(400 * time.Millisecond):
		case <-r.Context().Done():
		}
	}
	if strings.HasSuffix(r.Host, "-shadow") {
		u.shadowed.Add(1)
	}
	if u.failing.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
}

// port returns the upstream's port.
func (u *trafficUpstream) port() string {
	_, p, _ := net.SplitHostPort(u.addr)
	return p
}
