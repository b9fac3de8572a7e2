package cli

import (
	"context"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/tollgate/tollgate/internal/tracing"
)

// envTracingOTLP is the environment variable of --tracing-otlp.
const envTracingOTLP = "TOLLGATE_TRACING_OTLP"

func addTracingFlags(fl *pflag.FlagSet, o *serveOptions) {
	fl.StringVar(&o.tracingOTLP, "tracing-otlp", "", "OTLP/gRPC collector HOST:PORT for the ext_authz and rate-limit services' spans "+
		"(env "+envTracingOTLP+"; default: no spans; Envoy's own spans follow the policy's observability.tracing)")
}

// newTracer returns the services' tracer, nil when tracing is off.
func newTracer(ctx context.Context, o serveOptions, service string) (*tracing.Tracer, error) {
	endpoint := o.tracingOTLP
	if endpoint == "" {
		endpoint = os.Getenv(envTracingOTLP)
	}
	return tracing.New(ctx, endpoint, service)
}

// shutdownTracer flushes the tracer's pending spans (at most 5 s).
func shutdownTracer(t *tracing.Tracer) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.Shutdown(ctx)
}
