package quotaclient

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// DefaultLinger is how long a Registry keeps a client nobody holds: well
// past the time Envoy takes to swap a rebuilt filter configuration in.
const DefaultLinger = time.Minute

// Registry shares one Client per quota server (Address) and Domain among
// the filter configurations of one Envoy process. Envoy rebuilds a
// listener's filter configurations on every policy push; the stream, the
// undelivered counts and the module's buckets must survive that, so a
// configuration takes its client from the registry (Get) and gives it back
// when Envoy destroys it (Release), instead of owning one.
//
// Why refcounting with a linger rather than living for the process: a
// client nobody uses (the policy dropped quota mode, or moved to another
// server address) must stop reporting, or a stale stream would keep
// settling buckets the new configuration no longer has. Why the linger:
// Envoy may destroy the old configuration before it builds the new one
// (a listener replaced rather than updated); a client whose count drops
// to zero is closed only after linger without a new Get, so the stream
// and the buckets outlive the swap.
//
// The module holds one Registry for the process (cgo forces process-wide
// state there: configurations are reached through cgo handles, and what
// they share must outlive each of them, as with the JWKS bodies in
// envoymodule/jwks.go). A Registry is safe for concurrent use.
type Registry struct {
	linger time.Duration
	// id is every client's id (Client.id): the process is one participant
	// of the account per bucket, also when the policy moves it to another
	// quota server address (a new client, the bucket table handed over).
	id string
	mu sync.Mutex
	m  map[registryKey]*registered
}

type registryKey struct{ address, domain string }

type registered struct {
	c     *Client
	refs  int
	timer *time.Timer // the linger, while refs is 0
}

// NewRegistry returns a registry whose unused clients close after linger
// (0: DefaultLinger).
func NewRegistry(linger time.Duration) *Registry {
	if linger <= 0 {
		linger = DefaultLinger
	}
	return &Registry{linger: linger, id: newClientID(), m: map[registryKey]*registered{}}
}

// Get returns the client of cfg's Address and Domain, starting it with
// store and log if there is none, and counts one more holder (each Get
// needs a Release). A running client keeps the store it was started with
// (store is then ignored: it must be the same process-wide bucket table)
// and takes cfg's ReportInterval from its next tick.
func (r *Registry) Get(cfg envoymod.Quota, store Store, log *slog.Logger) *Client {
	k := keyOf(cfg)
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.m[k]
	if e == nil {
		e = &registered{c: start(cfg, store, log, r.id)}
		r.m[k] = e
	}
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.refs++
	e.c.setInterval(cfg.ReportInterval)
	return e.c
}

// Release gives back one Get of c. The last release closes c after the
// registry's linger unless it is got again meanwhile. Releasing a client
// the registry does not hold does nothing.
func (r *Registry) Release(c *Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, e := range r.m {
		if e.c != c || e.refs == 0 {
			continue
		}
		if e.refs--; e.refs == 0 {
			e.timer = time.AfterFunc(r.linger, func() { r.expire(k, e) })
		}
		return
	}
}

// expire closes e's client if it is still unheld.
func (r *Registry) expire(k registryKey, e *registered) {
	r.mu.Lock()
	if r.m[k] != e || e.refs > 0 {
		r.mu.Unlock()
		return
	}
	delete(r.m, k)
	r.mu.Unlock()
	e.c.Close()
}

// Close closes every client, held or not.
func (r *Registry) Close() {
	r.mu.Lock()
	es := make([]*registered, 0, len(r.m))
	for k, e := range r.m {
		if e.timer != nil {
			e.timer.Stop()
		}
		es = append(es, e)
		delete(r.m, k)
	}
	r.mu.Unlock()
	for _, e := range es {
		e.c.Close()
	}
}

// keyOf is cfg's registry key: its addresses (blanks trimmed) and domain.
func keyOf(cfg envoymod.Quota) registryKey {
	return registryKey{address: strings.Join(addresses(cfg.Address), ","), domain: domain(cfg.Domain)}
}
