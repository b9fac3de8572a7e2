package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tollgate/tollgate/extauthz"
	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/policy"
	"github.com/tollgate/tollgate/policy/ir"
)

// openKeyStore returns the API-key store: Redis when --redis is set (the
// pepper is then required, so every replica computes the same HMACs), or an
// in-memory store with a random pepper for a single process. Either signs
// new keys with a Signer derived from the pepper (apikey.NewSigner), so
// every replica sharing the pepper verifies them alike.
func openKeyStore(ctx context.Context, o serveOptions, log *slog.Logger) (apikey.Store, error) {
	pepper := o.keyPepper
	if pepper == "" {
		pepper = os.Getenv(envPepper)
	}
	if o.redisURL == "" {
		if pepper == "" {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return nil, fmt.Errorf("generate key pepper: %w", err)
			}
			pepper = string(b)
		}
		log.Warn("API keys are kept in memory: they are lost on restart and not shared between processes; use --redis in production")
		signer, err := apikey.NewSigner([]byte(pepper))
		if err != nil { // a short pepper given for the memory store: keep it working, opaque keys only
			log.Warn("the key pepper is too short to sign API keys: new keys are opaque", "err", err)
		}
		return apikey.NewMemoryStoreWithSigner([]byte(pepper), signer), nil
	}
	if len(pepper) < 16 {
		return nil, &UsageError{fmt.Errorf("--redis needs a key pepper of at least 16 bytes: set --key-pepper or %s", envPepper)}
	}
	opts, err := hotPathRedisOptions(o.redisURL)
	if err != nil {
		return nil, &UsageError{fmt.Errorf("--redis: %w", err)}
	}
	signer, err := apikey.NewSigner([]byte(pepper))
	if err != nil {
		return nil, &UsageError{fmt.Errorf("key pepper: %w", err)}
	}
	st, err := apikey.NewRedisStore(ctx, newRedisClient(opts), []byte(pepper), apikey.RedisOptions{Logger: log, Signer: signer})
	if err != nil {
		return nil, fmt.Errorf("open API key store: %w", err)
	}
	return st, nil
}

// runAuthzOnly serves ext_authz alone, so it scales apart from the control
// plane: it follows the store in --data-dir (the control plane's current
// version) and swaps its table when the version changes.
func runAuthzOnly(ctx context.Context, o serveOptions, log *slog.Logger) error {
	st, err := openStore(ctx, o, log)
	if err != nil {
		return err
	}
	keys, err := openKeyStore(ctx, o, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	// Routes on ext_authz take their rate limits in the Check: the replica
	// counts them itself, on the same Redis as the rate-limit service.
	limiter, err := newRateLimiter(o, log, reg)
	if err != nil {
		return err
	}
	authz := extauthz.New(ctx, extauthz.Options{Logger: log, Keys: keys, Getenv: os.Getenv, Metrics: extauthz.NewMetrics(reg),
		RateLimit: limiter})
	defer authz.Close()
	svc := swappers{limiter, authz}
	tracer, err := newTracer(ctx, o, "tollgate-authz")
	if err != nil {
		return err
	}
	defer shutdownTracer(tracer)
	g := newGRPCServer(tracer.ServerOptions()...)
	authz.Register(g)
	// Load the policy before listening: a restarted replica must never
	// answer a Check without knowing the routes.
	served := syncTable(st, svc, "", log)
	l, err := net.Listen("tcp", o.authzAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.authzAddr, err)
	}
	go serveGRPC(g, l, "authz", log)
	defer stopGRPC(g, o.ha.grace)
	stopHTTP, err := serveMetrics(o.adminAddr, reg, log)
	if err != nil {
		return err
	}
	defer stopHTTP()
	log.Info("authz service ready", "authz", l.Addr().String(), "store", describeStore(o))
	follow(ctx, st, svc, log, served)
	return nil
}

// swappers swaps the tables of several services as one: all or none.
type swappers []controlplane.TableSwapper

// Swap swaps each service's table in order; when one fails, the ones
// already swapped are restored.
func (ss swappers) Swap(cfg *ir.Config) (restore func(), err error) {
	var restores []func()
	undo := func() {
		for i := len(restores) - 1; i >= 0; i-- {
			restores[i]()
		}
	}
	for _, s := range ss {
		r, err := s.Swap(cfg)
		if err != nil {
			undo()
			return nil, err
		}
		restores = append(restores, r)
	}
	return undo, nil
}

// openStore opens the policy store (--store, or the directory --data-dir).
func openStore(ctx context.Context, o serveOptions, log *slog.Logger) (store.Store, error) {
	return openPolicyStore(ctx, o, log)
}

// follow swaps svc's table whenever the store's current version changes,
// on the store's change notifications and every second, until ctx ends.
func follow(ctx context.Context, st store.Store, svc controlplane.TableSwapper, log *slog.Logger, served string) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	changes := st.Changes(ctx)
	for {
		served = syncTable(st, svc, served, log)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case _, open := <-changes:
			if !open { // closed: ctx ended
				return
			}
		}
	}
}

// syncTable swaps svc's table to the store's current version unless it is
// served already, and returns the served version. It reads the current
// version's id each time and the version itself only when the id changed.
func syncTable(st store.Store, svc controlplane.TableSwapper, served string, log *slog.Logger) string {
	id, err := st.CurrentID()
	if err != nil {
		log.Warn("read policy store", "err", err)
		return served
	}
	if id == "" || id == served {
		return served
	}
	v, err := st.Get(id)
	if err != nil {
		log.Warn("read policy store", "err", err)
		return served
	}
	if err := swapVersion(svc, v); err != nil {
		log.Error("cannot serve policy version", "version", v.ID, "err", err)
		return served
	}
	log.Info("serving policy version", "version", v.ID)
	return v.ID
}

func swapVersion(svc controlplane.TableSwapper, v *store.Version) error {
	files := make([]policy.File, len(v.Files))
	for i, f := range v.Files {
		files[i] = policy.File{Name: f.Name, Content: []byte(f.Content)}
	}
	cfg, diags := policy.Build(files)
	if diags.HasErrors() {
		return diags.Err()
	}
	_, err := svc.Swap(cfg)
	return err
}

// serveMetrics serves /metrics and /healthz on addr.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (func(), error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return func() { _ = srv.Close() }, nil
}
