package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/tollgate/tollgate/internal/store"
)

// haOptions are serve's flags for running several replicas: the shared
// store, TLS on the xDS and admin ports, and the shutdown grace period.
type haOptions struct {
	store, storePrefix           string
	follow                       time.Duration
	xdsCert, xdsKey, xdsClientCA string
	adminCert, adminKey          string
	grace                        time.Duration
}

func (h *haOptions) register(fl *pflag.FlagSet) {
	fl.StringVar(&h.store, "store", "", "policy store: empty for the directory --data-dir (one replica), or a Redis URL (redis://host:port/db, rediss://, redis+cluster://, redis+sentinel://) shared by every replica")
	fl.StringVar(&h.storePrefix, "store-prefix", "tollgate:", "prefix of the policy store's Redis keys")
	fl.DurationVar(&h.follow, "store-reconcile", time.Second, "how often a replica re-reads the store's current version (besides Redis pub/sub notifications)")
	fl.StringVar(&h.xdsCert, "xds-tls-cert", "", "PEM certificate chain of the xDS port (enables TLS on it)")
	fl.StringVar(&h.xdsKey, "xds-tls-key", "", "PEM private key of --xds-tls-cert")
	fl.StringVar(&h.xdsClientCA, "xds-client-ca", "", "PEM CA bundle: Envoys must present a client certificate signed by it (mTLS)")
	fl.StringVar(&h.adminCert, "admin-tls-cert", "", "PEM certificate chain of the admin API (serves HTTPS)")
	fl.StringVar(&h.adminKey, "admin-tls-key", "", "PEM private key of --admin-tls-cert")
	fl.DurationVar(&h.grace, "shutdown-grace", 10*time.Second, "on SIGTERM, how long in-flight checks and admin requests may take to finish")
}

// openPolicyStore opens the store --store names (the directory --data-dir
// by default).
func openPolicyStore(ctx context.Context, o serveOptions, log *slog.Logger) (store.Store, error) {
	if o.ha.store == "" || o.ha.store == "dir" {
		return store.OpenDir(o.dataDir, o.keep)
	}
	ro, err := redisOptions(o.ha.store)
	if err != nil {
		return nil, &UsageError{fmt.Errorf("--store: %w", err)}
	}
	return store.OpenRedis(ctx, newRedisClient(ro), store.RedisOptions{Prefix: o.ha.storePrefix, Keep: o.keep, Logger: log})
}

// describeStore names the store for logs.
func describeStore(o serveOptions) string {
	if o.ha.store == "" || o.ha.store == "dir" {
		return o.dataDir
	}
	return "redis " + o.ha.storePrefix
}

// xdsServerOptions returns the xDS server's TLS credentials, if configured:
// TLS 1.2+, and with --xds-client-ca a client certificate is required.
func (h haOptions) xdsServerOptions() ([]grpc.ServerOption, error) {
	if h.xdsCert == "" && h.xdsKey == "" && h.xdsClientCA == "" {
		return nil, nil
	}
	cfg, err := serverTLS(h.xdsCert, h.xdsKey, "--xds-tls")
	if err != nil {
		return nil, err
	}
	if h.xdsClientCA != "" {
		pool, err := loadCAs(h.xdsClientCA)
		if err != nil {
			return nil, &UsageError{fmt.Errorf("--xds-client-ca: %w", err)}
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(cfg))}, nil
}

// adminListener wraps l in TLS when --admin-tls-cert is set.
func (h haOptions) adminListener(l net.Listener) (net.Listener, error) {
	if h.adminCert == "" && h.adminKey == "" {
		return l, nil
	}
	cfg, err := serverTLS(h.adminCert, h.adminKey, "--admin-tls")
	if err != nil {
		return nil, err
	}
	cfg.NextProtos = []string{"http/1.1"}
	return tls.NewListener(l, cfg), nil
}

// serverTLS loads a certificate and key (both required) into a TLS 1.2+
// server config.
func serverTLS(cert, key, flag string) (*tls.Config, error) {
	if cert == "" || key == "" {
		return nil, &UsageError{fmt.Errorf("%s-cert and %s-key go together", flag, flag)}
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, &UsageError{fmt.Errorf("%s-cert/%s-key: %w", flag, flag, err)}
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// loadCAs reads a PEM bundle into a pool.
func loadCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}

// warmRedisConns is how many connections warmRedis opens.
const warmRedisConns = 8

// warmRedis opens a few pooled connections to Redis before the rate-limit
// service takes calls: a replica that starts (or restarts) under load must
// not spend its first calls' 50 ms Redis budget on dialling, or it would
// apply its failure mode to them. A Redis that does not answer is only
// logged: the service's own failure mode covers it.
func warmRedis(rdb redis.UniversalClient, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	errs := make(chan error, warmRedisConns)
	for range warmRedisConns {
		go func() { errs <- rdb.Ping(ctx).Err() }()
	}
	for range warmRedisConns {
		if err := <-errs; err != nil {
			log.Warn("Redis does not answer yet; the rate-limit failure mode applies until it does", "err", err)
			return
		}
	}
}

// stopGRPC drains g (no new calls; in-flight calls finish) for at most
// grace, then closes what is left.
func stopGRPC(g *grpc.Server, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		g.Stop()
		<-done
	}
}
