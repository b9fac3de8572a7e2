package policy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidateACME(t *testing.T) {
	f := newTLSFixture(t)
	port80 := "      - {name: http, port: 80}\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "a valid ACME listener",
			src:  tlsPolicy("", port80+tlsListener(`acme: {domains: [api.example.com, www.example.com], email: ops@example.com, directory: "https://acme-staging-v02.api.letsencrypt.org/directory", renewBefore: 480h}`), ""),
		},
		{
			name: "domains: required, no wildcards, IPs, bare or duplicate names",
			src: tlsPolicy("", port80+tlsListener(`acme: {domains: ["*.example.com", 10.0.0.1, localhost, "bad host", api.example.com, API.example.com]}`)+
				"      - {name: h2, port: 8444, tls: {acme: {email: ops@example.com}}}\n", ""),
			want: []string{
				`error gateways[0].listeners[1].tls.acme.domains[0]: wildcard "*.example.com" cannot be proven with HTTP-01`,
				`error gateways[0].listeners[1].tls.acme.domains[1]: invalid domain "10.0.0.1"`,
				`error gateways[0].listeners[1].tls.acme.domains[2]: invalid domain "localhost"`,
				`error gateways[0].listeners[1].tls.acme.domains[3]: invalid domain "bad host"`,
				`error gateways[0].listeners[1].tls.acme.domains[5]: domain "API.example.com" is listed twice`,
				`error gateways[0].listeners[2].tls.acme.domains: missing required field "domains"`,
			},
		},
		{
			name: "email, directory and renewBefore are checked",
			src:  tlsPolicy("", port80+tlsListener(`acme: {domains: [api.example.com], email: "mailto:ops", directory: "http://ca.example.com/dir", renewBefore: -1h}`), ""),
			want: []string{
				`error gateways[0].listeners[1].tls.acme.email: invalid email "mailto:ops"`,
				`error gateways[0].listeners[1].tls.acme.directory: invalid ACME directory "http://ca.example.com/dir"`,
				"error gateways[0].listeners[1].tls.acme.renewBefore: renewBefore must be positive, got -1h",
			},
		},
		{
			name: "acme and certificates are exclusive",
			src:  tlsPolicy("", port80+tlsListener(fmt.Sprintf(`acme: {domains: [api.example.com]}, certificates: [{name: a, cert: %q, key: %q}]`, f.cert, f.key)), ""),
			want: []string{"error gateways[0].listeners[1].tls.acme: a listener gets its certificate either from `certificates` or from `acme`, not both"},
		},
		{
			name: "a gateway with ACME needs a plaintext listener",
			src:  tlsPolicy("", tlsListener(`acme: {domains: [api.example.com]}`), ""),
			want: []string{`error gateways[0].listeners[0].tls.acme: gateway "gw" has no plaintext listener to answer ACME HTTP-01 challenges`},
		},
		{
			name: "a plaintext listener off port 80 warns",
			src:  tlsPolicy("", plainListener+tlsListener(`acme: {domains: [api.example.com]}`), ""),
			want: []string{`warning gateways[0].listeners[1].tls.acme: the CA fetches HTTP-01 tokens from port 80, and no plaintext listener of gateway "gw" binds it`},
		},
		{
			name: "unknown fields",
			src:  tlsPolicy("", port80+tlsListener(`acme: {domains: [api.example.com], emial: x@example.com}`), ""),
			want: []string{`error gateways[0].listeners[1].tls.acme.emial: unknown field "emial"; did you mean "email"?`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := renderPaths(buildString(tt.src))
			if len(got) != len(tt.want) {
				t.Fatalf("diagnostics:\n got %q\nwant %q", got, tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("diagnostic %d:\n got %q\nwant prefix %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestCompileACME(t *testing.T) {
	src := tlsPolicy("", "      - {name: http, port: 80}\n"+tlsListener(`acme: {domains: [WWW.example.com, api.example.com]}, minVersion: "1.3"`), "")
	cfg, ds := Build([]File{{Name: "p.yaml", Content: []byte(src)}})
	if ds.HasErrors() {
		t.Fatal(render(ds))
	}
	gw := cfg.Gateways[0]
	https := gw.Listeners[1]
	if https.TLS == nil || https.TLS.ACME == nil {
		t.Fatalf("https TLS = %+v, want ACME", https.TLS)
	}
	a := *https.TLS.ACME
	if a.Secret != "tls/gw/https/acme" || !slices.Equal(a.Domains, []string{"api.example.com", "www.example.com"}) ||
		a.Directory != DefaultACMEDirectory || a.RenewBefore != 30*24*time.Hour || a.Email != "" {
		t.Errorf("ACME = %+v", a)
	}
	if !slices.Equal(https.TLS.CertificateSecrets, []string{"tls/gw/https/acme"}) || https.TLS.MinVersion != "1.3" {
		t.Errorf("TLS = %+v", https.TLS)
	}
	s, ok := gw.Secret("tls/gw/https/acme")
	if !ok || s.Kind != "certificate" || s.Cert.File != "" || s.Cert.Inline != "" || s.Key.File != "" {
		t.Errorf("secret = %+v, %v: want a certificate without policy material", s, ok)
	}
	if got := gw.ACMEListeners(); len(got) != 1 || got[0].Secret != a.Secret {
		t.Errorf("ACMEListeners = %+v", got)
	}
	cfg2, _ := Build([]File{{Name: "p.yaml", Content: []byte(strings.Replace(src, "api.example.com", "app.example.com", 1))}})
	if cfg.Hash() == cfg2.Hash() {
		t.Error("changing a domain kept the version")
	}
}
