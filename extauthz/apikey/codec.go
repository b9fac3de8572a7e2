package apikey

import (
	"encoding/json"
	"fmt"
	"time"
)

// Redis key names; see the package documentation for the layout.
const (
	recordKeyPrefix   = "tollgate:apikey:"
	idKeyPrefix       = "tollgate:apikey:id:"
	consumerKeyPrefix = "tollgate:consumer:"
	consumerKeySuffix = ":keys"
	// RevokedChannel is the pub/sub channel on which a revocation or an
	// update is announced; the message is the key's HMAC (hex), and every
	// replica drops that key from its cache.
	RevokedChannel = "tollgate:apikey:revoked"
)

// Fields of the record hash.
const (
	fieldID        = "id"
	fieldConsumer  = "consumer"
	fieldTenant    = "tenant"
	fieldTier      = "tier"
	fieldRoles     = "roles"            // JSON array of strings
	fieldCreatedAt = "created_at"       // RFC 3339 UTC with nanoseconds
	fieldExpiresAt = "expires_at"       // RFC 3339, "" for never
	fieldRevoked   = "revoked"          // "1" or "0"
	fieldFormat    = "format"           // "signed" or "opaque"; absent in old records (opaque)
	fieldTokenExp  = "token_expires_at" // RFC 3339, "" for none
	fieldRev       = "rev"              // revision, bumped by every Update (HINCRBY)
)

// A key's HMAC is 64 hex digits, so "tollgate:apikey:<hmac>" can never be
// confused with "tollgate:apikey:id:<id>".
func recordKey(h string) string          { return recordKeyPrefix + h }
func idKey(id string) string             { return idKeyPrefix + id }
func consumerKey(consumer string) string { return consumerKeyPrefix + consumer + consumerKeySuffix }

// encodeRecord returns the fields of rec's hash, as HSET arguments. Only
// a signed key's record has the format and token_expires_at fields.
func encodeRecord(rec Record) ([]any, error) {
	roles := rec.Roles
	if roles == nil {
		roles = []string{}
	}
	rolesJSON, err := json.Marshal(roles)
	if err != nil {
		return nil, fmt.Errorf("encode roles: %w", err)
	}
	expires := formatTime(rec.ExpiresAt)
	revoked := "0"
	if rec.Revoked {
		revoked = "1"
	}
	fields := []any{
		fieldID, rec.ID,
		fieldConsumer, rec.Consumer,
		fieldTenant, rec.Tenant,
		fieldTier, rec.Tier,
		fieldRoles, string(rolesJSON),
		fieldCreatedAt, rec.CreatedAt.UTC().Format(time.RFC3339Nano),
		fieldExpiresAt, expires,
		fieldRevoked, revoked,
	}
	if rec.Format == FormatSigned { // an opaque key's record stays as it always was
		fields = append(fields, fieldFormat, rec.Format, fieldTokenExp, formatTime(rec.TokenExpiresAt))
	}
	return fields, nil
}

// decodeRecord parses a record hash (HGETALL's reply); an empty hash is no
// record (nil, nil).
func decodeRecord(f map[string]string) (*Record, error) {
	if len(f) == 0 {
		return nil, nil
	}
	rec := &Record{
		ID:       f[fieldID],
		Consumer: f[fieldConsumer],
		Tenant:   f[fieldTenant],
		Tier:     f[fieldTier],
		Revoked:  f[fieldRevoked] == "1",
		Format:   f[fieldFormat],
	}
	if rec.Format == "" {
		rec.Format = FormatOpaque
	}
	if rec.ID == "" || rec.Consumer == "" {
		return nil, fmt.Errorf("record without %s or %s", fieldID, fieldConsumer)
	}
	if s := f[fieldRoles]; s != "" {
		if err := json.Unmarshal([]byte(s), &rec.Roles); err != nil {
			return nil, fmt.Errorf("decode %s: %w", fieldRoles, err)
		}
		if len(rec.Roles) == 0 {
			rec.Roles = nil
		}
	}
	var err error
	if rec.CreatedAt, err = parseTime(f[fieldCreatedAt]); err != nil {
		return nil, fmt.Errorf("decode %s: %w", fieldCreatedAt, err)
	}
	if rec.ExpiresAt, err = parseTime(f[fieldExpiresAt]); err != nil {
		return nil, fmt.Errorf("decode %s: %w", fieldExpiresAt, err)
	}
	if rec.TokenExpiresAt, err = parseTime(f[fieldTokenExp]); err != nil {
		return nil, fmt.Errorf("decode %s: %w", fieldTokenExp, err)
	}
	return rec, nil
}

// formatTime formats t as RFC 3339 UTC with nanoseconds; "" for zero.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// parseTime parses an RFC 3339 time; "" is the zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}
