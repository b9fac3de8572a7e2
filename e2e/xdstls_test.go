package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tollgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := testPKI{ca: writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)}
	issue := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, DNSNames: []string{name}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "EC PRIVATE KEY", kb)
	}
	p.serverCert, p.serverKey = issue("tollgate", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.clientCert, p.clientKey = issue("envoy", 3, x509.ExtKeyUsageClientAuth, nil)
	return p
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestXDSMutualTLS serves xDS over mTLS and the admin API over TLS: an
// Envoy with the client certificate gets its configuration; one without it
// (trusting the CA, so only the client certificate is missing) connects,
// is refused and never gets a listener; the CLI reaches the admin API over
// https with --ca-file.
func TestXDSMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	us := upstreams(t, "one", "two")
	port := harness.FreePort(t)
	s := startStackWith(t, pushPolicy(port, us["one"].Addr(), us["two"].Addr(), ""), stackOptions{args: []string{
		"--xds-tls-cert", pki.serverCert, "--xds-tls-key", pki.serverKey, "--xds-client-ca", pki.ca}})
	good := s.envoyTLS("public", "mtls-good", "--xds-ca", pki.ca, "--xds-tls-cert", pki.clientCert, "--xds-tls-key", pki.clientKey)
	ctx := testCtx(t, 30*time.Second)
	if err := good.WaitReady(ctx); err != nil {
		t.Fatalf("the Envoy with a client certificate never got its configuration: %v", err)
	}
	client := harness.NewHTTPClient(false)
	defer client.Close()
	if code, up := get(ctx, client, port, "/old"); code != 200 || up != "one" {
		t.Fatalf("GET /old through the mTLS Envoy = %d %q", code, up)
	}

	bad := s.envoyTLS("public", "mtls-nocert", "--xds-ca", pki.ca)
	// Wait until the control plane has refused it (TLS 1.3: the handshake
	// completes on Envoy's side, then the server's alert arrives; Envoy's
	// next attempt comes after a jittered back-off, so one is enough).
	if err := bad.WaitStat(ctx, "cluster.xds_cluster.ssl.connection_error", func(n int64) bool { return n >= 1 }); err != nil {
		t.Fatalf("the Envoy without a certificate was never refused: %v", err)
	}
	if code, body, _ := bad.Admin(ctx, "/ready"); code == 200 {
		t.Fatalf("the Envoy without a client certificate is ready (%s): it fetched configuration", body)
	}
	dump, err := bad.ConfigDump(ctx, "dynamic_listeners")
	if err != nil || strings.Contains(string(dump), "\"http\"") {
		t.Fatalf("the Envoy without a client certificate has listeners: %v\n%s", err, dump)
	}
	for _, n := range s.status().Nodes {
		if n.ID == "mtls-nocert" {
			t.Fatalf("the control plane lists the uncertified Envoy: %+v", n)
		}
	}
	checkAdminTLS(t, s, pki)
}

// checkAdminTLS runs a second control plane whose admin API is HTTPS and
// reaches it with the CLI and --ca-file; plain HTTP gets no answer.
func checkAdminTLS(t *testing.T, s *stack, pki testPKI) {
	admin := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	p := harness.StartProcessSpec(t, harness.ProcessSpec{Name: "tollgate-admin-tls", Bin: s.bin, Args: []string{"serve",
		"--data-dir", filepath.Join(t.TempDir(), "store"), "--admin-addr", admin, "--admin-token", testToken,
		"--admin-tls-cert", pki.serverCert, "--admin-tls-key", pki.serverKey,
		"--xds-addr", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), "--authz-addr", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
		"--ratelimit-addr", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
		"--extproc-addr", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))}})
	ctx := testCtx(t, 20*time.Second)
	var out string
	err := harness.WaitFor(ctx, func() (bool, error) {
		if p.Exited() {
			return false, harness.Permanent(fmt.Errorf("serve exited: %s", p.LogTail(10)))
		}
		var code int
		out, _, code = s.run("status", "--server", "https://"+admin, "--ca-file", pki.ca)
		return code == 0, nil
	})
	if err != nil {
		t.Fatalf("tollgate status over https with --ca-file: %v (%s)", err, out)
	}
	if _, _, code := s.run("status", "--server", "https://"+admin); code == 0 {
		t.Errorf("status over https succeeded without trusting the CA")
	}
	if _, _, code := s.run("status", "--server", "http://"+admin, "--timeout", "2s"); code == 0 {
		t.Errorf("plain http to the TLS admin API succeeded")
	}
}

// envoyTLS starts an Envoy whose bootstrap gets extra flags, without
// waiting for it to be ready.
func (s *stack) envoyTLS(gateway, nodeID string, extra ...string) *harness.Envoy {
	s.t.Helper()
	args := append([]string{"bootstrap", "--gateway", gateway, "--node-id", nodeID, "--xds", s.xdsAddr,
		"--admin-port", fmt.Sprint(harness.FreePort(s.t))}, extra...)
	return harness.StartEnvoy(s.t, []byte(s.cli(0, args...)), harness.EnvoyOptions{})
}
