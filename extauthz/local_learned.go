package extauthz

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// Learned opaque API keys.
//
// An opaque key cannot be verified offline: its record lives in the key
// store. When the ext_authz filter after the module admits one, the
// service's answer carries the record (envoymod.MetadataKeyRecord), and
// the module hands it to Learn. The Local then decides the key's later
// requests itself, as it decides a signed key's claims: the record stands
// for the claims, the exceptions table (which opaque keys' revocations and
// updates enter too: apikey.Exceptions) for its changes. A record is kept
// for at most apikey.LearnedRecordTTL (and the configuration's
// CacheMaxTTL); past it, the key goes to ext_authz again, which reads the
// store. The table is shared by a lineage's Locals (Derive) and bounded
// (the configuration's CacheSize, oldest learned first out).

// MaxLearnAge bounds how long after the module passed a request on it may
// learn from the ext_authz answer to it (the answer comes with the
// response's headers, which a slow upstream or a slow client's body may
// delay at will): an older answer could hold a record whose change has
// since left the exceptions table (apikey.OpaqueExceptionLife).
const MaxLearnAge = 10 * time.Second

// errNotLearning is Learn's answer when the Local cannot use a record.
var errNotLearning = errors.New("extauthz: local decisions: not learning API keys (no signed keys, or their table is not fresh)")

// learnedKeys is the learned records of a lineage, by the SHA-256 of
// their key (the key itself is not kept). Safe for concurrent use.
type learnedKeys struct {
	mu    sync.Mutex
	m     map[[sha256.Size]byte]learnedKey
	order [][sha256.Size]byte // insertion ring: order[next] goes first when full
	next  int
}

// learnedKey is one learned record: rec as the store gave it (in the key
// store's epoch rec.Epoch), usable until until.
type learnedKey struct {
	rec   apikey.Record
	until time.Time
}

// newLearnedKeys returns an empty table of at most size records.
func newLearnedKeys(size int) *learnedKeys {
	return &learnedKeys{m: make(map[[sha256.Size]byte]learnedKey), order: make([][sha256.Size]byte, max(size, 1))}
}

// put stores lk under h, evicting the oldest insertion when full.
func (t *learnedKeys) put(h [sha256.Size]byte, lk learnedKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[h]; ok {
		t.m[h] = lk // a newer answer for the same key: its slot in the ring stays
		return
	}
	if old := t.order[t.next]; len(t.m) >= len(t.order) {
		delete(t.m, old)
	}
	t.order[t.next] = h
	t.next = (t.next + 1) % len(t.order)
	t.m[h] = lk
}

// get returns the record learned for h while it is usable at now.
func (t *learnedKeys) get(h [sha256.Size]byte, now time.Time) (learnedKey, bool) {
	t.mu.Lock()
	lk, ok := t.m[h]
	t.mu.Unlock()
	return lk, ok && now.Before(lk.until)
}

// Learn keeps record (envoymod.KeyRecord JSON: the ext_authz service's
// answer admitting key, an opaque API key, to a request passed on age
// ago) so that the key's later requests are decided here (see Decide),
// until LearnedRecordTTL (at most) after the request was passed on. It
// refuses, and keeps nothing, when the Local has no signed keys or a
// table that is not fresh, when age is negative or above MaxLearnAge,
// when key is not an opaque key, or when record is malformed, longer than
// envoymod.MaxKeyRecordLen, not the record of key's own id, or read in
// another key-store epoch than the Local's.
func (l *Local) Learn(key, record string, age time.Duration) error {
	if l.offline == nil || !l.offline.Fresh() || l.learned == nil {
		return errNotLearning
	}
	if age < 0 || age > MaxLearnAge {
		return fmt.Errorf("extauthz: learn: an answer %v old (the bound is %v)", age, MaxLearnAge)
	}
	id, err := apikey.Parse(key)
	if err != nil || apikey.IsSigned(key) {
		return fmt.Errorf("extauthz: learn: not an opaque API key")
	}
	rec, err := parseKeyRecord(record)
	if err != nil {
		return fmt.Errorf("extauthz: learn key %s: %w", id, err)
	}
	if rec.ID != id {
		return fmt.Errorf("extauthz: learn key %s: the record is key %s's", id, rec.ID)
	}
	if rec.Epoch == "" || rec.Epoch != l.offline.Epoch() {
		return fmt.Errorf("extauthz: learn key %s: a record read in another key-store epoch", id)
	}
	ttl := apikey.LearnedRecordTTL
	if d := l.base.CacheMaxTTL; d > 0 && d < ttl {
		ttl = d
	}
	until := l.clock().Add(ttl - age)
	l.learned.put(sha256.Sum256([]byte(key)), learnedKey{rec: rec, until: until})
	return nil
}

// parseKeyRecord decodes a learned record, strictly.
func parseKeyRecord(record string) (apikey.Record, error) {
	if len(record) > envoymod.MaxKeyRecordLen {
		return apikey.Record{}, fmt.Errorf("a record longer than %d bytes", envoymod.MaxKeyRecordLen)
	}
	var kr envoymod.KeyRecord
	dec := json.NewDecoder(strings.NewReader(record))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kr); err != nil {
		return apikey.Record{}, fmt.Errorf("malformed record: %w", err)
	}
	if dec.More() {
		return apikey.Record{}, fmt.Errorf("malformed record: data after it")
	}
	if kr.Consumer == "" || len(kr.Consumer) > contract.MaxConsumerLen {
		return apikey.Record{}, fmt.Errorf("a record without a consumer, or one longer than %d bytes", contract.MaxConsumerLen)
	}
	return apikey.Record{ID: kr.ID, Consumer: kr.Consumer, Tenant: kr.Tenant, Tier: kr.Tier, Roles: kr.Roles,
		ExpiresAt: kr.ExpiresAt.UTC(), Format: apikey.FormatOpaque, Epoch: kr.Epoch}, nil
}

// learnedFor returns the record learned for the opaque API key key, while
// it is usable by this Local: learned in its key-store epoch, its table
// fresh.
func (l *Local) learnedFor(key string) (learnedKey, bool) {
	if l.offline == nil || l.learned == nil || !l.offline.Fresh() {
		return learnedKey{}, false
	}
	lk, ok := l.learned.get(sha256.Sum256([]byte(key)), l.clock())
	return lk, ok && lk.rec.Epoch == l.offline.Epoch()
}

// clock is the Local's clock.
func (l *Local) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

// learnedCtxKey carries one decision's learned record (learnedHit) from
// Decide to localKeys.Lookup through Service.check.
type learnedCtxKey struct{}

// learnedHit is the learned record of the key a decision looks up.
type learnedHit struct {
	key string
	lk  learnedKey
}

// localKeys is a Local's KeyLookup: signed keys offline, an opaque key
// from the record Decide found for it (none: not found, which Decide
// never lets happen: it passes such a key on).
type localKeys struct{ offline *apikey.Offline }

// Lookup implements KeyLookup.
func (k localKeys) Lookup(ctx context.Context, key string) (*apikey.Record, error) {
	if hit, ok := ctx.Value(learnedCtxKey{}).(learnedHit); ok && hit.key == key {
		return k.offline.Learned(hit.lk.rec)
	}
	return k.offline.Lookup(ctx, key)
}
