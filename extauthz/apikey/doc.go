// Package apikey issues, stores, authenticates and revokes Tollgate API
// keys.
//
// # Keys
//
// A key looks like
//
//	tg_<id>_<secret>_<checksum>
//	tg_27rPErmv_CMeFbET4B3Dwza7yUxQawqTycmfUq0On_3WwyLt
//
// with an 8-character base62 id (public), a 32-character base62 secret
// and a 6-character base62 CRC-32 of everything before it (an opaque
// key), or
//
//	tg.<header>.<claims>.<signature>
//
// a signed key: "tg." and a compact JWS signed with Ed25519 by a Signer
// whose key pair is derived from the pepper, so that Envoy can verify it
// itself against Signer.JWKS (claims iss, sub, jti = the id, iat, exp,
// tnt, tier, roles; readable by whoever holds the key). Parse checks the
// shape (and an opaque key's checksum) without any I/O, so garbage never
// reaches the store. Both forms are stored alike, so Lookup accepts both.
//
// A signed key's state after creation (revoked, new tier, roles or a
// shorter expiry) cannot change its claims: Revoke and Update record it
// in an exceptions table (see Exceptions, WatchExceptions) that the
// control plane pushes to Envoy. Its expiry can only be shortened. A
// signed key also carries the key store's epoch (claim ep): when the store
// loses its data, revocations included, a new epoch makes every signed
// key minted before unknown, on both paths (see EpochLen).
//
// # Storage
//
// Stores never hold the key: they index records by HMAC-SHA256(pepper,
// key), in hex. The plaintext key is returned once, by Create. Without the
// pepper, a copy of the store cannot be used to test guessed keys offline.
//
// MemoryStore keeps records in process memory (single process, `make
// dev`). RedisStore keeps them in Redis, shared by every ext_authz replica,
// with this layout:
//
//	tollgate:apikey:<hmac>             hash   the record: id, consumer,
//	                                          tenant, tier, roles (JSON
//	                                          array), created_at, expires_at
//	                                          (RFC 3339, "" = never),
//	                                          revoked ("0"/"1")
//	tollgate:apikey:id:<id>            string <hmac>, for Revoke and List
//	tollgate:consumer:<consumer>:keys  set    ids of the consumer's keys
//	tollgate:apikey:revoked            pub/sub channel; message = <hmac>
//	tollgate:apikey:{exceptions}       hash   id → JSON entry of a signed key
//	tollgate:apikey:{exceptions}:version  string, INCR on every change
//	tollgate:apikey:{exceptions}:prune    zset   id → unix time it may go
//	tollgate:apikey:{exceptions}:epoch    string the key-store epoch (see
//	                                          EpochLen), claim ep of signed keys
//
// Only the exceptions keys and the epoch carry a hash tag, the same one, so the
// scripts that change them together run in one Cluster slot. On Redis Cluster the three keys of one API
// key live in different slots, so no operation spans them in one command:
// Lookup is a single HGETALL, Create three single-key commands (SET NX on
// the id, SADD, HSET — the record last, so a crash never leaves a usable
// key that List does not show), Revoke a GET and a single-key script.
// Revoking or updating a signed key therefore writes the exceptions
// table and the record in two steps (the table first on Revoke, so a
// failure half-way leaves the key refused by Envoy; the error makes the
// caller retry). Tagging the keys with {consumer} would co-locate a consumer's data but
// make the record unreachable from the HMAC alone, which is all Lookup
// has. Nothing expires in Redis; expiry is decided at lookup time.
//
// # Caching and revocation
//
// RedisStore caches lookup results (hits, unknown keys, revoked keys) for
// RedisOptions.CacheTTL in a bounded local cache. Revoke publishes the
// key's HMAC on tollgate:apikey:revoked and every replica drops the entry.
// Because pub/sub loses messages while a subscription is down, a replica
// pings through its subscription four times per MaxStaleness (default 1s)
// and trusts its cache only while a recent ping has come back; it flushes
// the cache whenever the subscription fails or is re-established. So a
// revocation takes effect on every replica within MaxStaleness, even when
// the message is lost; while Redis is unreachable lookups fail (and the
// caller denies) instead of being served from a cache nobody vouches for.
package apikey
