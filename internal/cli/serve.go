package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/tollgate/tollgate/extauthz"
	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/certs"
	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/tracing"
	"github.com/tollgate/tollgate/ratelimit"
	"github.com/tollgate/tollgate/ratelimit/quota"
	"github.com/tollgate/tollgate/xds"
	"github.com/tollgate/tollgate/xds/translator"
)

// serveOptions are serve's flags.
type serveOptions struct {
	policyPath, xdsAddr, adminAddr, dataDir        string
	admin                                          adminOptions // serve_admin.go
	authzAddr, authzAdvertise, redisURL, keyPepper string
	ratelimitAddr, ratelimitAdvertise              string
	extproc                                        extProcOptions
	acmeAddr, acmeAdvertise, acmeCAFile            string
	only                                           string
	keep                                           int
	rlqsAbandonAfter                               int
	envoyModule                                    string
	ackTimeout, acmeRetry                          time.Duration
	certPoll                                       time.Duration
	logLevel, logFormat                            string
	tracingOTLP                                    string    // tracing.go
	ha                                             haOptions // serve_ha.go
}

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the control plane: xDS for Envoy and the admin API",
		Long: "Serve restores the last accepted policy from --data-dir (or, on an empty store, loads --policy), " +
			"then serves it to Envoy over ADS (delta and state of the world) and runs the admin API.",
		Example: `  tollgate serve --policy policy.yaml
  tollgate serve --policy policy.yaml --data-dir /var/lib/tollgate --redis redis://127.0.0.1:6379/0
  tollgate serve --only authz --data-dir /var/lib/tollgate --redis redis://redis:6379/0   # an extra authz replica`,
		Args: args(cobra.NoArgs),
	}
	o := bindServeFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runServe(ctx, *o, newLogger(cmd, o.logLevel, o.logFormat))
	}
	return cmd
}

// defaultServeOptions returns serve's options with every flag at its
// default: the base of `tollgate dev`, so a new serve flag can never be left
// at a zero value there.
func defaultServeOptions() serveOptions {
	return *bindServeFlags(&cobra.Command{})
}

// bindServeFlags registers serve's flags on cmd and returns the options they
// fill (already holding the defaults).
func bindServeFlags(cmd *cobra.Command) *serveOptions {
	o := &serveOptions{}
	fl := cmd.Flags()
	fl.StringVar(&o.policyPath, "policy", "", "policy file or directory; used only when the store is empty (pushes win after that)")
	fl.StringVar(&o.xdsAddr, "xds-addr", defaultXDS, "xDS gRPC listen address")
	fl.StringVar(&o.adminAddr, "admin-addr", defaultAdmin, "admin API listen address")
	o.admin.register(fl)
	fl.StringVar(&o.dataDir, "data-dir", defaultDataDir, "directory of the policy store")
	fl.IntVar(&o.keep, "history", 50, "policy versions to keep")
	fl.DurationVar(&o.ackTimeout, "ack-timeout", 5*time.Second, "how long each push step waits for proxies to ACK")
	fl.DurationVar(&o.certPoll, "cert-poll", time.Second, "how often the certificate files the policy names are checked for changes (by content hash)")
	fl.StringVar(&o.authzAddr, "authz-addr", defaultAuthz, "ext_authz gRPC listen address")
	fl.StringVar(&o.authzAdvertise, "authz-advertise-addr", "", "ext_authz address as Envoys reach it, HOST:PORT (default: --authz-addr)")
	fl.StringVar(&o.ratelimitAddr, "ratelimit-addr", defaultRateLimit, "rate-limit (RLS) gRPC listen address")
	fl.StringVar(&o.ratelimitAdvertise, "ratelimit-advertise-addr", "", "rate-limit address as Envoys reach it, HOST:PORT (default: --ratelimit-addr)")
	fl.StringVar(&o.redisURL, "redis", "", "Redis URL for API keys, e.g. redis://127.0.0.1:6379/0 (default: an in-memory store, for one process only)")
	fl.IntVar(&o.rlqsAbandonAfter, "rlqs-abandon-after", quota.DefaultAbandonAfter,
		"quota mode: tell Envoy to drop a rate-limit bucket after this many idle usage reports in a row (Envoy reports every 5 s; 0: never), once its limits have refilled completely; it is built again at its next request, within the same limits")
	fl.StringVar(&o.envoyModule, "envoy-module", "",
		"absolute path of Tollgate's Envoy module ("+envoymod.LibraryName+": `make module`, or `tollgate envoy-module install` from the tollgate image) on every Envoy host: JWT and signed API-key routes are then decided inside Envoy by it instead of Envoy's own filters (every replica needs the same value; the shipped compose file and Kubernetes manifests set it)")
	fl.StringVar(&o.keyPepper, "key-pepper", "", "secret mixed into API-key HMACs (env "+envPepper+"); required with --redis")
	addExtProcFlags(cmd, &o.extproc)
	addACMEFlags(fl, o)
	fl.StringVar(&o.only, "only", "", "run one part only, following the store in --data-dir: \"authz\", \"ratelimit\" or \"extproc\" (default: everything)")
	fl.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&o.logFormat, "log-format", "text", "text or json")
	addTracingFlags(fl, o)
	o.ha.register(fl)
	return o
}

// runServe runs the control plane until ctx ends.
func runServe(ctx context.Context, o serveOptions, log *slog.Logger) error {
	if o.admin.configuredToken() == "" && !admin.IsLoopback(o.adminAddr) {
		return &UsageError{fmt.Errorf("refusing to serve the admin API on %s without a token: set --admin-token (or %s), or listen on 127.0.0.1", o.adminAddr, envAdminTok)}
	}
	if o.envoyModule != "" && !filepath.IsAbs(o.envoyModule) {
		return &UsageError{fmt.Errorf("--envoy-module %q: give the module's absolute path on the Envoy hosts (Envoy would resolve a relative path against its own working directory)", o.envoyModule)}
	}
	if o.redisURL != "" {
		redis.SetLogger(redisLogger{log}) // go-redis's logger is process-wide
	}
	switch o.only {
	case "":
	case "authz":
		return runAuthzOnly(ctx, o, log)
	case "ratelimit":
		return runRateLimitOnly(ctx, o, log)
	case "extproc":
		return runExtProcOnly(ctx, o, log)
	default:
		return &UsageError{fmt.Errorf("--only %q: the parts that run alone are authz, ratelimit and extproc", o.only)}
	}
	cp, err := startControlPlane(ctx, o, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	cp.stop(o.ha.grace)
	return nil
}

// controlPlane is a running control plane.
type controlPlane struct {
	ctl       *controlplane.Controller
	keys      apikey.Store
	authz     *extauthz.Service
	ratelimit *ratelimit.Service
	quota     *quota.Server // RLQS, on the rate-limit gRPC server
	certs     *certs.Store  // certificate material; run-time sources (ACME) call certs.Set
	acme      *acmeRuntime
	grpc      *grpc.Server // xDS
	authzGRPC *grpc.Server
	rlGRPC    *grpc.Server
	extproc   *extProcServer
	tracer    *tracing.Tracer // nil: tracing off
	tokenFile string          // the generated admin token's file; "" when configured
	http      *http.Server
	xds       net.Addr
	admin     net.Addr
	authzAt   net.Addr
	rlAt      net.Addr
}

// startControlPlane restores the policy, then starts the xDS and admin
// servers. The policy is restored before the xDS port opens, so no proxy can
// connect to a control plane that has nothing (or something older) to say.
func startControlPlane(ctx context.Context, o serveOptions, log *slog.Logger) (*controlPlane, error) {
	access, tokenFile, err := o.admin.access(o, log) // serve_admin.go
	if err != nil {
		return nil, err
	}
	st, err := openPolicyStore(ctx, o, log)
	if err != nil {
		return nil, err
	}
	xdsOpts, err := o.ha.xdsServerOptions()
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	keys, err := openKeyStore(ctx, o, log)
	if err != nil {
		return nil, err
	}
	tracer, err := newTracer(ctx, o, "tollgate")
	if err != nil {
		return nil, err
	}
	cp := &controlPlane{keys: keys, tokenFile: tokenFile, grpc: newGRPCServer(xdsOpts...), authzGRPC: newGRPCServer(tracer.ServerOptions()...),
		rlGRPC: newGRPCServer(tracer.ServerOptions()...), tracer: tracer}
	if cp.ratelimit, err = newRateLimiter(o, log, reg); err != nil {
		return nil, err
	}
	// Routes on ext_authz take their rate limits in the Check, through the
	// same rate-limit service (one hop; xds/translator/ratelimit_check.go).
	cp.authz = extauthz.New(ctx, extauthz.Options{Logger: log, Keys: keys, Getenv: os.Getenv, Metrics: extauthz.NewMetrics(reg),
		RateLimit: cp.ratelimit})
	if cp.quota, err = newQuotaServer(ctx, o, log, reg); err != nil {
		return nil, err
	}
	xsrv := xds.New(ctx, xds.Options{Logger: log, AckTimeout: o.ackTimeout, Metrics: xds.NewMetrics(reg)})
	nk := openNativeKeys(keys, log)                                // keynative_apikey.go
	watch, err := jwksWatchSwappers(ctx, o.envoyModule, xsrv, log) // jwkswatch.go
	if err != nil {
		return nil, err
	}
	cp.certs = certs.NewStore(log)
	if cp.acme, err = newACME(ctx, o, log, st, cp.certs); err != nil {
		return nil, err
	}
	cpMetrics := controlplane.NewMetrics()
	cp.ctl = controlplane.New(log, st, xsrv, controlplane.Options{
		Metrics: cpMetrics,
		Translate: translator.Options{AuthzAddress: advertised(o), RateLimitAddress: advertisedRateLimit(o), Certs: cp.acme.source,
			ExtProcAddress: advertisedExtProc(o), ACMEAddress: advertisedACME(o), KeyJWKS: nk.jwks,
			EnvoyModule: o.envoyModule},
		Services: append([]controlplane.TableSwapper{cp.authz, cp.ratelimit, cp.quota, cp.acme}, watch...),
	})
	cpMetrics.Register(reg, cp.ctl)
	if err := restore(ctx, cp.ctl, o.policyPath); err != nil {
		return nil, err
	}
	go cp.ctl.WatchCertificates(ctx, cp.certs, o.certPoll)
	nk.serveKeyExceptions(ctx, xsrv.SetKeyExceptions, log)
	xsrv.Register(cp.grpc)
	cp.authz.Register(cp.authzGRPC)
	cp.ratelimit.Register(cp.rlGRPC)
	cp.quota.Register(cp.rlGRPC)
	if cp.extproc, err = startExtProc(o, log, reg); err != nil {
		return nil, err
	}
	api := admin.NewServer(log, cp.ctl, keys, access, reg)
	if err := cp.listen(o, api.Handler(), log); err != nil {
		cp.extproc.stop(o.ha.grace)
		return nil, err
	}
	api.SetReady()
	go cp.ctl.Follow(ctx, o.ha.follow)
	log.Info("control plane ready", "xds", cp.xds.String(), "authz", cp.authzAt.String(), "ratelimit", cp.rlAt.String(),
		"extproc", cp.extproc.addr.String(), "admin", cp.admin.String(), "policy", versionOf(cp.ctl))
	return cp, nil
}

// advertised is the ext_authz address Envoys are given.
func advertised(o serveOptions) string { return cmp.Or(o.authzAdvertise, o.authzAddr) }

// advertisedRateLimit is the rate-limit address Envoys are given.
func advertisedRateLimit(o serveOptions) string { return cmp.Or(o.ratelimitAdvertise, o.ratelimitAddr) }

// restore serves the stored policy, seeding the store from path if empty.
func restore(ctx context.Context, ctl *controlplane.Controller, path string) error {
	var seed []store.File
	if path != "" {
		var err error
		if seed, err = readPolicy(path); err != nil {
			return err
		}
	}
	err := ctl.Restore(ctx, seed, "file:"+path)
	var rej *controlplane.RejectedError
	if errors.As(err, &rej) {
		fmt.Fprintf(os.Stderr, "policy %s is invalid:\n", path)
		printDiagnostics(os.Stderr, rej.Diagnostics)
		return ErrReported
	}
	return err
}

func (cp *controlPlane) listen(o serveOptions, h http.Handler, log *slog.Logger) error {
	var ls []net.Listener
	for _, addr := range []string{o.xdsAddr, o.authzAddr, o.ratelimitAddr, o.adminAddr} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, prev := range ls {
				prev.Close()
			}
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		ls = append(ls, l)
	}
	cp.xds, cp.authzAt, cp.rlAt, cp.admin = ls[0].Addr(), ls[1].Addr(), ls[2].Addr(), ls[3].Addr()
	adminL, err := o.ha.adminListener(ls[3])
	if err != nil {
		for _, l := range ls {
			l.Close()
		}
		return err
	}
	cp.http = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go serveGRPC(cp.grpc, ls[0], "xds", log)
	go serveGRPC(cp.authzGRPC, ls[1], "authz", log)
	go serveGRPC(cp.rlGRPC, ls[2], "ratelimit", log)
	go func() {
		if err := cp.http.Serve(adminL); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server stopped", "err", err)
		}
	}()
	return nil
}

func serveGRPC(g *grpc.Server, l net.Listener, name string, log *slog.Logger) {
	if err := g.Serve(l); err != nil {
		log.Error("grpc server stopped", "server", name, "err", err)
	}
}

// stop ends the servers. xDS streams never end by themselves, so the xDS
// server gets a GOAWAY and a short drain, then is closed; Envoy keeps its
// config and reconnects. In-flight Check and ShouldRateLimit calls and
// admin requests may finish within grace.
func (cp *controlPlane) stop(grace time.Duration) {
	stopGRPC(cp.grpc, xdsDrain)
	stopGRPC(cp.authzGRPC, grace)
	stopGRPC(cp.rlGRPC, grace)
	cp.extproc.stop(grace)
	cp.authz.Close()
	cp.acme.close()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = cp.http.Shutdown(ctx)
	_ = cp.tracer.Shutdown(ctx)
}

// xdsDrain is how long xDS streams get after the GOAWAY.
const xdsDrain = 200 * time.Millisecond

// newGRPCServer returns a gRPC server tuned for long-lived xDS streams.
func newGRPCServer(extra ...grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append([]grpc.ServerOption{
		grpc.MaxConcurrentStreams(1 << 20),
		grpc.MaxRecvMsgSize(32 << 20),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 5 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 15 * time.Second, PermitWithoutStream: true}),
	}, extra...)...)
}

func versionOf(ctl *controlplane.Controller) string {
	if v := ctl.Current(); v != nil {
		return v.ID
	}
	return "none"
}

// newLogger returns a slog logger on stderr.
func newLogger(cmd *cobra.Command, level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), opts))
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), opts))
}
