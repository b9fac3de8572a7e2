package cli

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	legolog "github.com/go-acme/lego/v5/log"
	"github.com/spf13/pflag"

	"github.com/tollgate/tollgate/internal/acme"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/policy/ir"
)

// defaultACME is the default listen address of the ACME HTTP-01 challenge
// responder.
const defaultACME = "127.0.0.1:18004"

// addACMEFlags registers serve's ACME flags.
func addACMEFlags(fl *pflag.FlagSet, o *serveOptions) {
	fl.StringVar(&o.acmeAddr, "acme-addr", defaultACME, "ACME HTTP-01 challenge responder listen address (opened when a listener uses tls.acme)")
	fl.StringVar(&o.acmeAdvertise, "acme-advertise-addr", "", "challenge responder address as Envoys reach it, HOST:PORT (default: --acme-addr)")
	fl.StringVar(&o.acmeCAFile, "acme-ca-file", "", "PEM file of extra root CAs trusted for the ACME directory's HTTPS (a private or test CA), besides the system roots")
	fl.DurationVar(&o.acmeRetry, "acme-retry", time.Minute, "wait after a failed ACME attempt, doubling after each further failure up to 1h")
}

// advertisedACME is the challenge responder address Envoys are given.
func advertisedACME(o serveOptions) string { return cmp.Or(o.acmeAdvertise, o.acmeAddr) }

// acmeRuntime is serve's ACME part: the Managers of the served policy's
// ACME listeners (a TableSwapper), the certificate source with
// placeholders for certificates not issued yet, and the challenge
// responder, listening from the first policy with an ACME listener on.
type acmeRuntime struct {
	sup    *acme.Supervisor
	source *acme.PendingSource
	resp   *acme.Responder
	addr   string
	log    *slog.Logger

	mu  sync.Mutex
	srv *http.Server
}

// newACME prepares serve's ACME part; certificates go to installer (and
// from there to Envoy over SDS), stored under <data-dir>/acme or, when the
// policy store is Redis, in Redis, shared with the other replicas (with
// the challenge tokens and the order lock).
func newACME(ctx context.Context, o serveOptions, log *slog.Logger, policyStore store.Store, installer interface {
	acme.Installer
	acme.CertSource
}) (*acmeRuntime, error) {
	st, resp, err := openACMEStorage(o, policyStore)
	if err != nil {
		return nil, err
	}
	client, err := acmeHTTPClient(o.acmeCAFile)
	if err != nil {
		return nil, err
	}
	rt := &acmeRuntime{resp: resp, addr: o.acmeAddr, log: log, source: &acme.PendingSource{Next: installer, Storage: st}}
	rt.sup = acme.NewSupervisor(ctx, acme.SupervisorOptions{
		Storage: st, Responder: rt.resp, Installer: installer, HTTPClient: client, Logger: log,
		RetryMin: o.acmeRetry, RetryMax: time.Hour, Poll: o.ha.follow,
	})
	legolog.SetDefault(log.With("component", "lego")) // lego logs through its package-level logger
	return rt, nil
}

// openACMEStorage returns the ACME storage and responder: shared through
// Redis when the policy store is Redis, else <data-dir>/acme and a
// process-local responder.
func openACMEStorage(o serveOptions, policyStore store.Store) (*acme.Storage, *acme.Responder, error) {
	if r, ok := policyStore.(*store.Redis); ok {
		kv := r.ACME()
		return acme.NewSharedStorage(kv), acme.NewSharedResponder(kv), nil
	}
	st, err := acme.OpenStorage(filepath.Join(o.dataDir, "acme"))
	if err != nil {
		return nil, nil, err
	}
	return st, acme.NewResponder(), nil
}

// Swap opens the challenge responder when cfg has an ACME listener, then
// lets the Supervisor follow cfg.
func (rt *acmeRuntime) Swap(cfg *ir.Config) (func(), error) {
	for i := range cfg.Gateways {
		if len(cfg.Gateways[i].ACMEListeners()) > 0 {
			if err := rt.listen(); err != nil {
				return nil, err
			}
			break
		}
	}
	return rt.sup.Swap(cfg)
}

// listen starts the challenge responder once.
func (rt *acmeRuntime) listen() error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.srv != nil {
		return nil
	}
	l, err := net.Listen("tcp", rt.addr)
	if err != nil {
		return fmt.Errorf("ACME challenge responder: listen on %s (--acme-addr): %w", rt.addr, err)
	}
	rt.srv = &http.Server{Handler: rt.resp, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := rt.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rt.log.Error("ACME challenge responder stopped", "err", err)
		}
	}()
	rt.log.Info("ACME challenge responder listening", "addr", l.Addr().String())
	return nil
}

// close stops the Managers and the responder.
func (rt *acmeRuntime) close() {
	rt.sup.Close()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.srv != nil {
		_ = rt.srv.Close()
	}
}

// acmeHTTPClient returns the client that talks to ACME CAs: the system
// roots plus those in caFile, if given.
func acmeHTTPClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return nil, nil // lego's default
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--acme-ca-file: %w", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--acme-ca-file %s: no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}, nil
}
