package translator

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/policy/ir"
)

// KeyExceptions is the API-key store's exceptions table as the gateway's
// Envoys enforce it on signed keys: the keys revoked or updated since they
// were signed. The zero value (not Loaded) refuses every signed key, as
// does a table that is not Fresh.
type KeyExceptions struct {
	// Loaded is false until the control plane read the table once.
	Loaded bool
	// Fresh is false when the table could not be refreshed within the
	// store's max staleness (Redis unreachable): signed keys are then
	// refused with 503 key_store_unavailable, like opaque ones.
	Fresh bool
	// Epoch is the key store's epoch: a signed key whose ep claim is not
	// Epoch was minted before the store lost its data (its revocations
	// with it) and is refused as unknown (401 unknown_key), as ext_authz
	// refuses a key whose record is gone. Empty refuses every signed key.
	Epoch string
	// Items, one per key id (the key's jti).
	Items []KeyException
}

// KeyException is one key whose signed claims no longer hold: revoked, or
// holding the key's current tier, roles and expiry, which replace the
// signed ones.
type KeyException struct {
	ID        string
	Revoked   bool
	Tier      string
	Roles     []string
	ExpiresAt time.Time // zero: no expiry besides the signed exp
}

// KeyIdentity builds the key identity filter of one gateway: a Lua filter
// whose config (the script with the exceptions table inlined) Envoy
// receives by ECDS, so a changed table reloads that filter alone, never a
// listener or a route table.
//
// With the Envoy module deciding signed keys (jwtmodule_keys.go), the
// ECDS resource is the module's filter config holding the table instead.
type KeyIdentity struct {
	namespace string
	keyHeader string
	headers   ir.IdentityHeaders
	module    *jwtModule // set: the module enforces the table
}

// newKeyIdentity returns the key identity of cfg's API keys.
func newKeyIdentity(cfg *ir.Config) *KeyIdentity {
	return &KeyIdentity{namespace: cfg.Auth.APIKeys.Namespace, keyHeader: strings.ToLower(cfg.Auth.APIKeys.Header),
		headers: identityHeadersOrDefault(cfg.Auth.IdentityHeaders)}
}

// Name is the name of the ECDS resource enforcing the table:
// KeyIdentityFilter, or the module's filter name.
func (k *KeyIdentity) Name() string {
	if k.module != nil {
		return k.module.name
	}
	return KeyIdentityFilter
}

// Extension returns the ECDS resource (named Name) enforcing x. The same x
// always gives byte-identical resources.
func (k *KeyIdentity) Extension(x KeyExceptions) (*corev3.TypedExtensionConfig, error) {
	if k.module != nil {
		return k.module.extension(x)
	}
	return envoy.ExtensionConfig(KeyIdentityFilter, envoy.LuaNamedSources(map[string]string{keyIdentityScriptName: k.script(x)}))
}

// filter returns the HTTP filter taking its config from ECDS; until the
// first table arrives it runs with a table that is not loaded (every
// signed key refused), without holding the listener back.
func (k *KeyIdentity) filter() (*hcmv3.HttpFilter, error) {
	return envoy.DiscoveredHTTPFilter(KeyIdentityFilter, envoy.LuaNamedSources(map[string]string{keyIdentityScriptName: k.script(KeyExceptions{})}))
}

// script is the key identity script enforcing x: its settings and table,
// then the fixed body (keyIdentityBody).
func (k *KeyIdentity) script(x KeyExceptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "local FRESH = %t\nlocal EPOCH = %s\nlocal NS = %s\nlocal H = {", x.Loaded && x.Fresh,
		luaString(x.Epoch), luaString(k.namespace))
	for _, kv := range [][2]string{{"user", k.headers.UserID}, {"roles", k.headers.Roles}, {"tenant", k.headers.Tenant}, {"tier", k.headers.Tier}} {
		fmt.Fprintf(&b, "%s=%s, ", kv[0], luaString(kv[1]))
	}
	fmt.Fprintf(&b, "}\nlocal JWT, AUTHZ, PAYLOAD, CHECKED, NATIVE = %s, %s, %s, %s, %s\n", luaString(envoy.JwtAuthnName),
		luaString(envoy.ExtAuthzName), luaString(jwtPayloadKey(keyProvider)), luaString(keyCheckedKey), luaString(nativeMarkerKey))
	fmt.Fprintf(&b, "local KEYH, MAXKEY, MAXSUB, KIDLEN = %s, %d, %d, %d\n", luaString(k.keyHeader), contract.MaxSignedKeyLen,
		contract.MaxConsumerLen, contract.KeyIDLen)
	var raw strings.Builder
	for _, it := range sortedExceptions(x.Items) {
		raw.WriteString(tableLine(it))
	}
	// One string constant, parsed when the script loads: a table
	// constructor would need a constant per key, and LuaJIT allows 65,536
	// per function.
	fmt.Fprintf(&b, "local RAW = %s\n", luaString(raw.String()))
	b.WriteString(keyIdentityBody)
	return b.String()
}

// sortedExceptions returns a copy of items sorted by id.
func sortedExceptions(items []KeyException) []KeyException {
	out := slices.Clone(items)
	slices.SortFunc(out, func(a, b KeyException) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// tableLine is one entry of the table as keyIdentityBody parses it: five
// tab-separated fields and a newline: id, kind ("r" revoked, "u" updated,
// "m" unusable: a field holds a control character), tier, roles (the
// valid ones, comma-joined), expiry in Unix seconds ("" for none).
func tableLine(it KeyException) string {
	roles := make([]string, 0, len(it.Roles))
	for _, r := range it.Roles {
		if contract.ValidRole(r) {
			roles = append(roles, r)
		}
	}
	exp := ""
	if !it.ExpiresAt.IsZero() {
		exp = strconv.FormatInt(it.ExpiresAt.Unix(), 10)
	}
	kind := "u"
	switch {
	case hasControl(it.ID):
		return "" // never a key id (base62): no key can name it
	case it.Revoked:
		kind = "r"
	case hasControl(it.Tier):
		return it.ID + "\tm\t\t\t\n"
	}
	return it.ID + "\t" + kind + "\t" + it.Tier + "\t" + strings.Join(roles, ",") + "\t" + exp + "\n"
}

// hasControl reports whether s holds a control character (tab and
// newline included), which a header value or the table cannot carry.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// luaString quotes s as a Lua string literal; every byte outside
// printable ASCII, and the quote and backslash, as a decimal escape.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			fmt.Fprintf(&b, "\\%03d", c)
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

// keyIdentityBody is the fixed part of the key identity script. For a
// request whose signed key jwt_authn verified it
//   - refuses with 401 malformed_key, as ext_authz does, a key longer than
//     contract.MaxSignedKeyLen, and claims the control plane never signs:
//     a jti that is not contract.KeyIDLen base62 characters (no table
//     entry could ever name it), a sub outside contract.ValidConsumer, a tier
//     that is not a tier name (the policy's name rule), claims of the
//     wrong type, a tenant holding a control character;
//   - refuses it with 503 key_store_unavailable when the table is not
//     fresh (fail closed, as ext_authz during a Redis outage);
//   - refuses it with 401 unknown_key, as ext_authz does, when its ep
//     claim is not the key store's current epoch (EPOCH): it was minted
//     before the store lost its data, revocations included;
//   - refuses a revoked key (401 revoked_key), a key whose current
//     expiry passed (401 expired_key) and a key whose entry is unusable
//     (401 malformed_key), with ext_authz's bodies;
//   - takes tier and roles from the table entry when there is one, else
//     from the signed claims (tier, roles; roles outside
//     contract.ValidRole dropped, as ext_authz drops them), tenant from
//     tnt;
//   - sets the identity headers (the strip filter removed the client's;
//     an empty value removes its header) and publishes as the ext_authz
//     filter's metadata method apiKey, key_id and the native marker
//     (nativeMarkerKey) that switches ext_authz off; the identity metadata
//     filter right after it (nativeJWT.identityMetadata) copies the
//     headers it set into consumer, user_id, roles, tenant and tier, so
//     rate limits, access logs and rbac read what ext_authz would publish
//     (an empty value left out, as on JWT routes): one metadata write
//     per key from Lua costs more than one header_to_metadata update
//     of all of them;
//   - answers 401s with the challenge the route's metadata names under
//     the filter's name (a mixed route: mixedChallenge), else ext_authz's
//     API-key challenge.
//
// A request with both the key header and Authorization skips the length
// check: rbac refuses it as ambiguous (native key and mixed routes), as
// ext_authz does first.
const keyIdentityBody = `
local function deny(h, status, reason)
  local word, hs = "unavailable", {[":status"]=status, ["content-type"]="application/json", ["cache-control"]="no-store"}
  if status == "401" then
    word = "unauthorized"
    -- A mixed route names its challenge in the route metadata.
    hs["www-authenticate"] = h:metadata():get("challenge") or 'ApiKey realm="tollgate"'
  end
  h:respond(hs, '{"error":"' .. word .. '","reason":"' .. reason .. '"}')
end

local function clean(v) return string.find(v, "[%z\1-\8\10-\31\127]") == nil end

local function str(v)
  if v == nil then return "" end
  if type(v) ~= "string" or not clean(v) then return nil end
  return v
end

local function valid(r) return string.find(r, "^[!-+%-.-~]+$") ~= nil end

local function keyid(v)
  return type(v) == "string" and #v == KIDLEN and string.find(v, "^[A-Za-z0-9]+$") ~= nil
end

local function consumer(v)
  return #v <= MAXSUB and string.find(v, "^[A-Za-z0-9][A-Za-z0-9._@%-]*$") ~= nil
end

local function tiername(v)
  return v == "" or (#v <= 63 and string.find(v, "^[a-z0-9][a-z0-9%-]*$") ~= nil and string.sub(v, -1) ~= "-")
end

-- toolong: the key in its header is longer than the key store accepts.
local function toolong(hs)
  local kv, av = hs:get(KEYH), hs:get("authorization")
  if kv ~= nil and av ~= nil then return false end
  if kv ~= nil then return #kv > MAXKEY end
  return av ~= nil and #av - 7 > MAXKEY
end

local function roles(v)
  if v == nil then return "" end
  local out = {}
  if type(v) == "string" then
    for r in string.gmatch(v, "[^ ,]+") do if valid(r) then out[#out+1] = r end end
  elseif type(v) == "table" then
    for _, r in ipairs(v) do
      if type(r) ~= "string" then return nil end
      if valid(r) then out[#out+1] = r end
    end
  else
    return nil
  end
  return table.concat(out, ",")
end

-- identity returns the key id and the identity the claims c sign, or nil
-- when the control plane never signs such a key.
local function identity(c, hs)
  local kid, sub = c.jti, c.sub
  if toolong(hs) or not keyid(kid) or type(sub) ~= "string" or not consumer(sub) then return nil end
  local id = {user=sub, tier=str(c.tier), tenant=str(c.tnt), roles=roles(c.roles)}
  if id.tier == nil or id.tenant == nil or id.roles == nil or not tiername(id.tier) then return nil end
  return kid, id
end

-- X: key id -> {kind, tier, roles, exp}, parsed from RAW once per load.
local X = {}
for id, kind, tier, roles, exp in string.gmatch(RAW, "([^\t\n]*)\t([^\t\n]*)\t([^\t\n]*)\t([^\t\n]*)\t([^\t\n]*)\n") do
  X[id] = {kind=kind, tier=tier, roles=roles, exp=tonumber(exp)}
end

-- put sets (or, for an empty value, removes) one identity header.
local function put(hs, name, v)
  if v ~= "" then hs:replace(name, v) else hs:remove(name) end
end

function envoy_on_request(h)
  local m = h:streamInfo():dynamicMetadata()
  local md = m:get(JWT)
  if md == nil then return end
  local c = md[PAYLOAD]
  if c == nil then return end
  local hs = h:headers()
  local kid, id = identity(c, hs)
  if kid == nil then return deny(h, "401", "malformed_key") end
  if not FRESH then return deny(h, "503", "key_store_unavailable") end
  if EPOCH == "" or c.ep ~= EPOCH then return deny(h, "401", "unknown_key") end
  local x = X[kid]
  if x ~= nil then
    if x.kind == "r" then return deny(h, "401", "revoked_key") end
    if x.kind ~= "u" then return deny(h, "401", "malformed_key") end
    if x.exp ~= nil and os.time() >= x.exp then return deny(h, "401", "expired_key") end
    id.tier, id.roles = x.tier, x.roles
  end
  if NS ~= "" then id.user = NS .. ":" .. id.user end
  put(hs, H.user, id.user)
  put(hs, H.roles, id.roles)
  put(hs, H.tenant, id.tenant)
  put(hs, H.tier, id.tier)
  m:set(AUTHZ, "method", "apiKey")
  m:set(AUTHZ, CHECKED, kid)
  m:set(AUTHZ, NATIVE, "apiKey")
end
`
