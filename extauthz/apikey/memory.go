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
	hash *hasher
	now  func() time.Time
	rand io.Reader

	mu         sync.RWMutex
	byHash     map[string]*Record
	hashByID   map[string]string
	byConsumer map[string][]string // ids in creation order
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store whose index is keyed with pepper.
func NewMemoryStore(pepper []byte) *MemoryStore {
	return &MemoryStore{
		hash:       newHasher(pepper),
		now:        time.Now,
		rand:       rand.Reader,
		byHash:     make(map[string]*Record),
		hashByID:   make(map[string]string),
		byConsumer: make(map[string][]string),
	}
}

// Create implements Store.
func (s *MemoryStore) Create(_ context.Context, rec Record) (string, Record, error) {
	base, err := newRecord(rec, "", s.now())
	if err != nil {
		return "", Record{}, err
	}
	for range maxIDAttempts {
		key, id, err := Generate(s.rand)
		if err != nil {
			return "", Record{}, err
		}
		stored := cloneRecord(base)
		stored.ID = id
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
	id, err := Parse(key)
	if err != nil {
		return nil, err
	}
	h := s.hash.sum(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return verdict(s.byHash[h], id, s.now())
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
	return nil
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
