package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/envoy"
)

func newBootstrapCmd() *cobra.Command {
	var o envoy.BootstrapOptions
	var protocol, output string
	var adminPort uint32
	cmd := &cobra.Command{
		Use:   "bootstrap --gateway NAME --node-id ID [--xds HOST:PORT]",
		Short: "Print an Envoy bootstrap that fetches a gateway's configuration from tollgate",
		Long: "Bootstrap prints a complete Envoy 1.40 bootstrap: node id and cluster (the gateway), a loopback admin interface, " +
			"and one ADS stream (delta by default) over HTTP/2 to the control plane. Start Envoy with: envoy -c bootstrap.yaml",
		Example: `  tollgate bootstrap --gateway public --node-id public-0 > bootstrap.yaml && envoy -c bootstrap.yaml
  tollgate bootstrap --gateway public --node-id public-1 --xds tollgate.internal:18000
  tollgate bootstrap --gateway public --node-id public-2 --xds cp-0:18000,cp-1:18000,cp-2:18000`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Gateway == "" || o.NodeID == "" {
				return &UsageError{fmt.Errorf("--gateway and --node-id are required")}
			}
			o.APIType, o.AdminPort = envoy.APIType(protocol), adminPort
			var b []byte
			var err error
			switch output {
			case "yaml":
				b, err = envoy.BootstrapYAML(o)
			case "json":
				b, err = envoy.BootstrapJSON(o)
			default:
				return &UsageError{fmt.Errorf("unknown output format %q: use yaml or json", output)}
			}
			if err != nil {
				return &UsageError{err}
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Gateway, "gateway", "", "gateway name (node.cluster): which gateway of the policy this Envoy serves")
	fl.StringVar(&o.NodeID, "node-id", "", "unique id of this Envoy instance (node.id), e.g. the pod name")
	fl.StringVar(&o.XDSAddress, "xds", defaultXDS, "control plane xDS address, HOST:PORT, or a comma-separated list of control-plane replicas (round robin; a broken stream reconnects to the next within 2 s)")
	fl.StringVar(&o.AdminAddress, "admin-address", envoy.DefaultAdminAddress, "Envoy admin listener address (loopback only: Envoy's admin API has no authentication)")
	fl.Uint32Var(&adminPort, "admin-port", envoy.DefaultAdminPort, "Envoy admin listener port")
	fl.Uint32Var(&o.StatsPort, "stats-port", 0, "also serve GET /ready and /stats/prometheus of the admin interface on 0.0.0.0:PORT (for probes and Prometheus; 0: off)")
	fl.StringVar(&protocol, "xds-protocol", string(envoy.APIDelta), "xDS variant: delta or sotw")
	fl.StringVarP(&output, "output", "o", "yaml", "output format: yaml or json")
	fl.Uint64Var(&o.MaxHeapBytes, "max-heap-bytes", envoy.DefaultMaxHeapBytes,
		"overload manager heap limit in bytes (shrink heap at 90%, no keep-alive at 95%, 503 for new requests at 98%); 0 disables the overload manager")
	fl.Int64Var(&o.MaxDownstreamConnections, "max-connections", envoy.DefaultMaxDownstreamConnections,
		"overload manager cap on downstream connections over all listeners (with --max-heap-bytes > 0)")
	registerXDSTLSFlags(fl, &o) // bootstrap_tls.go
	return cmd
}
