package apikey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// Change changes a key's record without reissuing the key: nil fields keep
// their value.
type Change struct {
	Tier  *string
	Roles *[]string
	// ExpiresAt sets the expiry; a zero time means the key never expires.
	ExpiresAt *time.Time
}

// apply returns rec changed by ch, or an error when the result is invalid.
func (ch Change) apply(rec Record) (Record, error) {
	rec = cloneRecord(rec)
	if ch.Tier != nil {
		rec.Tier = *ch.Tier
	}
	if ch.Roles != nil {
		rec.Roles = slices.Clone(*ch.Roles)
		if len(rec.Roles) == 0 {
			rec.Roles = nil
		}
	}
	if ch.ExpiresAt != nil {
		rec.ExpiresAt = ch.ExpiresAt.UTC()
		if !rec.ExpiresAt.IsZero() && !rec.ExpiresAt.After(rec.CreatedAt) {
			return Record{}, errors.New("apikey: the record would expire before it was created")
		}
	}
	return rec, nil
}

// fields returns the HSET arguments of the fields ch changes, as rec (the
// changed record) holds them.
func (ch Change) fields(rec Record) ([]any, error) {
	var out []any
	if ch.Tier != nil {
		out = append(out, fieldTier, rec.Tier)
	}
	if ch.Roles != nil {
		roles := rec.Roles
		if roles == nil {
			roles = []string{}
		}
		b, err := json.Marshal(roles)
		if err != nil {
			return nil, fmt.Errorf("encode roles: %w", err)
		}
		out = append(out, fieldRoles, string(b))
	}
	if ch.ExpiresAt != nil {
		expires := ""
		if !rec.ExpiresAt.IsZero() {
			expires = rec.ExpiresAt.Format(time.RFC3339Nano)
		}
		out = append(out, fieldExpiresAt, expires)
	}
	return out, nil
}

// Update implements Store.
func (s *MemoryStore) Update(_ context.Context, id string, ch Change) (Record, error) {
	if !validID(id) {
		return Record{}, fmt.Errorf("%w (id %q)", ErrNotFound, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hashByID[id]
	if !ok {
		return Record{}, fmt.Errorf("%w (id %s)", ErrNotFound, id)
	}
	cur := s.byHash[h]
	if cur.Revoked {
		return Record{}, fmt.Errorf("%w (id %s): a revoked key cannot be changed", ErrRevoked, id)
	}
	ch, err := signedChange(*cur, ch)
	if err != nil {
		return Record{}, err
	}
	rec, err := ch.apply(*cur)
	if err != nil {
		return Record{}, err
	}
	// Replace rather than mutate: readers may hold the old pointer.
	s.byHash[h] = &rec
	s.putException(rec)
	return cloneRecord(rec), nil
}

// updateScript writes the changed fields (ARGV, name/value pairs) of a
// record that exists and is not revoked, bumps its revision and returns
// {revision, the whole record (HGETALL)}; {0} for no record, {-1} for a
// revoked one. It touches one key, so it is valid on Redis Cluster.
var updateScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
if redis.call('HGET', KEYS[1], 'revoked') == '1' then return {-1} end
redis.call('HSET', KEYS[1], unpack(ARGV))
local rev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
return {rev, redis.call('HGETALL', KEYS[1])}`)

// Update implements Store: it writes the changed fields, drops the key from
// this store's cache and announces the change on RevokedChannel, so every
// replica drops its cached record (within MaxStaleness even when the
// message is lost, as for a revocation). If the announcement fails, the
// change is stored but other replicas may serve the old record for up to
// CacheTTL: Update returns the error so the caller retries (Update is
// idempotent). A signed key's new state then goes to the exceptions
// table, tagged with the record's revision so that concurrent updates
// leave the state of the last one there; should that write fail, Update
// returns the error and its retry writes it.
func (s *RedisStore) Update(ctx context.Context, id string, ch Change) (Record, error) {
	h, rec, err := s.current(ctx, id)
	if err != nil {
		return Record{}, err
	}
	if ch, err = signedChange(*rec, ch); err != nil {
		return Record{}, err
	}
	next, err := ch.apply(*rec)
	if err != nil {
		return Record{}, err
	}
	fields, err := ch.fields(next)
	if err != nil || len(fields) == 0 {
		return next, err
	}
	rev, stored, err := s.updateRecord(ctx, h, id, fields)
	if err != nil {
		return Record{}, err
	}
	if err := s.putException(ctx, stored, rev); err != nil {
		return Record{}, fmt.Errorf("%w (the record was updated: retry the update)", err)
	}
	return next, s.announce(ctx, id, h, "updated")
}

// updateRecord runs updateScript and returns the record's new revision and
// content.
func (s *RedisStore) updateRecord(ctx context.Context, h, id string, fields []any) (int64, Record, error) {
	res, err := updateScript.Run(ctx, s.client, []string{recordKey(h)}, fields...).Slice()
	if err != nil {
		return 0, Record{}, fmt.Errorf("apikey: update key %s: %w", id, err)
	}
	if len(res) == 0 {
		return 0, Record{}, fmt.Errorf("apikey: update key %s: empty reply", id)
	}
	n, _ := res[0].(int64)
	switch {
	case n == 0:
		return 0, Record{}, fmt.Errorf("%w (id %s)", ErrNotFound, id)
	case n < 0:
		return 0, Record{}, fmt.Errorf("%w (id %s): a revoked key cannot be changed", ErrRevoked, id)
	case len(res) != 2:
		return 0, Record{}, fmt.Errorf("apikey: update key %s: unexpected reply", id)
	}
	raw, err := pairs(res[1])
	if err != nil {
		return 0, Record{}, fmt.Errorf("apikey: update key %s: %w", id, err)
	}
	rec, err := decodeRecord(raw)
	switch {
	case err != nil:
		return 0, Record{}, fmt.Errorf("apikey: update key %s: decode the updated record: %w", id, err)
	case rec == nil:
		return 0, Record{}, fmt.Errorf("%w (id %s)", ErrNotFound, id)
	}
	return n, *rec, nil
}

// current returns the HMAC and the stored record of the key with id.
func (s *RedisStore) current(ctx context.Context, id string) (string, *Record, error) {
	if !validID(id) {
		return "", nil, fmt.Errorf("%w (id %q)", ErrNotFound, id)
	}
	h, err := s.client.Get(ctx, idKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil, fmt.Errorf("%w (id %s)", ErrNotFound, id)
	}
	if err != nil {
		return "", nil, fmt.Errorf("apikey: key %s: %w", id, err)
	}
	rec, err := s.fetch(ctx, h, id)
	switch {
	case err != nil:
		return "", nil, err
	case rec == nil:
		return "", nil, fmt.Errorf("%w (id %s)", ErrNotFound, id)
	case rec.Revoked:
		return "", nil, fmt.Errorf("%w (id %s): a revoked key cannot be changed", ErrRevoked, id)
	}
	return h, rec, nil
}

// announce drops the key stored under h from this store's cache and tells
// every replica to drop it from theirs.
func (s *RedisStore) announce(ctx context.Context, id, h, what string) error {
	if s.cache != nil {
		s.cache.invalidate(h)
	}
	if err := s.client.Publish(ctx, RevokedChannel, h).Err(); err != nil {
		return fmt.Errorf("apikey: key %s %s, but announcing it failed: %w", id, what, err)
	}
	return nil
}
