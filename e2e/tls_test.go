package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

const tlsPolicy = `version: 1
gateways:
  - name: public
    redirectHTTPS: true
    hsts: {maxAge: 600, includeSubDomains: true}
    listeners:
      - {name: http, port: %[1]d, address: 127.0.0.1}
      - name: https
        port: %[2]d
        address: 127.0.0.1
        tls:
          certificates:
            - {name: api, cert: %[4]q, key: %[5]q}
            - {name: www, cert: %[6]q, key: %[7]q}
      - name: strict
        port: %[3]d
        address: 127.0.0.1
        tls: {minVersion: "1.3", clientCA: %[8]q, certificates: [{name: api, cert: %[4]q, key: %[5]q}]}
routes:
  - {name: echo, match: {pathPrefix: /}, backend: echo, auth: none}
  - {name: secure, match: {pathPrefix: /secure}, backend: secure, auth: none}
  - {name: wrong, match: {pathPrefix: /wrong-name}, backend: wrong-name, auth: none}
backends:
  - {name: echo, endpoints: [%[9]q]}
  - name: secure
    endpoints: [%[10]q]
    tls: {sni: secure.internal, ca: %[8]q, clientCert: {cert: %[11]q, key: %[12]q}}
  - name: wrong-name
    endpoints: [%[10]q]
    tls: {sni: other.internal, ca: %[8]q, clientCert: {cert: %[11]q, key: %[12]q}}
`

// tlsEnv is the TLS test's stack: files, certificates and ports.
type tlsEnv struct {
	s                     *stack
	e                     *harness.Envoy
	ca                    *testCA
	httpP, httpsP, strict int
	apiCert, apiKey       string // files
	render                func(wwwCert, wwwKey []byte) string
}

// TestTLS runs every TLS check against a real Envoy, once per xDS protocol
// (SDS over delta and over state-of-the-world ADS).
func TestTLS(t *testing.T) {
	for _, protocol := range []string{"delta", "sotw"} {
		t.Run(protocol, func(t *testing.T) { testTLS(t, protocol) })
	}
}

func testTLS(t *testing.T, protocol string) {
	env := startTLS(t, protocol)
	t.Run("versions", env.testVersions)
	t.Run("sni", env.testSNI)
	t.Run("redirect-and-hsts", env.testRedirectHSTS)
	t.Run("client-certificates", env.testMTLS)
	t.Run("upstream-mtls", env.testUpstreamMTLS)
	t.Run("file-rotation", env.testFileRotation)
	t.Run("inline-rotation", env.testInlineRotation)
	t.Run("sds-only", env.testSDSOnly)
}

// testSDSOnly checks that the certificates reached Envoy as SDS secrets,
// not as file paths, and that the control plane never logged key material.
func (env *tlsEnv) testSDSOnly(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	secrets, err := env.e.ConfigDump(ctx, "dynamic_active_secrets")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tls/public/https/api", "tls/public/https/www", "client-ca/public/strict", "upstream-ca/secure", "upstream-cert/secure"} {
		if !strings.Contains(string(secrets), `"`+name+`"`) {
			t.Errorf("secret %s not among Envoy's dynamic secrets", name)
		}
	}
	listeners, err := env.e.ConfigDump(ctx, "dynamic_listeners")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(listeners), env.apiCert) || strings.Contains(string(listeners), "filename") {
		t.Error("a listener references a certificate file")
	}
	if strings.Contains(string(secrets), "PRIVATE KEY") {
		t.Error("Envoy's config dump shows a private key")
	}
	if log := env.s.cp.LogTail(100000); strings.Contains(log, "PRIVATE KEY") || strings.Contains(log, "BEGIN CERTIFICATE") {
		t.Error("the control plane logged PEM material")
	}
}

func startTLS(t *testing.T, protocol string) *tlsEnv {
	ca := newTestCA(t, "tollgate test CA")
	env := &tlsEnv{ca: ca, httpP: harness.FreePort(t), httpsP: harness.FreePort(t), strict: harness.FreePort(t)}
	apiCert, apiKey := ca.leaf(t, 1001, "api.example.com")
	wwwCert, wwwKey := ca.leaf(t, 2001, "www.example.com")
	clientCert, clientKey := ca.leaf(t, 3001, "envoy.internal")
	env.apiCert, env.apiKey = writeFile(t, "api.crt", string(apiCert)), writeFile(t, "api.key", string(apiKey))
	caFile := writeFile(t, "ca.crt", string(ca.pem))
	secure := startSecureUpstream(t, ca)
	echo := harness.StartUpstream(t, "echo")
	ccFile, ckFile := writeFile(t, "client.crt", string(clientCert)), writeFile(t, "client.key", string(clientKey))
	env.render = func(wc, wk []byte) string {
		return fmt.Sprintf(tlsPolicy, env.httpP, env.httpsP, env.strict, env.apiCert, env.apiKey, string(wc), string(wk),
			caFile, echo.Addr(), secure, ccFile, ckFile)
	}
	env.s = startStack(t, env.render(wwwCert, wwwKey))
	env.e = env.s.envoy("public", "tls-"+protocol, protocol)
	return env
}

// startSecureUpstream starts an HTTPS upstream that requires a client
// certificate from ca and echoes the SNI it was sent.
func startSecureUpstream(t *testing.T, ca *testCA) string {
	cert, key := ca.leaf(t, 4001, "secure.internal")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-SNI", r.TLS.ServerName)
			w.Header().Set("X-Client-CN", r.TLS.PeerCertificates[0].Subject.CommonName)
			io.WriteString(w, "secure")
		}),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{keyPair(t, cert, key)},
			ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.pool(), MinVersion: tls.VersionTLS12,
		},
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.ServeTLS(l, "", "")
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// handshake dials port with cfg and returns the server's leaf serial.
func handshake(port int, cfg *tls.Config) (*big.Int, error) {
	d := &net.Dialer{Timeout: 3 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", fmt.Sprintf("127.0.0.1:%d", port), cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func (env *tlsEnv) clientConfig(host string) *tls.Config {
	return &tls.Config{ServerName: host, RootCAs: env.ca.pool(), NextProtos: []string{"h2", "http/1.1"}}
}

func (env *tlsEnv) testVersions(t *testing.T) {
	for _, tc := range []struct {
		port     int
		min, max uint16
		ok       bool
	}{
		{env.httpsP, tls.VersionTLS11, tls.VersionTLS11, false},
		{env.httpsP, tls.VersionTLS12, tls.VersionTLS12, true},
		{env.httpsP, tls.VersionTLS13, tls.VersionTLS13, true},
		{env.strict, tls.VersionTLS12, tls.VersionTLS12, false},
	} {
		cfg := env.clientConfig("api.example.com")
		cfg.MinVersion, cfg.MaxVersion = tc.min, tc.max
		if tc.port == env.strict {
			cfg.Certificates = []tls.Certificate{env.ca.pair(t, 5001, "client.example.com")}
		}
		_, err := handshake(tc.port, cfg)
		if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), "protocol version not supported") {
			t.Errorf("port %d TLS %x..%x: err = %v, want ok=%v", tc.port, tc.min, tc.max, err, tc.ok)
		}
	}
	cfg := env.clientConfig("api.example.com")
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", env.httpsP), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Errorf("ALPN = %q, want h2", p)
	}
}

func (env *tlsEnv) testSNI(t *testing.T) {
	for host, want := range map[string]int64{"api.example.com": 1001, "www.example.com": 2001} {
		serial, err := handshake(env.httpsP, env.clientConfig(host))
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if serial.Int64() != want {
			t.Errorf("%s: serial %d, want %d", host, serial, want)
		}
	}
}

// httpsClient returns an HTTP client trusting the test CA that dials every
// request to port and never follows redirects.
func (env *tlsEnv) httpsClient(port int, keepAlive bool, certs ...tls.Certificate) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: env.ca.pool(), Certificates: certs},
		DisableKeepAlives: !keepAlive,
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		},
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (env *tlsEnv) testRedirectHSTS(t *testing.T) {
	c := env.httpsClient(env.httpP, false)
	resp, err := c.Get("http://api.example.com/some/path?q=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := fmt.Sprintf("https://api.example.com:%d/some/path?q=1", env.httpsP)
	if resp.StatusCode != 301 || resp.Header.Get("Location") != want {
		t.Errorf("plaintext: %d Location %q, want 301 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if h := resp.Header.Get("Strict-Transport-Security"); h != "" {
		t.Errorf("plaintext response carries HSTS %q", h)
	}
	resp, err = env.httpsClient(env.httpsP, false).Get("https://api.example.com/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "max-age=600; includeSubDomains" {
		t.Errorf("https: %d HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("https served over %s, want HTTP/2", resp.Proto)
	}
}

func (env *tlsEnv) testMTLS(t *testing.T) {
	// TLS 1.3: the client's handshake completes before the server checks
	// its (missing) certificate; the server's alert arrives on the first read.
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", env.strict), env.clientConfig("api.example.com"))
	if err == nil {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("connection without a client certificate: err = %v, want a 'certificate required' alert", err)
	}
	other := newTestCA(t, "other CA")
	if _, err := env.httpsClient(env.strict, false, other.pair(t, 9, "x.example.com")).Get("https://api.example.com/"); err == nil {
		t.Error("request with a certificate from another CA succeeded")
	}
	resp, err := env.httpsClient(env.strict, false, env.ca.pair(t, 6001, "client.example.com")).Get("https://api.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("with a client certificate: %d", resp.StatusCode)
	}
}

func (env *tlsEnv) testUpstreamMTLS(t *testing.T) {
	resp, err := env.httpsClient(env.httpsP, false).Get("https://api.example.com/secure")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "secure" {
		t.Fatalf("upstream mTLS: %d %q", resp.StatusCode, body)
	}
	if sni, cn := resp.Header.Get("X-SNI"), resp.Header.Get("X-Client-CN"); sni != "secure.internal" || cn != "envoy.internal" {
		t.Errorf("upstream saw SNI %q and client %q, want secure.internal and envoy.internal", sni, cn)
	}
	// The upstream's certificate does not name other.internal: refused.
	resp, err = env.httpsClient(env.httpsP, false).Get("https://api.example.com/wrong-name")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("upstream whose certificate does not match the SNI: %d, want 503", resp.StatusCode)
	}
}

// listenerChurn returns Envoy's listener_manager.listener_modified and
// listener_manager.lds.update_success: a rotation must move neither.
func (env *tlsEnv) listenerChurn(t *testing.T) [2]int64 {
	var out [2]int64
	for i, name := range []string{"listener_manager.listener_modified", "listener_manager.lds.update_success"} {
		v, _, err := env.e.Stat(testCtx(t, 5*time.Second), name)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = v
	}
	return out
}

// keptAlive returns a function that GETs host over one kept-alive
// connection, and the count of requests that reused it.
func (env *tlsEnv) keptAlive(t *testing.T, host string) (get func(), reused *int) {
	kept := env.httpsClient(env.httpsP, true)
	reused = new(int)
	get = func() {
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			if i.Reused {
				*reused++
			}
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "https://"+host+"/kept", nil)
		resp, err := kept.Do(req)
		if err != nil {
			t.Fatalf("kept-alive connection: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return get, reused
}

// rotate runs change while a client loop makes new TLS connections, waits
// until host is served the certificate with serial want, and checks that no
// request failed and no listener changed.
func (env *tlsEnv) rotate(t *testing.T, host string, want int64, change func()) {
	before := env.listenerChurn(t)
	var okN, failN atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := env.httpsClient(env.httpsP, false)
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := c.Get("https://" + host + "/loop")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = errors.New(resp.Status)
				}
			}
			if err != nil {
				failN.Add(1)
				lastErr.Store(err.Error())
				continue
			}
			okN.Add(1)
		}
	}()
	keptGet, reused := env.keptAlive(t, host)
	keptGet()
	start := time.Now()
	change()
	ctx := testCtx(t, 20*time.Second)
	err := harness.WaitFor(ctx, func() (bool, error) {
		serial, err := handshake(env.httpsP, env.clientConfig(host))
		return err == nil && serial.Int64() == want, nil
	})
	took := time.Since(start)
	// Keep the loop running on the new certificate for a moment of traffic.
	target := okN.Load() + 20
	_ = harness.WaitFor(ctx, func() (bool, error) { return okN.Load() >= target, nil })
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("%s never served serial %d: %v", host, want, err)
	}
	t.Logf("rotation of %s visible after %s; %d requests ok, %d failed", host, took.Round(time.Millisecond), okN.Load(), failN.Load())
	if failN.Load() != 0 {
		t.Errorf("%d requests failed during the rotation, last: %v", failN.Load(), lastErr.Load())
	}
	keptGet()
	if *reused != 1 {
		t.Errorf("the connection opened before the rotation was not reused after it (reused %d)", *reused)
	}
	if after := env.listenerChurn(t); after != before {
		t.Errorf("listener_modified, lds.update_success went from %v to %v: the rotation touched the listeners", before, after)
	}
}

func (env *tlsEnv) testFileRotation(t *testing.T) {
	cert, key := env.ca.leaf(t, 1002, "api.example.com")
	env.rotate(t, "api.example.com", 1002, func() {
		replaceFile(t, env.apiKey, key)
		replaceFile(t, env.apiCert, cert)
	})
}

func (env *tlsEnv) testInlineRotation(t *testing.T) {
	cert, key := env.ca.leaf(t, 2002, "www.example.com")
	env.rotate(t, "www.example.com", 2002, func() {
		out := env.s.cli(0, "push", writeFile(t, "rotated.yaml", env.render(cert, key)))
		if strings.Contains(out, "PRIVATE KEY") {
			t.Errorf("push output shows a private key:\n%s", out)
		}
	})
}
