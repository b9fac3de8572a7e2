package cli

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/tollgate/tollgate/transform"
)

// defaultExtProc is the default listen address of the body transformation
// (ext_proc) service.
const defaultExtProc = "127.0.0.1:18003"

// extProcOptions are serve's flags of the transformation service.
type extProcOptions struct {
	addr, advertise string
}

func addExtProcFlags(cmd *cobra.Command, o *extProcOptions) {
	fl := cmd.Flags()
	fl.StringVar(&o.addr, "extproc-addr", defaultExtProc, "body transformation (ext_proc) gRPC listen address")
	fl.StringVar(&o.advertise, "extproc-advertise-addr", "", "ext_proc address as Envoys reach it, HOST:PORT (default: --extproc-addr)")
}

// advertisedExtProc is the ext_proc address Envoys are given.
func advertisedExtProc(o serveOptions) string { return cmp.Or(o.extproc.advertise, o.extproc.addr) }

// extProcServer is a running transformation service.
type extProcServer struct {
	grpc *grpc.Server
	addr net.Addr
}

// startExtProc serves the transformation service on --extproc-addr. It
// holds no policy: each route's settings come with Envoy's streams.
func startExtProc(o serveOptions, log *slog.Logger, reg prometheus.Registerer) (*extProcServer, error) {
	l, err := net.Listen("tcp", o.extproc.addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.extproc.addr, err)
	}
	g := newGRPCServer()
	transform.New(transform.Options{Logger: log, Metrics: transform.NewMetrics(reg)}).Register(g)
	go serveGRPC(g, l, "extproc", log)
	return &extProcServer{grpc: g, addr: l.Addr()}, nil
}

// stop lets the open streams (one per HTTP request) finish within grace,
// then closes the rest.
func (s *extProcServer) stop(grace time.Duration) {
	if s != nil {
		stopGRPC(s.grpc, grace)
	}
}

// runExtProcOnly serves the transformation service alone (serve --only
// extproc), with /metrics and /healthz on --admin-addr. It needs no store.
func runExtProcOnly(ctx context.Context, o serveOptions, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	s, err := startExtProc(o, log, reg)
	if err != nil {
		return err
	}
	defer s.stop(o.ha.grace)
	stopHTTP, err := serveMetrics(o.adminAddr, reg, log)
	if err != nil {
		return err
	}
	defer stopHTTP()
	log.Info("body transformation service ready", "extproc", s.addr.String())
	<-ctx.Done()
	return nil
}
