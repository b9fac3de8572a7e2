package cli

import (
	"github.com/spf13/pflag"

	"github.com/tollgate/tollgate/envoy"
)

// xdsTLSFlags hold bootstrap's xDS TLS flags until the command runs.
type xdsTLSFlags struct {
	t envoy.XDSTLS
	o *envoy.BootstrapOptions
}

// registerXDSTLSFlags adds --xds-tls-cert, --xds-tls-key, --xds-ca and
// --xds-sni; any of them set makes the bootstrap use TLS to the control
// plane (paths on the Envoy's host).
func registerXDSTLSFlags(fl *pflag.FlagSet, o *envoy.BootstrapOptions) {
	f := &xdsTLSFlags{o: o}
	fl.Var(pathFlag{&f.t.CertFile, f}, "xds-tls-cert", "client certificate (PEM path on the Envoy host) presented to the control plane (mTLS)")
	fl.Var(pathFlag{&f.t.KeyFile, f}, "xds-tls-key", "private key (PEM path on the Envoy host) of --xds-tls-cert")
	fl.Var(pathFlag{&f.t.CAFile, f}, "xds-ca", "CA bundle (PEM path on the Envoy host) that verifies the control plane's certificate; enables TLS on xDS")
	fl.Var(pathFlag{&f.t.SNI, f}, "xds-sni", "server name to verify on the control plane's certificate (default: the --xds host)")
}

// pathFlag is a string flag that switches the bootstrap to xDS TLS once
// set.
type pathFlag struct {
	dst *string
	f   *xdsTLSFlags
}

func (p pathFlag) String() string {
	if p.dst == nil {
		return ""
	}
	return *p.dst
}

func (p pathFlag) Set(v string) error {
	*p.dst = v
	p.f.o.XDSTLS = &p.f.t
	return nil
}

func (pathFlag) Type() string { return "string" }
