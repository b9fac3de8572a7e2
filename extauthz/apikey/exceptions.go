package apikey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Exceptions of API keys.
//
// Envoy verifies a signed key by itself and takes its consumer, tier and
// roles from the claims. What the claims cannot say — that the key was
// revoked, or that its tier, roles or expiry changed — is pushed to Envoy
// as a small table of exceptions: Revoke and Update of a key record its
// current state there and bump the table's version.
//
// Opaque keys have entries too, for the Envoy module's learned records
// (extauthz.Local.Learn): the module keeps an opaque key's record, as the
// ext_authz service answered it, for at most LearnedRecordTTL, and the
// exceptions table overrides it as it overrides a signed key's claims.
//
// A signed key's entry stays until the token's own exp (enforced by Envoy)
// has passed by ExceptionPruneGrace; a token without exp keeps its entry
// for ever. An opaque key's entry stays OpaqueExceptionLife after its last
// change: longer than any record learned before the change can be served.
// An entry's ExpiresAt may be earlier than the token's exp (a shortened
// key), so whoever applies the table must deny an entry whose ExpiresAt
// has passed, not only a revoked one.
const (
	// MaxExceptions bounds the table Exceptions returns: beyond it,
	// Exceptions fails with ErrTooManyExceptions instead of allocating
	// without bound (and the watcher's view goes stale: fail closed).
	MaxExceptions = 200_000
	// ExceptionPruneGrace is how long after its token's exp an entry is
	// kept: more than jwt_authn's default clock skew (60 s), so Envoy has
	// refused the token by itself before the entry goes.
	ExceptionPruneGrace = 10 * time.Minute
	// LearnedRecordTTL bounds how long the Envoy module serves an opaque
	// key's record learned from one ext_authz answer before it asks
	// ext_authz again (extauthz.Local.Learn).
	LearnedRecordTTL = 5 * time.Minute
	// OpaqueExceptionLife is how long an opaque key's entry stays after
	// its last change: a record read (from a replica's cache,
	// DefaultCacheTTL) just before the change, learned at most 10 s after
	// (extauthz.MaxLearnAge) and used for LearnedRecordTTL from the
	// request, is gone from every Envoy before, with two and a half
	// minutes to spare for the control-plane replicas' clocks (the writer's
	// sets the prune time, any replica's prunes). Kept short otherwise:
	// every entry travels in every push of the table to every Envoy, and
	// the table's bound (MaxExceptions) counts opaque entries too.
	OpaqueExceptionLife = LearnedRecordTTL + 3*time.Minute
	// maxPrunePerCall bounds the entries one call removes.
	maxPrunePerCall = 1000
)

// ErrTooManyExceptions reports an exceptions table above MaxExceptions.
var ErrTooManyExceptions = errors.New("apikey: the signed-key exceptions table exceeds its bound")

// Exception is a signed key whose state differs from its claims.
type Exception struct {
	ID        string
	Revoked   bool
	Tier      string    // current tier ("" = none)
	Roles     []string  // current roles (nil = none)
	ExpiresAt time.Time // current expiry, whole seconds, UTC (zero = never)
}

// Exceptions is the table of exceptions at one version.
type Exceptions struct {
	// Version changes on every change of the table (Redis INCR); 0 means
	// the table never changed.
	Version int64
	// Epoch is the key store's epoch (see EpochLen): a signed key whose
	// ep claim differs must be refused as unknown. Never empty in a table
	// an ExceptionSource returns.
	Epoch string
	Items []Exception // sorted by ID
}

// ExceptionSource is what WatchExceptions polls; RedisStore and
// MemoryStore implement it.
type ExceptionSource interface {
	// Exceptions returns the table and its version, read atomically.
	Exceptions(ctx context.Context) (Exceptions, error)
	// Version returns the table's current version and the store's epoch
	// ("" when it has none: Exceptions creates it), cheaply.
	Version(ctx context.Context) (Stamp, error)
}

// exceptionEntry is an Exception as stored (JSON): rev is the record's
// revision, so a late write of an older update cannot overwrite a newer
// one; a revoked entry is final.
type exceptionEntry struct {
	Revoked   bool     `json:"revoked,omitempty"`
	Tier      string   `json:"tier,omitempty"`
	Roles     []string `json:"roles,omitempty"`
	ExpiresAt int64    `json:"exp,omitempty"` // unix seconds
	Rev       int64    `json:"rev"`
}

// exceptionOf returns the entry of a key's record at revision rev.
func exceptionOf(rec Record, rev int64) exceptionEntry {
	e := exceptionEntry{Revoked: rec.Revoked, Tier: rec.Tier, Roles: slices.Clone(rec.Roles), Rev: rev}
	if !rec.ExpiresAt.IsZero() {
		e.ExpiresAt = rec.ExpiresAt.Unix()
	}
	return e
}

// pruneAt returns the unix time after which the entry of rec, changed at
// now, may go: a signed key's token exp plus ExceptionPruneGrace (0, for
// never, when the token has no exp), an opaque key's change plus
// OpaqueExceptionLife.
func pruneAt(rec Record, now time.Time) int64 {
	if rec.Format != FormatSigned {
		return now.Add(OpaqueExceptionLife).Unix()
	}
	if rec.TokenExpiresAt.IsZero() {
		return 0
	}
	return rec.TokenExpiresAt.Add(ExceptionPruneGrace).Unix()
}

// exception returns e as the Exception of the key with id.
func (e exceptionEntry) exception(id string) Exception {
	x := Exception{ID: id, Revoked: e.Revoked, Tier: e.Tier, Roles: slices.Clone(e.Roles)}
	if len(x.Roles) == 0 {
		x.Roles = nil
	}
	if e.ExpiresAt != 0 {
		x.ExpiresAt = time.Unix(e.ExpiresAt, 0).UTC()
	}
	return x
}

// decodeExceptions turns stored entries (id → JSON) into a table.
func decodeExceptions(version int64, raw map[string]string) (Exceptions, error) {
	out := Exceptions{Version: version, Items: make([]Exception, 0, len(raw))}
	for id, js := range raw {
		var e exceptionEntry
		if err := json.Unmarshal([]byte(js), &e); err != nil {
			return Exceptions{}, fmt.Errorf("apikey: exception of key %s: %w", id, err)
		}
		out.Items = append(out.Items, e.exception(id))
	}
	sortExceptions(out.Items)
	return out, nil
}

func sortExceptions(items []Exception) {
	slices.SortFunc(items, func(a, b Exception) int { return strings.Compare(a.ID, b.ID) })
}

// signedChange checks ch against a signed key's record and returns it with
// the expiry cut to whole seconds: the token's exp, which Envoy enforces,
// cannot move, so a signed key's expiry can only be shortened.
func signedChange(rec Record, ch Change) (Change, error) {
	if rec.Format != FormatSigned || ch.ExpiresAt == nil {
		return ch, nil
	}
	exp := ch.ExpiresAt.UTC().Truncate(time.Second)
	if !rec.TokenExpiresAt.IsZero() && (exp.IsZero() || exp.After(rec.TokenExpiresAt)) {
		return Change{}, fmt.Errorf("%w (key %s expires at %s at the latest)", ErrSignedExpiry, rec.ID,
			rec.TokenExpiresAt.Format(time.RFC3339))
	}
	ch.ExpiresAt = &exp
	return ch, nil
}
