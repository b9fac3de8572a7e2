package apikey

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync"
	"time"
)

// Lookup outcomes besides success and ErrMalformed. Any other error from a
// Store is an infrastructure failure: callers deny the request (fail
// closed) and may retry later.
var (
	ErrNotFound = errors.New("apikey: unknown key")
	ErrExpired  = errors.New("apikey: key expired")
	ErrRevoked  = errors.New("apikey: key revoked")
)

// Record is what the gateway knows about one API key. The key itself is
// never part of it.
type Record struct {
	ID       string   `json:"id"`
	Consumer string   `json:"consumer"`
	Tenant   string   `json:"tenant,omitempty"`
	Tier     string   `json:"tier,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	// CreatedAt and ExpiresAt are UTC; a zero ExpiresAt never expires.
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	Revoked   bool      `json:"revoked"`
	// Format is FormatSigned or FormatOpaque (records stored before
	// signed keys existed read as opaque). Given to Create, "" means
	// signed when the store has a Signer, opaque otherwise.
	Format string `json:"format,omitempty"`
	// TokenExpiresAt is the exp claim of a signed key (zero: none). Envoy
	// enforces it, so ExpiresAt can never be later.
	TokenExpiresAt time.Time `json:"tokenExpiresAt,omitzero"`
	// Epoch is the key-store epoch the record was read in, set by a
	// store's Lookup ("" when it could not tell): the Envoy module learns
	// an opaque key's record only in that epoch (extauthz.Local.Learn), so
	// a record cached before the store lost its data is never learned
	// after. Never stored or encoded.
	Epoch string `json:"-"`
}

// Store keeps API-key records, indexed by an HMAC of the key: the
// plaintext key is returned once, by Create, and never stored or logged.
type Store interface {
	// Create issues a new key for rec. It assigns rec.ID, sets CreatedAt
	// to now when it is zero and clears Revoked; rec.Consumer is required.
	// rec.Format picks the key's form (see Record.Format; ErrFormat when
	// the store cannot issue it); a signed key's times are cut to whole
	// seconds, as in its token. It returns the key (shown this once) and
	// the stored record.
	Create(ctx context.Context, rec Record) (key string, stored Record, err error)
	// Lookup authenticates key. It returns an error wrapping ErrMalformed
	// (checked before any I/O), ErrNotFound, ErrExpired or ErrRevoked, or
	// another error when the store cannot answer. A signed key minted in
	// another key-store epoch than the current one is ErrNotFound, as if
	// its record were gone (see EpochLen). The record returned is the
	// caller's to keep.
	Lookup(ctx context.Context, key string) (*Record, error)
	// Revoke marks the key with the given id revoked (ErrNotFound when
	// there is none). Revoking twice is not an error.
	Revoke(ctx context.Context, id string) error
	// List returns the records of consumer's keys, revoked and expired
	// ones included, oldest first.
	List(ctx context.Context, consumer string) ([]Record, error)
	// Update changes the tier, roles or expiry of the key with the given
	// id without reissuing it, and returns the changed record
	// (ErrNotFound when there is none, ErrRevoked for a revoked key). A
	// change takes effect like a revocation: at once on this store, and
	// within a second on every replica of a shared store. A signed key's
	// expiry can only be shortened (ErrSignedExpiry): its token's exp
	// cannot change. Revoke and Update of a signed key record its new
	// state in the exceptions table (see Exceptions).
	Update(ctx context.Context, id string, ch Change) (Record, error)
}

// hasher computes HMAC-SHA256(pepper, key) in hex, the index under which
// a key's record is stored.
type hasher struct {
	pool sync.Pool // of *hmacState
}

type hmacState struct {
	mac hash.Hash // keyed with the pepper
	buf []byte    // scratch: the key, then the hex digest
}

func newHasher(pepper []byte) *hasher {
	p := slices.Clone(pepper)
	return &hasher{pool: sync.Pool{New: func() any {
		return &hmacState{mac: hmac.New(sha256.New, p), buf: make([]byte, 0, 2*sha256.Size)}
	}}}
}

func (h *hasher) sum(key string) string {
	st := h.pool.Get().(*hmacState)
	defer h.pool.Put(st)
	st.mac.Reset()
	st.buf = append(st.buf[:0], key...)
	_, _ = st.mac.Write(st.buf) // hash.Hash.Write never fails
	var sum [sha256.Size]byte
	st.buf = hex.AppendEncode(st.buf[:0], st.mac.Sum(sum[:0]))
	return string(st.buf)
}

// newRecord validates rec and returns the record Create stores under id.
func newRecord(rec Record, id string, now time.Time) (Record, error) {
	if strings.TrimSpace(rec.Consumer) == "" {
		return Record{}, errors.New("apikey: the record has no consumer")
	}
	rec.ID = id
	rec.Revoked = false
	rec.Roles = slices.Clone(rec.Roles)
	if len(rec.Roles) == 0 {
		rec.Roles = nil
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = now
	}
	rec.CreatedAt = rec.CreatedAt.UTC()
	if !rec.ExpiresAt.IsZero() {
		rec.ExpiresAt = rec.ExpiresAt.UTC()
		if !rec.ExpiresAt.After(rec.CreatedAt) {
			return Record{}, errors.New("apikey: the record expires before it is created")
		}
	}
	return rec, nil
}

// verdict turns the stored record of a key with the given id (nil when
// there is none) into Lookup's result, a copy the caller may keep.
func verdict(rec *Record, id string, now time.Time) (*Record, error) {
	switch {
	case rec == nil:
		return nil, fmt.Errorf("%w (id %s)", ErrNotFound, id)
	case rec.Revoked:
		return nil, fmt.Errorf("%w (id %s)", ErrRevoked, id)
	case !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt):
		return nil, fmt.Errorf("%w (id %s)", ErrExpired, id)
	}
	out := cloneRecord(*rec)
	return &out, nil
}

// cloneRecord returns a copy of rec that shares no memory with it.
func cloneRecord(rec Record) Record {
	rec.Roles = slices.Clone(rec.Roles)
	return rec
}

// sortRecords orders records oldest first, then by id.
func sortRecords(recs []Record) {
	slices.SortFunc(recs, func(a, b Record) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
