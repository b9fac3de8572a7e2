package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/internal/acmetest"
)

const acmePolicy = `version: 1
gateways:
  - name: public
    listeners:
      - {name: http, port: %[1]d, address: 127.0.0.1}
      - name: https
        port: %[2]d
        address: 127.0.0.1
        tls:
          acme: {domains: [api.example.com], email: ops@example.com, directory: %[3]q, renewBefore: 1h}
routes:
  - {name: echo, match: {pathPrefix: /}, backend: echo, auth: none}
backends:
  - {name: echo, endpoints: [%[4]q]}
`

// TestACME issues a certificate from Pebble (Let's Encrypt's test CA, run
// in process) whose validation authority fetches the HTTP-01 token through
// Envoy's plaintext listener from the control plane's responder; checks
// that Envoy's TLS listener then presents it (chaining to Pebble's root),
// and that a renewal rotates it over SDS without a listener update.
func TestACME(t *testing.T) {
	t.Parallel() // waits on timers and asserts no latency (e2e/doc.go)
	httpP, httpsP, acmeP := harness.FreePort(t), harness.FreePort(t), harness.FreePort(t)
	// 9 s certificates, renewBefore 1h: each is renewed a third into its
	// lifetime, about 3 s after it was issued.
	pebble := acmetest.Start(t, acmetest.Options{HTTPPort: httpP, Validity: 9 * time.Second})
	echo := harness.StartUpstream(t, "echo")
	caFile := writeFile(t, "pebble-api.pem", string(pebble.APICertPEM))
	s := startStackWith(t, fmt.Sprintf(acmePolicy, httpP, httpsP, pebble.DirectoryURL, echo.Addr()), stackOptions{
		args: []string{"--acme-addr", fmt.Sprintf("127.0.0.1:%d", acmeP), "--acme-ca-file", caFile, "--acme-retry", "500ms"},
	})
	e := s.envoy("public", "acme", "delta")
	roots := pebble.Roots()

	ctx := testCtx(t, 30*time.Second)
	var first *x509.Certificate
	err := harness.WaitFor(ctx, func() (bool, error) {
		leaf, err := acmeHandshake(httpsP, roots)
		first = leaf
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("Envoy never presented a certificate chaining to Pebble's root: %v\ncontrol plane:\n%s", err, s.cp.LogTail(30))
	}
	if pebble.ValidationsOf("api.example.com") == 0 {
		t.Fatal("Pebble's VA fetched no HTTP-01 token")
	}
	if n, _, err := e.Stat(ctx, "cluster.tollgate_acme.upstream_rq_200"); err != nil || n == 0 {
		t.Fatalf("Envoy answered no challenge from the responder (tollgate_acme 200s = %d, %v)", n, err)
	}
	checkEchoOverTLS(t, httpsP, roots)
	checkACMEFiles(t, s.dataDir)

	ldsBefore, _, _ := e.Stat(ctx, "listener_manager.lds.update_success")
	var renewed *x509.Certificate
	err = harness.WaitFor(ctx, func() (bool, error) {
		leaf, err := acmeHandshake(httpsP, roots)
		renewed = leaf
		return err == nil && leaf.SerialNumber.Cmp(first.SerialNumber) != 0, nil
	})
	if err != nil {
		t.Fatalf("no renewed certificate reached Envoy: %v\ncontrol plane:\n%s", err, s.cp.LogTail(30))
	}
	if !renewed.NotBefore.After(first.NotBefore) {
		t.Errorf("renewed certificate NotBefore %v not after the first's %v", renewed.NotBefore, first.NotBefore)
	}
	if ldsAfter, _, _ := e.Stat(ctx, "listener_manager.lds.update_success"); ldsAfter != ldsBefore {
		t.Errorf("the rotation updated listeners (LDS updates %d → %d); it must change only the secret", ldsBefore, ldsAfter)
	}
	checkEchoOverTLS(t, httpsP, roots)
	t.Run("restart", func(t *testing.T) { testACMERestart(t, s, e, httpsP) })
}

// testACMERestart kills and restarts the control plane while a client
// keeps handshaking with Envoy: the restarted control plane's first
// snapshot already carries the stored certificate, so Envoy never serves
// the placeholder.
func testACMERestart(t *testing.T, s *stack, e *harness.Envoy, port int) {
	ctx, cancelLoop := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelLoop()
	done := make(chan struct{})
	var seen, placeholders atomic.Int64
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
			c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: "api.example.com", InsecureSkipVerify: true})
			if err != nil {
				continue
			}
			seen.Add(1)
			if leaf := c.ConnectionState().PeerCertificates[0]; len(leaf.DNSNames) == 0 || leaf.DNSNames[0] != "api.example.com" {
				placeholders.Add(1)
			}
			c.Close()
		}
	}()
	_ = s.cp.Kill()
	if err := harness.WaitFor(ctx, func() (bool, error) {
		n, _, err := e.Stat(ctx, "control_plane.connected_state")
		return err == nil && n == 0, nil
	}); err != nil {
		t.Fatalf("envoy never noticed the control plane was gone: %v", err)
	}
	s.startServe("")
	if err := harness.WaitFor(ctx, func() (bool, error) {
		n, _, err := e.Stat(ctx, "control_plane.connected_state")
		return err == nil && n == 1, nil
	}); err != nil {
		t.Fatalf("envoy did not reconnect: %v", err)
	}
	s.waitSynced("acme")
	after := seen.Load()
	if err := harness.WaitFor(ctx, func() (bool, error) { return seen.Load() >= after+30, nil }); err != nil {
		t.Fatalf("handshakes stopped after the restart: %v", err)
	}
	cancelLoop()
	<-done
	if placeholders.Load() != 0 {
		t.Fatalf("%d of %d handshakes across the restart presented a certificate other than api.example.com's", placeholders.Load(), seen.Load())
	}
}

// acmeHandshake connects to Envoy's TLS listener for api.example.com,
// verifying the chain against roots, and returns the leaf.
func acmeHandshake(port int, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 2 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: "api.example.com", RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// checkEchoOverTLS sends a request through the TLS listener.
func checkEchoOverTLS(t *testing.T, port int, roots *x509.CertPool) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DialTLSContext: nil}
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	resp, err := c.Get("https://api.example.com/hello")
	if err != nil {
		t.Fatalf("request over TLS: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("request over TLS: %d %s", resp.StatusCode, body)
	}
}

// checkACMEFiles checks that the account and the certificate are stored
// with mode 0600 under <data-dir>/acme.
func checkACMEFiles(t *testing.T, dataDir string) {
	t.Helper()
	for _, sub := range []string{"accounts", "certificates"} {
		entries, err := os.ReadDir(filepath.Join(dataDir, "acme", sub))
		if err != nil || len(entries) != 1 {
			t.Fatalf("%s: %d files, %v; want one", sub, len(entries), err)
		}
		info, err := entries[0].Info()
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s/%s: mode %v, %v; want 0600", sub, entries[0].Name(), info.Mode().Perm(), err)
		}
	}
}
