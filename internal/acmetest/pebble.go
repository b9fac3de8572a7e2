// Package acmetest runs Let's Encrypt's test CA, Pebble, in process for
// tests: its real CA, database, validation authority and web front end
// (github.com/letsencrypt/pebble/v2, wired like its cmd/pebble does), an
// HTTPS server for its ACME API and a tiny DNS server that resolves every
// name to 127.0.0.1 for its validation authority. Pebble's VA really fetches
// the HTTP-01 tokens from http://<domain>:<HTTPPort>/.well-known/acme-challenge/.
package acmetest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// Options configure Pebble.
type Options struct {
	// HTTPPort is the port Pebble's VA connects to for HTTP-01 (Envoy's
	// plain-HTTP listener, or a test's challenge server). Required.
	HTTPPort int
	// Validity of issued certificates (default Pebble's 90 days; at least
	// one second).
	Validity time.Duration
	// Addr is the ACME API's listen address (default a free loopback
	// port); a fixed one lets a test replace the CA by a fresh one at the
	// same directory URL.
	Addr string
}

// Pebble is a running in-process Pebble.
type Pebble struct {
	// DirectoryURL is the ACME directory (HTTPS).
	DirectoryURL string
	// Client trusts the ACME API's HTTPS certificate.
	Client *http.Client
	// APICertPEM is the ACME API's HTTPS certificate (to trust it from
	// another process).
	APICertPEM []byte

	ca    *ca.CAImpl
	log   *syncBuffer
	srv   *httptest.Server
	close sync.Once
}

// pebbleEnv is the environment Pebble reads its test settings from: every
// order is validated afresh and the VA does not sleep before validating.
func pebbleEnv() map[string]string {
	return map[string]string{"PEBBLE_AUTHZREUSE": "0", "PEBBLE_VA_NOSLEEP": "1"}
}

// SetProcessEnv sets Pebble's environment (see Start) for the whole test
// process, for a TestMain whose tests call Start in parallel.
func SetProcessEnv() error {
	for k, v := range pebbleEnv() {
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("acmetest: set %s: %w", k, err)
		}
	}
	return nil
}

// Start runs Pebble until the test ends. Every order is validated afresh
// (PEBBLE_AUTHZREUSE=0) and the VA does not sleep before validating
// (PEBBLE_VA_NOSLEEP=1). The environment is the process's: Start sets it
// with t.Setenv, so the test cannot be parallel, unless it already holds
// these values (SetProcessEnv in TestMain).
func Start(t testing.TB, opts Options) *Pebble {
	t.Helper()
	for k, v := range pebbleEnv() {
		if os.Getenv(k) != v {
			t.Setenv(k, v)
		}
	}
	dnsAddr := startDNS(t)
	buf := &syncBuffer{}
	logger := log.New(buf, "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	profiles := map[string]ca.Profile{"default": {Description: "test", ValidityPeriod: uint64(opts.Validity / time.Second)}}
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	validator := va.New(logger, opts.HTTPPort, 0, false, dnsAddr, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 1, 1)
	srv := httptest.NewUnstartedServer(fastPolling(front.Handler()))
	if opts.Addr != "" {
		l, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			t.Fatalf("pebble listen: %v", err)
		}
		srv.Listener.Close()
		srv.Listener = l
	}
	srv.StartTLS()
	p := &Pebble{
		DirectoryURL: srv.URL + wfe.DirectoryPath,
		Client:       srv.Client(),
		APICertPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}),
		ca:           authority,
		log:          buf,
		srv:          srv,
	}
	t.Cleanup(func() {
		p.Close()
		if t.Failed() {
			t.Logf("pebble log:\n%s", buf.String())
		}
	})
	return p
}

// Close stops the ACME API (Pebble forgets everything).
func (p *Pebble) Close() { p.close.Do(p.srv.Close) }

// fastPolling adds "Retry-After: 1" to Pebble's challenge responses, which
// carry none (lego then waits 5 s before polling the authorization).
func fastPolling(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/chalZ/") {
			w.Header().Set("Retry-After", "1")
		}
		h.ServeHTTP(w, r)
	})
}

// Roots returns a pool holding Pebble's issuing root.
func (p *Pebble) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.Root())
	return pool
}

// Root is Pebble's issuing root certificate.
func (p *Pebble) Root() *x509.Certificate {
	c, err := x509.ParseCertificate(p.ca.GetRootCert(0).DER)
	if err != nil {
		panic("pebble root: " + err.Error()) // Pebble made it: cannot fail
	}
	return c
}

// Log returns what Pebble logged so far.
func (p *Pebble) Log() string { return p.log.String() }

// ValidationsOf counts the HTTP-01 fetches Pebble's VA attempted for domain.
func (p *Pebble) ValidationsOf(domain string) int {
	return strings.Count(p.log.String(), "Attempting to validate w/ HTTP: http://"+domain+":")
}

// startDNS serves A 127.0.0.1 (and no AAAA) for every name on a TCP
// loopback port (Pebble's VA asks its custom resolver over TCP) until the
// test ends, and returns its address.
func startDNS(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dns listen: %v", err)
	}
	srv := &dns.Server{Listener: l, Handler: dns.HandlerFunc(answerLoopback)}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return l.Addr().String()
}

func answerLoopback(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	for _, q := range req.Question {
		if q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
				A:   net.IPv4(127, 0, 0, 1),
			})
		}
	}
	_ = w.WriteMsg(m)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
