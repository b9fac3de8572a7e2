// Package certs holds certificate material for the control plane: it checks
// PEM (parse, key matches certificate, expiry), and its Store supplies the
// content of every SDS secret the translator builds.
//
// # Adding certificates at run time (the API for ACME and other sources)
//
// The control plane builds a gateway's SDS secrets (ir.Gateway.Secrets,
// named by ir.ListenerCertSecretName and friends) by asking the Store for
// each secret's PEM. A run-time source installs material for a secret name
// with Store.Set; from then on the Store answers with it instead of the
// policy's file or inline PEM, until Store.Delete. Set checks the PEM
// (parse, key matches certificate) before accepting it and then signals
// Changed; the control plane (controlplane.Controller.WatchCertificates)
// reacts with a secrets-only snapshot update: the secret keeps its name, only
// its content and the SDS version change, so Envoy swaps the certificate
// without a listener update, a restart or a dropped connection.
//
//	st := certs.NewStore(log)
//	name := ir.ListenerCertSecretName("public", "https", "api")
//	if err := st.Set(name, certPEM, keyPEM); err != nil { ... } // rejected PEM: nothing changes
//
// A policy certificate whose name is only ever fed at run time still needs a
// source in the policy (a file or inline PEM, e.g. a self-signed
// placeholder) until then: a secret without material fails translation.
//
// The Store also watches the files the policy names: Poll re-reads them and
// reports a change of content (by SHA-256), which WatchCertificates turns
// into the same secrets-only update. Material is never logged.
package certs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// Material is the PEM of one secret: a certificate chain and its private
// key, or (Key empty) a CA bundle.
type Material struct {
	Cert []byte
	Key  []byte
}

// Store supplies secrets' PEM (it implements translator.CertSource). It is
// safe for concurrent use.
type Store struct {
	log     *slog.Logger
	changed chan struct{}

	mu        sync.Mutex
	overrides map[string]Material          // by secret name (Set)
	lastGood  map[string]Material          // by secret name: last material that passed the checks
	fileHash  map[string][sha256.Size]byte // by path: content hash when last read
}

// NewStore returns an empty Store.
func NewStore(log *slog.Logger) *Store {
	if log == nil {
		log = slog.Default()
	}
	return &Store{
		log:       log,
		changed:   make(chan struct{}, 1),
		overrides: map[string]Material{},
		lastGood:  map[string]Material{},
		fileHash:  map[string][sha256.Size]byte{},
	}
}

// Changed is signalled (coalesced) after Set, Delete, or a Poll that saw a
// file change.
func (s *Store) Changed() <-chan struct{} { return s.changed }

func (s *Store) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Set installs certificate material for the secret name, overriding the
// policy's source. certPEM must parse, and keyPEM, when not empty, must be
// the private key of its leaf (an empty key installs a CA bundle). On error
// nothing changes.
func (s *Store) Set(name string, certPEM, keyPEM []byte) error {
	m := Material{Cert: clone(certPEM), Key: clone(keyPEM)}
	if err := check(m); err != nil {
		return fmt.Errorf("secret %q: %w", name, err)
	}
	s.mu.Lock()
	s.overrides[name] = m
	s.mu.Unlock()
	s.log.Info("certificate installed at run time", "secret", name)
	s.notify()
	return nil
}

// Delete removes the run-time material of name; the policy's source
// applies again.
func (s *Store) Delete(name string) {
	s.mu.Lock()
	_, ok := s.overrides[name]
	delete(s.overrides, name)
	s.mu.Unlock()
	if ok {
		s.notify()
	}
}

// PEM returns the material of sec: a run-time override, else the policy's
// file or inline PEM. Material that fails the checks (a file caught half
// written, a certificate replaced before its key) is not used: PEM returns
// the secret's last good material instead and logs why, or fails if there
// is none.
func (s *Store) PEM(sec ir.Secret) (cert, key []byte, err error) {
	s.mu.Lock()
	o, ok := s.overrides[sec.Name]
	s.mu.Unlock()
	if ok {
		return o.Cert, o.Key, nil
	}
	m, err := s.read(sec)
	if err == nil {
		err = check(m)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if good, ok := s.lastGood[sec.Name]; ok {
			s.log.Error("certificate material rejected; keeping the previous one", "secret", sec.Name, "err", err)
			return good.Cert, good.Key, nil
		}
		return nil, nil, err
	}
	if prev, ok := s.lastGood[sec.Name]; !ok || !bytes.Equal(prev.Cert, m.Cert) {
		s.warnExpiry(sec.Name, m.Cert)
	}
	s.lastGood[sec.Name] = m
	return m.Cert, m.Key, nil
}

// read loads sec's PEM from its sources, recording file hashes for Poll.
func (s *Store) read(sec ir.Secret) (Material, error) {
	var m Material
	var err error
	if m.Cert, err = s.source(sec.Cert); err != nil {
		return m, fmt.Errorf("certificate: %w", err)
	}
	if sec.Kind == ir.SecretCertificate {
		if m.Key, err = s.source(sec.Key); err != nil {
			return m, fmt.Errorf("private key: %w", err)
		}
		if len(m.Key) == 0 {
			return m, errors.New("private key: no material")
		}
	}
	return m, nil
}

func (s *Store) source(p ir.PEMSource) ([]byte, error) {
	switch {
	case p.Inline != "":
		return []byte(p.Inline), nil
	case p.File != "":
		b, err := os.ReadFile(p.File)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.fileHash[p.File] = sha256.Sum256(b)
		s.mu.Unlock()
		return b, nil
	}
	return nil, errors.New("no material: neither a file nor inline PEM, and none installed at run time")
}

// warnExpiry logs a warning when a certificate of certPEM expires within
// ExpiryWarning or has expired (it names the secret, never the material).
func (s *Store) warnExpiry(name string, certPEM []byte) {
	chain, err := ParseChain(certPEM)
	if err != nil {
		return
	}
	for _, c := range chain {
		if msg, _ := Expiry(c, time.Now()); msg != "" {
			s.log.Warn("certificate expiry", "secret", name, "detail", msg)
		}
	}
}

// check verifies m: a certificate and matching key, or a CA bundle.
func check(m Material) error {
	if len(m.Key) == 0 {
		_, err := ParseChain(m.Cert)
		return err
	}
	_, err := CheckPair(m.Cert, m.Key)
	return err
}

// Poll re-reads every file PEM has read and reports whether any content
// changed (or became unreadable) since the last PEM or Poll; it signals
// Changed if so.
func (s *Store) Poll() bool {
	s.mu.Lock()
	paths := make(map[string][sha256.Size]byte, len(s.fileHash))
	for p, h := range s.fileHash {
		paths[p] = h
	}
	s.mu.Unlock()
	changed := false
	for p, h := range paths {
		var now [sha256.Size]byte // an unreadable file hashes to zero: reported once
		if b, err := os.ReadFile(p); err == nil {
			now = sha256.Sum256(b)
		}
		if now != h {
			changed = true
			s.mu.Lock()
			s.fileHash[p] = now
			s.mu.Unlock()
		}
	}
	if changed {
		s.notify()
	}
	return changed
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
