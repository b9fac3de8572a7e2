package acme

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/acmetest"
)

// pebbleRig is a Manager against an in-process Pebble whose VA fetches the
// HTTP-01 tokens from the Responder on a loopback port.
type pebbleRig struct {
	pebble  *acmetest.Pebble
	resp    *Responder
	broken  atomic.Bool // the challenge server answers 404
	storage *Storage
	logs    *lockedBuffer
	port    int // of the challenge server
}

func newPebbleRig(t *testing.T, opts acmetest.Options) *pebbleRig {
	r := &pebbleRig{resp: NewResponder(), logs: &lockedBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log:\n%s", r.logs.String())
		}
	})
	chal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.broken.Load() {
			http.NotFound(w, req)
			return
		}
		r.resp.ServeHTTP(w, req)
	}))
	t.Cleanup(chal.Close)
	_, port, _ := net.SplitHostPort(chal.Listener.Addr().String())
	r.port, _ = strconv.Atoi(port)
	opts.HTTPPort = r.port
	r.pebble = acmetest.Start(t, opts)
	var err error
	if r.storage, err = OpenStorage(filepath.Join(t.TempDir(), "acme")); err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs a Manager for domains until the test ends; its certificates
// arrive on the returned channel.
func (r *pebbleRig) start(t *testing.T, renewBefore time.Duration, domains ...string) (*Manager, <-chan *Certificate, context.CancelFunc) {
	got := make(chan *Certificate, 16)
	m, err := New(Options{
		Directory: r.pebble.DirectoryURL, Email: "ops@example.com", Domains: domains,
		Storage: r.storage, Responder: r.resp, HTTPClient: r.pebble.Client,
		RenewBefore: renewBefore, RetryMin: 200 * time.Millisecond, RetryMax: time.Second,
		OnCertificate: func(c *Certificate) error { got <- c; return nil },
		Logger:        slog.New(slog.NewTextHandler(r.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return m, got, stop
}

func TestManagerIssuesRenewsAndKeepsLastGoodWithPebble(t *testing.T) {
	t.Parallel() // waits on Pebble and renewal timers (see TestMain)
	r := newPebbleRig(t, acmetest.Options{Validity: 9 * time.Second})
	// The threshold is above the lifetime: renewal at a third of it (3 s).
	started := time.Now()
	m, got, _ := r.start(t, time.Hour, "www.example.com", "api.example.com")

	first := receive(t, got, 30*time.Second)
	t.Logf("first certificate (registration, order, 2 HTTP-01 validations, finalize) after %v", time.Since(started).Round(time.Millisecond))
	checkChain(t, first, r.pebble.Roots(), "api.example.com", "www.example.com")
	for _, d := range []string{"api.example.com", "www.example.com"} {
		if r.pebble.ValidationsOf(d) == 0 {
			t.Fatalf("Pebble's VA never fetched the token of %s:\n%s", d, r.pebble.Log())
		}
	}
	checkFilesPrivate(t, r.storage.Dir())

	second := receive(t, got, 15*time.Second)
	t.Logf("renewal delivered %v after the first certificate's NotBefore (due at a third of 9 s)", time.Since(first.NotBefore).Round(time.Millisecond))
	if second.Serial == first.Serial {
		t.Fatalf("renewal kept serial %s", first.Serial)
	}
	checkChain(t, second, r.pebble.Roots(), "api.example.com", "www.example.com")
	// Due a third into the lifetime (Pebble's NotAfter is NotBefore + 8 s):
	// 2.67 s, and x509 times are whole seconds, so at least 2 s later.
	if second.NotBefore.Before(first.NotBefore.Add(2*time.Second)) || second.NotBefore.After(first.NotBefore.Add(8*time.Second)) {
		t.Errorf("renewed at %v, want about a third of the 9 s lifetime after %v", second.NotBefore, first.NotBefore)
	}

	// The challenge server breaks: renewals fail, are retried with backoff,
	// and the last good certificate stays current.
	r.broken.Store(true)
	waitFor(t, 15*time.Second, "two failed renewals", func() bool {
		return strings.Count(r.logs.String(), "certificate not obtained") >= 2
	})
	if cur := m.Current(); cur.Serial != second.Serial {
		t.Fatalf("current serial %s after failed renewals, want the last good %s", cur.Serial, second.Serial)
	}
	select {
	case c := <-got:
		t.Fatalf("a certificate (%s) was delivered while the challenge failed", c.Serial)
	default:
	}
	r.broken.Store(false)
	third := receive(t, got, 15*time.Second)
	if third.Serial == second.Serial {
		t.Fatal("no new certificate after the challenge server recovered")
	}
	checkChain(t, third, r.pebble.Roots(), "api.example.com", "www.example.com")
}

func TestManagerRestartUsesStoredCertificateAndAccount(t *testing.T) {
	t.Parallel()                             // waits on Pebble and renewal timers (see TestMain)
	r := newPebbleRig(t, acmetest.Options{}) // Pebble's default 90 days: no renewal during the test
	_, got, stop := r.start(t, 0, "api.example.com")
	first := receive(t, got, 30*time.Second)
	stop()
	validations := r.pebble.ValidationsOf("api.example.com")

	m2, got2, _ := r.start(t, 0, "api.example.com")
	again := receive(t, got2, 5*time.Second)
	if again.Serial != first.Serial || !bytes.Equal(again.KeyPEM, first.KeyPEM) {
		t.Fatalf("restart delivered serial %s, want the stored %s", again.Serial, first.Serial)
	}
	if m2.Current().Serial != first.Serial {
		t.Fatal("Current is not the stored certificate")
	}
	if n := r.pebble.ValidationsOf("api.example.com"); n != validations {
		t.Fatalf("restart ran a new order: %d validations, before %d", n, validations)
	}

	// A new domain set is a new certificate, under the same account.
	_, got3, _ := r.start(t, 0, "api.example.com", "new.example.com")
	other := receive(t, got3, 30*time.Second)
	checkChain(t, other, r.pebble.Roots(), "api.example.com", "new.example.com")
	accounts, _ := os.ReadDir(filepath.Join(r.storage.Dir(), "accounts"))
	if len(accounts) != 1 || strings.Contains(r.pebble.Log(), "There are now 2 accounts") {
		t.Fatalf("%d account files; Pebble log says a second account was registered: %v", len(accounts),
			strings.Contains(r.pebble.Log(), "There are now 2 accounts"))
	}
}

func TestManagerRegistersAgainWhenTheCAForgetsTheAccount(t *testing.T) {
	t.Parallel() // waits on Pebble and renewal timers (see TestMain)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := newPebbleRig(t, acmetest.Options{Addr: addr})
	_, got, stop := r.start(t, 0, "api.example.com")
	receive(t, got, 30*time.Second)
	stop()
	accountURL := func() string {
		b, _ := os.ReadFile(r.accountFile(t))
		return string(b)
	}
	before := accountURL()

	// A fresh CA at the same directory URL knows no account.
	r.pebble.Close()
	r.pebble = acmetest.Start(t, acmetest.Options{Addr: addr, HTTPPort: r.port})
	_, got2, _ := r.start(t, 0, "new.example.com")
	c := receive(t, got2, 30*time.Second)
	checkChain(t, c, r.pebble.Roots(), "new.example.com")
	if !strings.Contains(r.logs.String(), "registered again") {
		t.Errorf("no failure naming the re-registration in the log:\n%s", r.logs.String())
	}
	if after := accountURL(); after == before {
		t.Error("the stored account did not change")
	}
}

// accountFile returns the only account file.
func (r *pebbleRig) accountFile(t *testing.T) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(r.storage.Dir(), "accounts", "*.json"))
	if len(files) != 1 {
		t.Fatalf("%d account files, want 1", len(files))
	}
	return files[0]
}

func receive(t *testing.T, ch <-chan *Certificate, within time.Duration) *Certificate {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(within):
		t.Fatalf("no certificate within %v", within)
		return nil
	}
}

// checkChain verifies c's chain up to roots for every name in names.
func checkChain(t *testing.T, c *Certificate, roots *x509.CertPool, names ...string) {
	t.Helper()
	var chain []*x509.Certificate
	for rest := c.CertPEM; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		x, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, x)
	}
	if len(chain) < 2 {
		t.Fatalf("chain has %d certificates, want the leaf and its issuer", len(chain))
	}
	inter := x509.NewCertPool()
	for _, x := range chain[1:] {
		inter.AddCert(x)
	}
	for _, n := range names {
		if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: n, Roots: roots, Intermediates: inter}); err != nil {
			t.Fatalf("certificate does not verify for %s against Pebble's root: %v", n, err)
		}
	}
	if strings.Join(c.Domains, ",") != strings.Join(names, ",") {
		t.Fatalf("domains %v, want %v", c.Domains, names)
	}
}

// checkFilesPrivate fails unless every file under dir has mode 0600.
func checkFilesPrivate(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, info.Mode().Perm())
		}
		return nil
	})
	if err != nil || n < 2 {
		t.Fatalf("walk %s: %v (%d files; want the account and the certificate)", dir, err, n)
	}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
