package apikey

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// maxIDAttempts bounds the retries when a new key's id is already taken
// (8 base62 characters: collisions are rare but possible).
const maxIDAttempts = 5

// errIDSpace reports that no free key id was found.
var errIDSpace = errors.New("apikey: no free key id after several attempts")

// MemoryStore is a Store in process memory, for a single process (`make
// dev`): keys are lost on restart and not shared. Revocation is
// immediate. It is safe for concurrent use.
type MemoryStore struct {
	hash   *hasher
	signer *Signer // nil: opaque keys only
	now    func() time.Time
	rand   io.Reader
	epoch  string // never changes: the store never loses its records

	mu         sync.RWMutex
	byHash     map[string]*Record
	hashByID   map[string]string
	byConsumer map[string][]string // ids in creation order
	exc        map[string]memException
	excVersion int64
}

// memException is an exceptions-table entry and its prune time (unix s, 0
// = never).
type memException struct {
	entry   exceptionEntry
	pruneAt int64
}

var (
	_ Store           = (*MemoryStore)(nil)
	_ ExceptionSource = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty store whose index is keyed with pepper.
// It issues opaque keys only.
func NewMemoryStore(pepper []byte) *MemoryStore { return NewMemoryStoreWithSigner(pepper, nil) }

// NewMemoryStoreWithSigner returns an empty store whose index is keyed
// with pepper and which issues signed keys with signer by default (opaque
// keys only when signer is nil).
func NewMemoryStoreWithSigner(pepper []byte, signer *Signer) *MemoryStore {
	ep, _ := newEpoch(rand.Reader) // crypto/rand.Reader never fails
	return &MemoryStore{
		epoch:      ep,
		hash:       newHasher(pepper),
		signer:     signer,
		now:        time.Now,
		rand:       rand.Reader,
		byHash:     make(map[string]*Record),
		hashByID:   make(map[string]string),
		byConsumer: make(map[string][]string),
		exc:        make(map[string]memException),
	}
}

// Signer returns the store's signer, nil when it issues opaque keys only.
func (s *MemoryStore) Signer() *Signer { return s.signer }

// Create implements Store.
func (s *MemoryStore) Create(_ context.Context, rec Record) (string, Record, error) {
	base, err := newRecord(rec, "", s.now())
	if err != nil {
		return "", Record{}, err
	}
	if base, err = withFormat(base, s.signer); err != nil {
		return "", Record{}, err
	}
	for range maxIDAttempts {
		key, stored, err := mint(s.rand, s.signer, base, s.epoch)
		if err != nil {
			return "", Record{}, err
		}
		if s.insert(s.hash.sum(key), &stored) {
			return key, stored, nil
		}
	}
	return "", Record{}, errIDSpace
}

// insert stores rec under h unless its id is taken.
func (s *MemoryStore) insert(h string, rec *Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.hashByID[rec.ID]; taken {
		return false
	}
	s.byHash[h] = rec
	s.hashByID[rec.ID] = h
	s.byConsumer[rec.Consumer] = append(s.byConsumer[rec.Consumer], rec.ID)
	return true
}

// Lookup implements Store.
func (s *MemoryStore) Lookup(_ context.Context, key string) (*Record, error) {
	id, ep, err := parse(key)
	if err != nil {
		return nil, err
	}
	if IsSigned(key) {
		if err := checkEpoch(id, ep, s.epoch); err != nil {
			return nil, err
		}
	}
	h := s.hash.sum(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec, err := verdict(s.byHash[h], id, s.now())
	if err == nil {
		rec.Epoch = s.epoch
	}
	return rec, err
}

// Revoke implements Store.
func (s *MemoryStore) Revoke(_ context.Context, id string) error {
	if !validID(id) {
		return fmt.Errorf("%w (id %q)", ErrNotFound, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hashByID[id]
	if !ok {
		return fmt.Errorf("%w (id %s)", ErrNotFound, id)
	}
	// Replace rather than mutate: readers may hold the old pointer.
	rec := *s.byHash[h]
	rec.Revoked = true
	s.byHash[h] = &rec
	s.putException(rec)
	return nil
}

// putException records the state of a key in the exceptions table; a
// revoked entry is final. s.mu is held.
func (s *MemoryStore) putException(rec Record) {
	if cur, ok := s.exc[rec.ID]; ok && cur.entry.Revoked {
		return
	}
	s.exc[rec.ID] = memException{entry: exceptionOf(rec, 0), pruneAt: pruneAt(rec, s.now())}
	s.excVersion++
	s.pruneLocked()
}

// pruneLocked drops the entries whose token expired long enough ago; s.mu
// is held.
func (s *MemoryStore) pruneLocked() {
	now, pruned := s.now().Unix(), false
	for id, e := range s.exc {
		if e.pruneAt != 0 && e.pruneAt <= now {
			delete(s.exc, id)
			pruned = true
		}
	}
	if pruned {
		s.excVersion++
	}
}

// Exceptions implements ExceptionSource.
func (s *MemoryStore) Exceptions(_ context.Context) (Exceptions, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	if len(s.exc) > MaxExceptions {
		return Exceptions{}, fmt.Errorf("%w: %d entries, bound %d", ErrTooManyExceptions, len(s.exc), MaxExceptions)
	}
	out := Exceptions{Version: s.excVersion, Epoch: s.epoch, Items: make([]Exception, 0, len(s.exc))}
	for id, e := range s.exc {
		out.Items = append(out.Items, e.entry.exception(id))
	}
	sortExceptions(out.Items)
	return out, nil
}

// Version implements ExceptionSource.
func (s *MemoryStore) Version(_ context.Context) (Stamp, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Stamp{Version: s.excVersion, Epoch: s.epoch}, nil
}

// List implements Store.
func (s *MemoryStore) List(_ context.Context, consumer string) ([]Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := s.byConsumer[consumer]
	out := make([]Record, 0, len(ids))
	for _, id := range ids {
		out = append(out, cloneRecord(*s.byHash[s.hashByID[id]]))
	}
	sortRecords(out)
	return out, nil
}
