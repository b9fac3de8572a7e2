package acme

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// Installer receives issued certificates as the content of SDS secrets
// (*certs.Store).
type Installer interface {
	Set(name string, certPEM, keyPEM []byte) error
}

// SupervisorOptions configure a Supervisor.
type SupervisorOptions struct {
	Storage   *Storage
	Responder *Responder
	Installer Installer
	// HTTPClient talks to the CAs (nil: lego's default).
	HTTPClient *http.Client
	// RetryMin and RetryMax bound the Managers' backoff (0: defaults).
	RetryMin, RetryMax time.Duration
	// Poll is the Managers' Options.Poll (shared storage only).
	Poll   time.Duration
	Logger *slog.Logger
}

// Supervisor runs one Manager per ACME listener of the served policy and
// installs each certificate it obtains as the listener's SDS secret. It is
// a controlplane.TableSwapper: Swap follows a push, and its restore puts
// the previous Managers back when the push fails.
type Supervisor struct {
	ctx  context.Context
	opts SupervisorOptions

	mu      sync.Mutex
	running map[string]*managed // by secret name
}

type managed struct {
	cfg    ir.ACME
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{} // Options.Wake
}

// NewSupervisor returns a Supervisor whose Managers run until ctx ends or
// Close. When the storage's store is a Watcher, its change notifications
// wake every Manager.
func NewSupervisor(ctx context.Context, opts SupervisorOptions) *Supervisor {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Supervisor{ctx: ctx, opts: opts, running: map[string]*managed{}}
	if w, ok := opts.Storage.kv.(Watcher); ok {
		go s.relay(w.Changes(ctx))
	}
	return s
}

// relay wakes every running Manager on each change notification.
func (s *Supervisor) relay(changes <-chan struct{}) {
	for range changes {
		s.mu.Lock()
		for _, m := range s.running {
			select {
			case m.wake <- struct{}{}:
			default:
			}
		}
		s.mu.Unlock()
	}
}

// Swap starts a Manager for every ACME listener of cfg that has none (or
// whose settings changed) and stops those of listeners cfg no longer has.
func (s *Supervisor) Swap(cfg *ir.Config) (restore func(), err error) {
	want := map[string]ir.ACME{}
	for i := range cfg.Gateways {
		for _, a := range cfg.Gateways[i].ACMEListeners() {
			want[a.Secret] = a
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := map[string]ir.ACME{}
	for name, m := range s.running {
		old[name] = m.cfg
	}
	if err := s.apply(want); err != nil {
		_ = s.apply(old)
		return nil, err
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = s.apply(old)
	}, nil
}

// apply makes the running Managers those of want (s.mu held).
func (s *Supervisor) apply(want map[string]ir.ACME) error {
	for name, m := range s.running {
		if w, ok := want[name]; !ok || !reflect.DeepEqual(w, m.cfg) {
			m.stop()
			delete(s.running, name)
		}
	}
	for name, a := range want {
		if _, ok := s.running[name]; ok {
			continue
		}
		m, err := s.start(a)
		if err != nil {
			return fmt.Errorf("acme for secret %s: %w", name, err)
		}
		s.running[name] = m
	}
	return nil
}

// start runs a Manager for a.
func (s *Supervisor) start(a ir.ACME) (*managed, error) {
	wake := make(chan struct{}, 1)
	mgr, err := New(Options{
		Wake:      wake,
		Directory: a.Directory, Email: a.Email, Domains: a.Domains, RenewBefore: a.RenewBefore,
		Storage: s.opts.Storage, Responder: s.opts.Responder, HTTPClient: s.opts.HTTPClient,
		RetryMin: s.opts.RetryMin, RetryMax: s.opts.RetryMax, Poll: s.opts.Poll,
		Logger: s.opts.Logger.With("secret", a.Secret),
		OnCertificate: func(c *Certificate) error {
			if err := s.opts.Storage.recordSecret(a.Secret, a.Directory, c.Domains); err != nil {
				return err
			}
			return s.opts.Installer.Set(a.Secret, c.CertPEM, c.KeyPEM)
		},
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	m := &managed{cfg: a, cancel: cancel, done: make(chan struct{}), wake: wake}
	go func() { defer close(m.done); mgr.Run(ctx) }()
	return m, nil
}

func (m *managed) stop() {
	m.cancel()
	<-m.done
}

// Close stops every Manager.
func (s *Supervisor) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, m := range s.running {
		m.stop()
		delete(s.running, name)
	}
}

// Running returns the secret names of the running Managers.
func (s *Supervisor) Running() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.running))
	for name := range s.running {
		out = append(out, name)
	}
	return out
}
