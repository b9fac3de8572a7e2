package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// filterChangePolicy has two gateways: "open", public routes only at first, and
// "site", whose plaintext listener redirects to HTTPS at first. Format
// arguments: open's port, site's plaintext and TLS ports, the certificate
// and key files, the upstream, open's extra routes, site's redirectHTTPS.
const filterChangePolicy = `version: 1
auth: {apiKeys: {}}
gateways:
  - name: open
    listeners: [{name: open-http, port: %[1]d, address: 127.0.0.1}]
  - name: site
    redirectHTTPS: %[8]t
    listeners:
      - {name: site-http, port: %[2]d, address: 127.0.0.1}
      - {name: site-https, port: %[3]d, address: 127.0.0.1, tls: {certificates: [{name: site, cert: %[4]q, key: %[5]q}]}}
routes:
  - {name: old, gateway: open, match: {pathPrefix: /old}, backend: echo, auth: none}
%[7]s
  - {name: secure, gateway: site, match: {pathPrefix: /secure}, backend: echo, auth: {methods: [apiKey]}}
backends:
  - {name: echo, endpoints: [%[6]q]}
`

// TestDrainingConnectionKeepsItsFilters holds HTTP/1.1 connections open
// across a push that changes their listener's HTTP filters, and sends the
// request the push made protected on the old connection: Envoy drains such
// connections (here for 60s) but keeps serving them on the old filter
// chain, which must never meet the new routes (xds/translator
// bindRouteConfig). Two pushes of that kind at once: a public-only
// gateway's first protected route (ext_authz appears) and redirectHTTPS
// turned off (the redirect chain has the router only: no ext_authz, no
// identity strip).
func TestDrainingConnectionKeepsItsFilters(t *testing.T) {
	up := harness.StartUpstream(t, "echo")
	ca := newTestCA(t, "drain-ca")
	certPEM, keyPEM := ca.leaf(t, 2, "localhost")
	cert, key := writeFile(t, "site.crt", string(certPEM)), writeFile(t, "site.key", string(keyPEM))
	openP, siteP, siteTLS := harness.FreePort(t), harness.FreePort(t), harness.FreePort(t)
	render := func(extra string, redirect bool) string {
		return fmt.Sprintf(filterChangePolicy, openP, siteP, siteTLS, cert, key, up.Addr(), extra, redirect)
	}
	s := startStack(t, render("", true))
	opts := harness.EnvoyOptions{DrainTime: time.Minute}
	s.envoyWith("open", "drain-open", opts)
	s.envoyWith("site", "drain-site", opts)

	openConn := dialKeepAliveConn(t, openP)
	if resp := openConn.get(t, "/old", nil); resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != "echo" {
		t.Fatalf("GET /old before the push: %d from %q", resp.StatusCode, resp.Header.Get("X-Upstream"))
	}
	siteConn := dialKeepAliveConn(t, siteP)
	if resp := siteConn.get(t, "/secure/x", nil); resp.StatusCode != 301 {
		t.Fatalf("GET /secure/x on the redirecting listener before the push: %d", resp.StatusCode)
	}

	protected := "  - {name: new, gateway: open, match: {pathPrefix: /new}, backend: echo, auth: {methods: [apiKey]}}"
	out := s.cli(0, "push", writeFile(t, "next.yaml", render(protected, false)))
	t.Logf("push: %s", strings.TrimSpace(out))
	waitStatus(t, openP, "/new", 401)
	waitStatus(t, siteP, "/secure/x", 401)

	// The old connections, still open and on the old filter chains.
	forged := map[string]string{"X-User-Id": "mallory", "X-User-Roles": "admin"}
	resp := openConn.get(t, "/new", forged)
	if resp.StatusCode == 200 || resp.Header.Get("X-Upstream") != "" {
		t.Errorf("the new protected route answered %d from %q on a connection opened before the push, without credentials",
			resp.StatusCode, resp.Header.Get("X-Upstream"))
	}
	t.Logf("old connection of the public-only gateway, new protected route: %d", resp.StatusCode)
	resp = siteConn.get(t, "/secure/x", forged)
	if resp.StatusCode == 200 || resp.Header.Get("X-Upstream") != "" {
		t.Errorf("the protected route answered %d from %q on a connection of the old redirect chain, without credentials",
			resp.StatusCode, resp.Header.Get("X-Upstream"))
	}
	t.Logf("old connection of the redirect chain, protected route: %d", resp.StatusCode)
}

// keepAliveConn is one HTTP/1.1 connection used for several requests.
type keepAliveConn struct {
	c  net.Conn
	rd *bufio.Reader
}

func dialKeepAliveConn(t *testing.T, port int) *keepAliveConn {
	c, rd := dialKeepAlive(t, port)
	return &keepAliveConn{c: c, rd: rd}
}

// get sends GET path with headers on the connection and reads the whole
// response; the test fails if the connection was closed.
func (k *keepAliveConn) get(t *testing.T, path string, headers map[string]string) *http.Response {
	t.Helper()
	_ = k.c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: localhost\r\n", path)
	for name, v := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", name, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(k.c, b.String()); err != nil {
		t.Fatalf("GET %s on the kept-alive connection: %v", path, err)
	}
	resp, err := http.ReadResponse(k.rd, nil)
	if err != nil {
		t.Fatalf("GET %s on the kept-alive connection: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// waitStatus waits until GET path on a new connection answers want.
func waitStatus(t *testing.T, port int, path string, want int) {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	var got int
	err := harness.WaitFor(ctx, func() (bool, error) {
		resp, err := harness.HTTPGet(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), "localhost", nil)
		if err != nil {
			return false, nil
		}
		got = resp.Status
		return got == want, nil
	})
	if err != nil {
		t.Fatalf("GET %s on a new connection: %d, want %d: %v", path, got, want, err)
	}
}
