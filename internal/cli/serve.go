package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/xds"
)

// serveOptions are serve's flags.
type serveOptions struct {
	policyPath, xdsAddr, adminAddr, adminToken, dataDir string
	keep                                                int
	ackTimeout                                          time.Duration
	logLevel, logFormat                                 string
}

func newServeCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the control plane: xDS for Envoy and the admin API",
		Long: "Serve restores the last accepted policy from --data-dir (or, on an empty store, loads --policy), " +
			"then serves it to Envoy over ADS (delta and state of the world) and runs the admin API.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, o, newLogger(cmd, o.logLevel, o.logFormat))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.policyPath, "policy", "", "policy file or directory; used only when the store is empty (pushes win after that)")
	fl.StringVar(&o.xdsAddr, "xds-addr", defaultXDS, "xDS gRPC listen address")
	fl.StringVar(&o.adminAddr, "admin-addr", defaultAdmin, "admin API listen address")
	fl.StringVar(&o.adminToken, "admin-token", "", "admin API bearer token (env "+envAdminTok+"); required unless --admin-addr is loopback")
	fl.StringVar(&o.dataDir, "data-dir", "tollgate-data", "directory of the policy store")
	fl.IntVar(&o.keep, "history", 50, "policy versions to keep")
	fl.DurationVar(&o.ackTimeout, "ack-timeout", 5*time.Second, "how long each push step waits for proxies to ACK")
	fl.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&o.logFormat, "log-format", "text", "text or json")
	return cmd
}

// runServe runs the control plane until ctx ends.
func runServe(ctx context.Context, o serveOptions, log *slog.Logger) error {
	if o.adminToken == "" {
		o.adminToken = os.Getenv(envAdminTok)
	}
	if o.adminToken == "" && !admin.IsLoopback(o.adminAddr) {
		return &UsageError{fmt.Errorf("refusing to serve the admin API on %s without a token: set --admin-token (or %s), or listen on 127.0.0.1", o.adminAddr, envAdminTok)}
	}
	cp, err := startControlPlane(ctx, o, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	cp.stop()
	return nil
}

// controlPlane is a running control plane.
type controlPlane struct {
	ctl   *controlplane.Controller
	grpc  *grpc.Server
	http  *http.Server
	xds   net.Addr
	admin net.Addr
}

// startControlPlane restores the policy, then starts the xDS and admin
// servers. The policy is restored before the xDS port opens, so no proxy can
// connect to a control plane that has nothing (or something older) to say.
func startControlPlane(ctx context.Context, o serveOptions, log *slog.Logger) (*controlPlane, error) {
	st, err := store.OpenDir(o.dataDir, o.keep)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	xsrv := xds.New(ctx, xds.Options{Logger: log, AckTimeout: o.ackTimeout, Metrics: xds.NewMetrics(reg)})
	ctl := controlplane.New(log, st, xsrv)
	if err := restore(ctx, ctl, o.policyPath); err != nil {
		return nil, err
	}
	cp := &controlPlane{ctl: ctl, grpc: newGRPCServer()}
	xsrv.Register(cp.grpc)
	api := admin.NewServer(log, ctl, o.adminToken, reg)
	if err := cp.listen(o, api.Handler(), log); err != nil {
		return nil, err
	}
	api.SetReady()
	log.Info("control plane ready", "xds", cp.xds.String(), "admin", cp.admin.String(), "policy", versionOf(ctl))
	return cp, nil
}

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
	xl, err := net.Listen("tcp", o.xdsAddr)
	if err != nil {
		return fmt.Errorf("listen xds %s: %w", o.xdsAddr, err)
	}
	al, err := net.Listen("tcp", o.adminAddr)
	if err != nil {
		xl.Close()
		return fmt.Errorf("listen admin %s: %w", o.adminAddr, err)
	}
	cp.xds, cp.admin = xl.Addr(), al.Addr()
	cp.http = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := cp.grpc.Serve(xl); err != nil {
			log.Error("xds server stopped", "err", err)
		}
	}()
	go func() {
		if err := cp.http.Serve(al); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server stopped", "err", err)
		}
	}()
	return nil
}

// stop ends both servers. xDS streams never end by themselves, so the gRPC
// server is stopped, not drained; Envoy keeps its config and reconnects.
func (cp *controlPlane) stop() {
	cp.grpc.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = cp.http.Shutdown(ctx)
}

// newGRPCServer returns a gRPC server tuned for long-lived xDS streams.
func newGRPCServer() *grpc.Server {
	return grpc.NewServer(
		grpc.MaxConcurrentStreams(1<<20),
		grpc.MaxRecvMsgSize(32<<20),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 5 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 15 * time.Second, PermitWithoutStream: true}),
	)
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
