package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Storage keeps ACME accounts and certificates in a KV: a local directory
// (OpenStorage; every file written atomically — temp file, fsync, rename,
// fsync of the directory — with mode 0600, directories 0700) or a store
// shared by replicas (NewSharedStorage). Entries:
//
//	accounts/<id>.json          one per (directory URL, email): the URL, the
//	                            email, the account URL and the account's
//	                            private key (PEM)
//	certificates/<name>.pem     one per (directory URL, domains): the
//	                            certificate's private key, then its chain
//
// It is safe for concurrent use; Managers that share a directory URL and an
// email share one account.
type Storage struct {
	dir string // "" for a shared store
	kv  KV

	mu       sync.Mutex
	accounts map[string]*account // by id
}

// OpenStorage opens (creating it if needed) the storage in dir.
func OpenStorage(dir string) (*Storage, error) {
	for _, sub := range []string{"accounts", "certificates"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("open acme storage %s: %w", dir, err)
		}
	}
	return &Storage{dir: dir, kv: dirKV(dir), accounts: map[string]*account{}}, nil
}

// NewSharedStorage returns a Storage in kv, a store shared by several
// control-plane replicas. When kv is a Locker, one replica at a time orders
// certificates for an account, and the others adopt what it stores.
func NewSharedStorage(kv KV) *Storage {
	return &Storage{kv: kv, accounts: map[string]*account{}}
}

// locker returns the shared store's Locker, or nil.
func (s *Storage) locker() Locker {
	l, _ := s.kv.(Locker)
	return l
}

// lockAccount takes the shared store's lock of the account of (directory,
// email) for ttl (renewed until unlock); held is false when another
// replica orders with it right now. Without a shared store it always
// succeeds.
func (s *Storage) lockAccount(directory, email string, ttl time.Duration) (unlock func(), held bool, err error) {
	l := s.locker()
	if l == nil {
		return func() {}, true, nil
	}
	unlock, held, err = l.TryLock("locks/account-"+shortHash(directory+"\n"+email), ttl)
	if err != nil {
		return nil, false, fmt.Errorf("take the acme order lock: %w", err)
	}
	return unlock, held, nil
}

// Dir is the storage's directory ("" for a shared store).
func (s *Storage) Dir() string { return s.dir }

// accountFile is the JSON of an account.
type accountFile struct {
	Directory string `json:"directory"`
	Email     string `json:"email,omitempty"`
	Location  string `json:"location,omitempty"` // the account URL; empty until registered
	KeyPEM    string `json:"keyPem"`
}

// account returns the account of (directory, email), loading it or creating
// its key (unregistered) on first use.
func (s *Storage) account(directory, email string) (*account, error) {
	id := shortHash(directory + "\n" + email)
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accounts[id]; ok {
		return a, nil
	}
	name := "accounts/" + id + ".json"
	a, err := loadAccount(s.kv, name)
	if errors.Is(err, fs.ErrNotExist) {
		a, err = newAccount(s.kv, name, directory, email)
	}
	if err != nil {
		return nil, err
	}
	s.accounts[id] = a
	return a, nil
}

func loadAccount(kv KV, path string) (*account, error) {
	b, err := kv.Get(path)
	if err != nil {
		return nil, err
	}
	var f accountFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("read acme account %s: %w", path, err)
	}
	key, err := parseECKey([]byte(f.KeyPEM))
	if err != nil {
		return nil, fmt.Errorf("read acme account %s: %w", path, err)
	}
	return &account{kv: kv, path: path, file: f, key: key}, nil
}

func newAccount(kv KV, path, directory, email string) (*account, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate acme account key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode acme account key: %w", err)
	}
	a := &account{kv: kv, path: path, key: key, file: accountFile{
		Directory: directory, Email: email,
		KeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})),
	}}
	if err := a.save(); err != nil {
		return nil, err
	}
	return a, nil
}

func parseECKey(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM private key")
	}
	return x509.ParseECPrivateKey(blk.Bytes)
}

// certPath is the entry of the certificate for domains from directory.
func (s *Storage) certPath(directory string, domains []string) string {
	name := strings.ReplaceAll(safeName.ReplaceAllString(domains[0], "_"), "*", "_")
	return "certificates/" + name + "-" + shortHash(directory+"\n"+strings.Join(domains, ",")) + ".pem"
}

var safeName = regexp.MustCompile(`[^a-zA-Z0-9.-]`)

// loadCertificate returns the stored certificate for domains, or nil if
// there is none.
func (s *Storage) loadCertificate(directory string, domains []string) (*Certificate, error) {
	path := s.certPath(directory, domains)
	b, err := s.kv.Get(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	keyBlk, rest := pem.Decode(b)
	if keyBlk == nil {
		return nil, fmt.Errorf("read certificate %s: no private key", path)
	}
	c, err := ParseCertificate(rest, pem.EncodeToMemory(keyBlk))
	if err != nil {
		return nil, fmt.Errorf("read certificate %s: %w", path, err)
	}
	return c, nil
}

// saveCertificate stores c as the certificate for domains.
func (s *Storage) saveCertificate(directory string, domains []string, c *Certificate) error {
	b := slices.Concat(c.KeyPEM, c.CertPEM)
	if err := s.kv.Put(s.certPath(directory, domains), b, 0); err != nil {
		return fmt.Errorf("store certificate: %w", err)
	}
	return nil
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}

// secretIndex is acme/secrets.json: which certificate each SDS secret
// serves, so a restarted control plane can serve a stored certificate in
// its very first snapshot (PendingSource), before any Manager ran.
type secretIndex map[string]secretEntry

type secretEntry struct {
	Directory string   `json:"directory"`
	Domains   []string `json:"domains"`
}

// recordSecret notes that secret serves the certificate for domains from
// directory.
func (s *Storage) recordSecret(secret, directory string, domains []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		idx = secretIndex{} // unreadable: rebuilt as Managers start
	}
	if e, ok := idx[secret]; ok && e.Directory == directory && slices.Equal(e.Domains, domains) {
		return nil
	}
	idx[secret] = secretEntry{Directory: directory, Domains: domains}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	if err := s.kv.Put("secrets.json", b, 0); err != nil {
		return fmt.Errorf("store acme secret index: %w", err)
	}
	return nil
}

func (s *Storage) readIndex() (secretIndex, error) {
	b, err := s.kv.Get("secrets.json")
	if errors.Is(err, fs.ErrNotExist) {
		return secretIndex{}, nil
	}
	if err != nil {
		return nil, err
	}
	idx := secretIndex{}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, err
	}
	return idx, nil
}

// SecretCertificate returns the stored certificate the secret served last,
// or nil if there is none.
func (s *Storage) SecretCertificate(secret string) (*Certificate, error) {
	s.mu.Lock()
	idx, err := s.readIndex()
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("read acme secret index: %w", err)
	}
	e, ok := idx[secret]
	if !ok || len(e.Domains) == 0 {
		return nil, nil
	}
	return s.loadCertificate(e.Directory, e.Domains)
}
