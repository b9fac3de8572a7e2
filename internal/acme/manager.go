// Package acme obtains and renews TLS certificates from an ACME CA (Let's
// Encrypt, or any RFC 8555 server) with lego, answering HTTP-01 challenges
// through a Responder, storing the account and the certificates durably
// (Storage) and handing every new certificate to a callback.
package acme

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/lego"
)

// Defaults of Options.
const (
	DefaultRenewBefore = 30 * 24 * time.Hour
	DefaultRetryMin    = 30 * time.Second
	DefaultRetryMax    = time.Hour
	// maxSleep bounds a wait for renewal, so the loop re-reads the clock
	// (after a suspend, say) at least twice a day.
	maxSleep = 12 * time.Hour
)

// Options configure a Manager.
type Options struct {
	// Directory is the CA's ACME directory URL, e.g.
	// https://acme-v02.api.letsencrypt.org/directory.
	Directory string
	// Email is the account's contact (optional).
	Email string
	// Domains the certificate names (no wildcards: HTTP-01 cannot prove
	// them). The first is the subject's common name.
	Domains []string
	// Storage keeps the account and the certificates. Required.
	Storage *Storage
	// Responder serves the HTTP-01 tokens. Required; it must be reachable
	// from the CA at http://<domain>/.well-known/acme-challenge/.
	Responder *Responder
	// HTTPClient talks to the CA (nil: lego's default client).
	HTTPClient *http.Client
	// RenewBefore is the remaining lifetime below which the certificate is
	// renewed (default 30 days; see Certificate.RenewAt).
	RenewBefore time.Duration
	// RetryMin and RetryMax bound the exponential backoff between failed
	// attempts (defaults 30 s and 1 h).
	RetryMin, RetryMax time.Duration
	// OnCertificate is called with the stored certificate at start and with
	// every new one, from the Manager's goroutine. An error is logged and
	// the certificate is offered again on the next attempt's schedule.
	OnCertificate func(*Certificate) error
	// Poll is how often, with a shared Storage (NewSharedStorage), the
	// Manager re-reads the stored certificate to adopt one another replica
	// obtained, and retries when another replica holds the order lock
	// (default 1 s; unused with a local directory).
	Poll time.Duration
	// Wake, with a shared Storage, makes the Manager re-read the stored
	// certificate now (a change notification from the store; nil: none).
	Wake <-chan struct{}
	// Logger (nil: slog.Default()).
	Logger *slog.Logger
}

// Manager keeps one certificate for a set of domains valid: Run obtains it
// if storage has none (or one for other names), renews it when due, and
// retries failures with backoff while the last good certificate stays in
// use.
type Manager struct {
	opts    Options
	domains []string // sorted, lower case
	log     *slog.Logger

	// undelivered: cur has not reached OnCertificate yet (Run's goroutine
	// only).
	undelivered bool
	// readFailing: the last read of the shared certificate failed (Run's
	// goroutine only).
	readFailing bool

	mu  sync.Mutex
	cur *Certificate
}

// errBusy: another replica is ordering with the same account.
var errBusy = errors.New("another replica is ordering a certificate")

// orderLockTTL bounds how long a crashed replica's order lock blocks the
// others; the holder renews it while ordering.
const orderLockTTL = 30 * time.Second

// New checks opts and returns a Manager; Run starts it.
func New(opts Options) (*Manager, error) {
	if opts.Directory == "" || opts.Storage == nil || opts.Responder == nil {
		return nil, errors.New("acme: Directory, Storage and Responder are required")
	}
	if len(opts.Domains) == 0 {
		return nil, errors.New("acme: no domains")
	}
	domains := make([]string, 0, len(opts.Domains))
	for _, d := range opts.Domains {
		if d == "" || strings.Contains(d, "*") {
			return nil, fmt.Errorf("acme: domain %q: HTTP-01 needs a plain host name", d)
		}
		domains = append(domains, strings.ToLower(d))
	}
	slices.Sort(domains)
	opts.RenewBefore = orDefault(opts.RenewBefore, DefaultRenewBefore)
	opts.RetryMin = orDefault(opts.RetryMin, DefaultRetryMin)
	opts.RetryMax = max(orDefault(opts.RetryMax, DefaultRetryMax), opts.RetryMin)
	opts.Poll = orDefault(opts.Poll, time.Second)
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Manager{opts: opts, domains: domains, log: log.With("acme_domains", strings.Join(domains, ","))}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Current returns the certificate in use, or nil before the first one.
func (m *Manager) Current() *Certificate {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur
}

// Run keeps the certificate valid until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	m.undelivered = !m.loadStored()
	failures := 0
	for {
		cur := m.Current()
		if cur != nil && !m.undelivered && time.Now().Before(cur.RenewAt(m.opts.RenewBefore)) {
			failures = 0
			if !m.wait(ctx, min(time.Until(cur.RenewAt(m.opts.RenewBefore)), maxSleep)) {
				return
			}
			continue
		}
		var err error
		if cur != nil && m.undelivered {
			err = m.deliver(cur)
		} else {
			err = m.renew(ctx)
		}
		switch {
		case err == nil:
			m.undelivered = false
			continue
		case ctx.Err() != nil:
			return
		case errors.Is(err, errBusy):
			if !m.wait(ctx, m.opts.Poll) {
				return
			}
			continue
		}
		failures++
		wait := m.backoff(failures)
		m.log.Error("acme: certificate not obtained; keeping the previous one, retrying", "err", err, "retry_in", wait, "failures", failures)
		if !m.wait(ctx, wait) {
			return
		}
	}
}

// wait sleeps d or until ctx ends (reporting whether ctx is still alive);
// with a shared Storage it wakes every Poll, and on Wake, to adopt a newer
// certificate another replica stored, and returns early when it did.
func (m *Manager) wait(ctx context.Context, d time.Duration) bool {
	if m.opts.Storage.locker() == nil {
		return sleep(ctx, d)
	}
	deadline := time.Now().Add(d)
	for {
		t := time.NewTimer(max(min(time.Until(deadline), m.opts.Poll), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		case <-m.opts.Wake:
			t.Stop()
		}
		if m.adoptNewer() || !time.Now().Before(deadline) {
			return true
		}
	}
}

// adoptNewer makes the stored certificate current when it covers the
// Manager's domains and outlives the current one (another replica obtained
// it), and delivers it; it reports whether it did.
func (m *Manager) adoptNewer() bool {
	c, err := m.opts.Storage.loadCertificate(m.opts.Directory, m.domains)
	if err != nil {
		if !m.readFailing { // once per outage, not every Poll
			m.log.Warn("acme: shared certificate unreadable; retrying", "err", err)
		}
		m.readFailing = true
		return false
	}
	m.readFailing = false
	cur := m.Current()
	if c == nil || !c.covers(m.domains) || (cur != nil && !c.NotAfter.After(cur.NotAfter)) {
		return false
	}
	m.set(c)
	m.log.Info("acme: using the certificate another replica obtained", "not_after", c.NotAfter, "serial", c.Serial)
	m.undelivered = true
	if err := m.deliver(c); err != nil {
		m.log.Error("acme: certificate not installed", "err", err)
		return true
	}
	m.undelivered = false
	return true
}

// loadStored makes the stored certificate current (if it names the
// Manager's domains) and delivers it; it reports whether that worked.
func (m *Manager) loadStored() bool {
	c, err := m.opts.Storage.loadCertificate(m.opts.Directory, m.domains)
	if err != nil {
		m.log.Error("acme: stored certificate unreadable; obtaining a new one", "err", err)
		return false
	}
	if c == nil || !c.covers(m.domains) {
		return false
	}
	m.set(c)
	m.log.Info("acme: using the stored certificate", "not_after", c.NotAfter, "serial", c.Serial)
	return m.deliver(c) == nil
}

func (m *Manager) set(c *Certificate) {
	m.mu.Lock()
	m.cur = c
	m.mu.Unlock()
}

func (m *Manager) deliver(c *Certificate) error {
	if m.opts.OnCertificate == nil {
		return nil
	}
	if err := m.opts.OnCertificate(c); err != nil {
		return fmt.Errorf("install certificate: %w", err)
	}
	return nil
}

// renew obtains a certificate, stores it, makes it current and delivers it.
// With a shared Storage it first takes the account's order lock (errBusy
// when another replica holds it) and adopts a certificate another replica
// stored meanwhile instead of ordering one.
func (m *Manager) renew(ctx context.Context) error {
	unlock, held, err := m.opts.Storage.lockAccount(m.opts.Directory, m.opts.Email, orderLockTTL)
	if err != nil {
		return err
	}
	if !held {
		return errBusy
	}
	defer unlock()
	if m.opts.Storage.locker() != nil && m.adoptNewer() {
		if cur := m.Current(); time.Now().Before(cur.RenewAt(m.opts.RenewBefore)) {
			if m.undelivered {
				return errors.New("install the certificate another replica obtained: failed")
			}
			return nil
		}
	}
	c, err := m.obtain(ctx)
	if err != nil {
		return err
	}
	if err := m.opts.Storage.saveCertificate(m.opts.Directory, m.domains, c); err != nil {
		return err
	}
	m.set(c)
	m.log.Info("acme: certificate obtained", "not_after", c.NotAfter, "serial", c.Serial)
	return m.deliver(c)
}

// obtain runs one ACME order for the Manager's domains.
func (m *Manager) obtain(ctx context.Context) (*Certificate, error) {
	acct, err := m.opts.Storage.account(m.opts.Directory, m.opts.Email)
	if err != nil {
		return nil, err
	}
	cfg := lego.NewConfig(acct)
	cfg.CADirURL = m.opts.Directory
	cfg.UserAgent = "tollgate"
	if m.opts.HTTPClient != nil {
		cfg.HTTPClient = m.opts.HTTPClient
	}
	if err := acct.ensureRegistered(ctx, cfg); err != nil {
		return nil, err
	}
	client, err := lego.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("acme client: %w", err)
	}
	if err := client.Challenge.SetHTTP01Provider(m.opts.Responder); err != nil {
		return nil, fmt.Errorf("acme http-01: %w", err)
	}
	res, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{
		Domains: m.domains, Bundle: true, KeyType: certcrypto.EC256,
	})
	if err != nil {
		if acct.forget(err) {
			err = fmt.Errorf("%w (the account will be registered again)", err)
		}
		return nil, fmt.Errorf("obtain certificate: %w", err)
	}
	return ParseCertificate(res.Certificate, res.PrivateKey)
}

// backoff is the wait after the n-th consecutive failure.
func (m *Manager) backoff(n int) time.Duration {
	d := m.opts.RetryMin
	for i := 1; i < n && d < m.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, m.opts.RetryMax)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
