package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// tlsFixture holds PEM files generated for the TLS tests.
type tlsFixture struct {
	dir                   string
	ca                    string // CA bundle file
	cert, key             string // valid for a year, key matches
	soonCert, soonKey     string // expires in 10 days
	oldCert, oldKey       string // expired
	otherKey              string // matches no certificate
	inlineCert, inlineKey string // PEM text of a valid pair
	garbage               string // a file without PEM
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	f := &tlsFixture{dir: t.TempDir()}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	f.ca = f.write(t, "ca.crt", pemBlock("CERTIFICATE", caDER))
	issue := func(name string, notAfter time.Time) (string, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			DNSNames: []string{name}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: notAfter}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalPKCS8PrivateKey(k)
		return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", kb)
	}
	c, k := issue("api.example.com", time.Now().AddDate(1, 0, 0))
	f.cert, f.key = f.write(t, "api.crt", c), f.write(t, "api.key", k)
	c, k = issue("soon.example.com", time.Now().Add(10*24*time.Hour))
	f.soonCert, f.soonKey = f.write(t, "soon.crt", c), f.write(t, "soon.key", k)
	c, k = issue("old.example.com", time.Now().Add(-time.Hour))
	f.oldCert, f.oldKey = f.write(t, "old.crt", c), f.write(t, "old.key", k)
	_, k = issue("other.example.com", time.Now().AddDate(1, 0, 0))
	f.otherKey = f.write(t, "other.key", k)
	f.inlineCert, f.inlineKey = issue("www.example.com", time.Now().AddDate(1, 0, 0))
	f.garbage = f.write(t, "garbage.pem", "not PEM at all\n")
	return f
}

func pemBlock(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func (f *tlsFixture) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsPolicy renders a policy whose gateway has the given extra gateway
// fields and listeners, and whose backend has the given tls.
func tlsPolicy(gatewayExtra, listeners, backendTLS string) string {
	src := "version: 1\ngateways:\n  - name: gw\n" + gatewayExtra + "    listeners:\n" + listeners +
		"routes: [{name: r, backend: be, auth: none}]\nbackends:\n  - name: be\n    endpoints: [\"10.0.0.1:443\"]\n"
	if backendTLS != "" {
		src += "    tls: " + backendTLS + "\n"
	}
	return src
}

// tlsListener is a TLS listener on 8443 with the given tls mapping body.
func tlsListener(body string) string {
	return "      - {name: https, port: 8443, tls: {" + body + "}}\n"
}

const plainListener = "      - {name: http, port: 8080}\n"

// renderPaths formats diagnostics as "severity path: summary".
func renderPaths(ds Diagnostics) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		if d.Range.Line == 0 {
			out = append(out, "NO POSITION "+d.Path)
		}
		out = append(out, fmt.Sprintf("%s %s: %s", d.Severity, d.Path, d.Summary))
	}
	return out
}

func TestValidateTLS(t *testing.T) {
	f := newTLSFixture(t)
	cert := func(name, c, k string) string { return fmt.Sprintf("{name: %s, cert: %q, key: %q}", name, c, k) }
	good := "certificates: [" + cert("api", f.cert, f.key) + "]"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "a full valid setup: files, inline PEM, TLS 1.3, client CA, redirect, HSTS, upstream mTLS",
			src: tlsPolicy("    redirectHTTPS: true\n    hsts: {maxAge: 63072000, includeSubDomains: true, preload: true}\n",
				plainListener+tlsListener(fmt.Sprintf("certificates: [%s, %s], minVersion: 1.3, clientCA: %q",
					cert("api", f.cert, f.key), cert("www", f.inlineCert, f.inlineKey), f.ca)),
				fmt.Sprintf("{sni: be.internal, ca: %q, clientCert: {cert: %q, key: %q}}", f.ca, f.cert, f.key)),
		},
		{
			name: "inline PEM after openssl's Bag Attributes lines is PEM, not a path (never quoted in an error)",
			src: tlsPolicy("", tlsListener("certificates: ["+
				cert("api", "Bag Attributes\n    localKeyID: 01\n"+f.inlineCert, "Bag Attributes\n    localKeyID: 01\n"+f.inlineKey)+"]"), ""),
		},
		{
			name: "TLS 1.0 and 1.1 are refused, unknown versions too",
			src: tlsPolicy("", tlsListener(good+", minVersion: 1.1")+
				"      - {name: h2, port: 8444, tls: {"+good+", minVersion: \"1.0\"}}\n"+
				"      - {name: h3, port: 8445, tls: {"+good+", minVersion: \"2\"}}\n", ""),
			want: []string{
				"error gateways[0].listeners[0].tls.minVersion: TLS 1.1 is refused: TLS 1.0 and 1.1 are deprecated (RFC 8996) and insecure",
				"error gateways[0].listeners[1].tls.minVersion: TLS 1.0 is refused: TLS 1.0 and 1.1 are deprecated (RFC 8996) and insecure",
				`error gateways[0].listeners[2].tls.minVersion: unknown TLS version "2"`,
			},
		},
		{
			name: "the key must match the certificate",
			src:  tlsPolicy("", tlsListener("certificates: ["+cert("api", f.cert, f.otherKey)+"]"), ""),
			want: []string{"error gateways[0].listeners[0].tls.certificates[0]: invalid certificate: the private key does not match the certificate"},
		},
		{
			name: "files must be readable and hold PEM",
			src:  tlsPolicy("", tlsListener("certificates: ["+cert("api", f.dir+"/missing.crt", f.garbage)+"]"), ""),
			want: []string{
				"error gateways[0].listeners[0].tls.certificates[0].cert: cannot read the file: open " + f.dir + "/missing.crt: no such file or directory",
			},
		},
		{
			name: "garbage PEM is refused",
			src:  tlsPolicy("", tlsListener("certificates: ["+cert("api", f.garbage, f.key)+"]"), ""),
			want: []string{"error gateways[0].listeners[0].tls.certificates[0]: invalid certificate: certificate: no PEM CERTIFICATE block found"},
		},
		{
			name: "expiry: a warning within 30 days and once expired",
			src:  tlsPolicy("", tlsListener("certificates: ["+cert("soon", f.soonCert, f.soonKey)+", "+cert("old", f.oldCert, f.oldKey)+"]"), ""),
			want: []string{
				"warning gateways[0].listeners[0].tls.certificates[0].cert: certificate \"soon.example.com\" expires on ",
				"warning gateways[0].listeners[0].tls.certificates[1].cert: certificate \"old.example.com\" expired on ",
			},
		},
		{
			name: "certificates: at least one, names unique and valid",
			src: tlsPolicy("", tlsListener("certificates: []")+
				"      - {name: h2, port: 8444, tls: {certificates: ["+cert("a", f.cert, f.key)+", "+cert("a", f.cert, f.key)+", "+cert("B_1", f.cert, f.key)+"]}}\n", ""),
			want: []string{
				"error gateways[0].listeners[0].tls.certificates: a TLS listener needs at least one certificate",
				`error gateways[0].listeners[1].tls.certificates[1].name: duplicate certificate name "a"; first defined at `,
				`error gateways[0].listeners[1].tls.certificates[2].name: invalid certificate name "B_1"`,
			},
		},
		{
			name: "fields: required and known",
			src:  tlsPolicy("", tlsListener("certificates: [{name: a, cert: x}], minVerison: 1.2"), ""),
			want: []string{
				`error gateways[0].listeners[0].tls.certificates[0].key: missing required field "key"`,
				"error gateways[0].listeners[0].tls.certificates[0].cert: cannot read the file: open x: no such file or directory",
				`error gateways[0].listeners[0].tls.minVerison: unknown field "minVerison"; did you mean "minVersion"?`,
			},
		},
		{
			name: "the client CA must be PEM",
			src:  tlsPolicy("", tlsListener(good+fmt.Sprintf(", clientCA: %q", f.garbage)), ""),
			want: []string{"error gateways[0].listeners[0].tls.clientCA: invalid CA bundle: no PEM CERTIFICATE block found"},
		},
		{
			name: "redirectHTTPS needs a TLS listener, hsts checks",
			src:  tlsPolicy("    redirectHTTPS: true\n    hsts: {maxAge: -1, preload: true}\n", plainListener, ""),
			want: []string{
				`error gateways[0].redirectHTTPS: gateway "gw" redirects to https but has no TLS listener`,
				`warning gateways[0].hsts: hsts applies to TLS listeners only and gateway "gw" has none`,
				"error gateways[0].hsts.maxAge: maxAge -1 is negative",
				"error gateways[0].hsts.preload: preload requires includeSubDomains and a maxAge of at least one year (hstspreload.org)",
			},
		},
		{
			name: "redirectHTTPS without a plaintext listener warns",
			src:  tlsPolicy("    redirectHTTPS: true\n", tlsListener(good), ""),
			want: []string{`warning gateways[0].redirectHTTPS: gateway "gw" has no plaintext listener to redirect`},
		},
		{
			name: "backend tls: SNI, CA, client certificate",
			src:  tlsPolicy("", plainListener, fmt.Sprintf("{sni: \"bad host:1\", clientCert: {cert: %q, key: %q}}", f.cert, f.otherKey)),
			want: []string{
				"warning backends[0].tls: the backend's certificate is not verified (no ca)",
				`error backends[0].tls.sni: invalid SNI "bad host:1"`,
				"error backends[0].tls.clientCert: invalid certificate: the private key does not match the certificate",
			},
		},
		{
			name: "backend clientCert needs both fields",
			src:  tlsPolicy("", plainListener, fmt.Sprintf("{ca: %q, clientCert: {cert: %q}}", f.ca, f.cert)),
			want: []string{`error backends[0].tls.clientCert.key: missing required field "key"`},
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

func TestCompileTLS(t *testing.T) {
	f := newTLSFixture(t)
	src := tlsPolicy("    redirectHTTPS: true\n    hsts: {includeSubDomains: true}\n",
		plainListener+tlsListener(fmt.Sprintf("certificates: [{name: www, cert: %q, key: %q}, {name: api, cert: %q, key: %q}], clientCA: %q",
			f.inlineCert, f.inlineKey, f.cert, f.key, f.ca)),
		fmt.Sprintf("{sni: be.internal, ca: %q}", f.ca))
	cfg, ds := Build([]File{{Name: "p.yaml", Content: []byte(src)}})
	if ds.HasErrors() {
		t.Fatal(render(ds))
	}
	gw := cfg.Gateways[0]
	https := gw.Listeners[1]
	if https.TLS == nil || https.TLS.MinVersion != "1.2" || https.TLS.ClientCASecret != "client-ca/gw/https" ||
		!slices.Equal(https.TLS.CertificateSecrets, []string{"tls/gw/https/www", "tls/gw/https/api"}) {
		t.Errorf("https TLS = %+v (want policy order, min 1.2, client CA)", https.TLS)
	}
	if gw.Listeners[0].TLS != nil || !gw.RedirectHTTPS || gw.HSTS == nil || gw.HSTS.Value() != "max-age=31536000; includeSubDomains" {
		t.Errorf("http listener TLS %+v, redirect %v, HSTS %+v", gw.Listeners[0].TLS, gw.RedirectHTTPS, gw.HSTS)
	}
	var names []string
	for _, s := range gw.Secrets {
		names = append(names, s.Name+"="+string(s.Kind))
	}
	want := []string{"client-ca/gw/https=ca", "tls/gw/https/api=certificate", "tls/gw/https/www=certificate", "upstream-ca/be=ca"}
	if !slices.Equal(names, want) {
		t.Errorf("secrets %q, want %q", names, want)
	}
	if b := cfg.Backends[0].TLS; b == nil || b.SNI != "be.internal" || b.CASecret != "upstream-ca/be" || b.ClientCertSecret != "" {
		t.Errorf("backend TLS = %+v", b)
	}
	www, _ := gw.Secret("tls/gw/https/www")
	if www.Key.Inline != f.inlineKey || www.Key.InlineSHA256 == "" || www.Cert.File != "" {
		t.Error("inline PEM not carried with its digest")
	}
	j, _ := json.Marshal(cfg)
	if strings.Contains(string(j), "PRIVATE KEY") || strings.Contains(string(j), "BEGIN CERTIFICATE") {
		t.Error("the IR's JSON (and so its hash, the version) carries PEM")
	}
	// Changing only the inline key changes the version; a file's content does not.
	cfg2, _ := Build([]File{{Name: "p.yaml", Content: []byte(strings.Replace(src, "certificates: [{name: www", "certificates: [{name: www2", 1))}})
	if cfg.Hash() == cfg2.Hash() {
		t.Error("a renamed certificate kept the version")
	}
}
