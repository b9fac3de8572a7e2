package envoy

import (
	"strings"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

func TestBootstrapXDSTLS(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		tls     XDSTLS
		wantSNI string
		wantSAN tlsv3.SubjectAltNameMatcher_SanType
		wantErr string
	}{
		{name: "mTLS to an IP", addr: "127.0.0.1:18000", tls: XDSTLS{CertFile: "/c.pem", KeyFile: "/k.pem", CAFile: "/ca.pem"},
			wantSNI: "127.0.0.1", wantSAN: tlsv3.SubjectAltNameMatcher_IP_ADDRESS},
		{name: "TLS to a host name, explicit SNI", addr: "cp.svc:18000", tls: XDSTLS{CAFile: "/ca.pem", SNI: "tollgate.internal"},
			wantSNI: "tollgate.internal", wantSAN: tlsv3.SubjectAltNameMatcher_DNS},
		{name: "no CA", addr: "127.0.0.1:18000", tls: XDSTLS{CertFile: "/c.pem", KeyFile: "/k.pem"}, wantErr: "CA file"},
		{name: "cert without key", addr: "127.0.0.1:18000", tls: XDSTLS{CertFile: "/c.pem", CAFile: "/ca.pem"}, wantErr: "go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Bootstrap(BootstrapOptions{NodeID: "n", Gateway: "g", XDSAddress: tt.addr, XDSTLS: &tt.tls})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(b); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			var up tlsv3.UpstreamTlsContext
			if err := b.GetStaticResources().GetClusters()[0].GetTransportSocket().GetTypedConfig().UnmarshalTo(&up); err != nil {
				t.Fatal(err)
			}
			san := up.GetCommonTlsContext().GetValidationContext().GetMatchTypedSubjectAltNames()
			if up.GetSni() != tt.wantSNI || len(san) != 1 || san[0].GetSanType() != tt.wantSAN || san[0].GetMatcher().GetExact() != tt.wantSNI {
				t.Errorf("sni %q, SAN matchers %v; want %q of type %v", up.GetSni(), san, tt.wantSNI, tt.wantSAN)
			}
			if got := len(up.GetCommonTlsContext().GetTlsCertificates()); got != map[bool]int{true: 1, false: 0}[tt.tls.CertFile != ""] {
				t.Errorf("%d client certificates", got)
			}
		})
	}
}
