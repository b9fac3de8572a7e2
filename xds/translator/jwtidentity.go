package translator

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// jwtIdentityScript is the Lua script that runs on native JWT routes right
// after jwt_authn verified the token. For the provider that verified it, it
//   - refuses (401) a token without a numeric "exp" (no_exp) or whose
//     lifetime exp - iat (exp - now without iat) exceeds the provider's
//     maximum (lifetime_too_long): jwt_authn, which checks exp, nbf and the
//     signature, would say bad_signature for both;
//   - refuses (401, the ext_authz service's body) a token whose "alg" is
//     outside the provider's allow-list (alg_not_allowed), whose user id
//     claim is not a non-empty string, whose tenant or tier claim is not a
//     string, or whose roles claim is neither a string nor a list of strings
//     (bad_claim): exactly the ext_authz service's rules (extauthz/jwt);
//     and a user id, tenant or tier holding a control character other
//     than a tab (bad_claim): Envoy would cut the value at a NUL, turning
//     "alice\0x" into another caller's identity, or fail on CR/LF;
//   - sets the identity headers (which the strip filter removed before any
//     filter ran) from the claims, removing those without a value; the
//     user id is "<provider namespace>:<user id claim>" (as the ext_authz
//     service's); roles split at spaces and commas and joined with ",",
//     after dropping role values that are not visible ASCII without a
//     comma (contract.ValidRole), logged once per Envoy worker;
//   - publishes the user id as the consumer key of the ext_authz filter's
//     dynamic metadata; the header_to_metadata filter that follows the
//     identity scripts (nativeJWT.identityMetadata) copies the headers it
//     set into the other keys (method, user_id, roles, tenant, tier; on a
//     mixed route the script writes method itself), so rate-limit
//     descriptors and access logs read one namespace whichever path
//     authenticated the request.
//
// The script is generated from the IR: providers in IR order (sorted by
// name), every string quoted with %q (a Lua-compatible escape for the
// printable ASCII the policy's names and claims use).
//
// With mixed (the script of a native mixed route, mixednative.go) a request
// without a verified JWT passes untouched (a signed key's or an opaque
// key's, decided further on), refusals carry the mixed route's challenge,
// and an accepted token also sets the native marker (nativeMarkerKey) that
// switches ext_authz off for the request, and the method "jwt" (the
// metadata filter after both scripts cannot tell a JWT from a key).
func jwtIdentityScript(providers []ir.JWTProvider, h ir.IdentityHeaders, mixed bool) string {
	var b strings.Builder
	b.WriteString("local P = {\n")
	for _, p := range providers {
		fmt.Fprintf(&b, "  {name=%s, prefix=%s, payload=%s, header=%s, user=%s, maxlife=%d", luaQuote(p.Name), luaQuote(cmp.Or(p.Namespace, p.Name)+":"),
			luaQuote(jwtPayloadKey(p.Name)), luaQuote(jwtHeaderKey(p.Name)), luaQuote(cmp.Or(p.Claims.UserID, "sub")),
			int64(jwtMaxLifetime(p)/time.Second))
		for _, kv := range [][2]string{{"roles", p.Claims.Roles}, {"tenant", p.Claims.Tenant}, {"tier", p.Claims.Tier}} {
			if kv[1] != "" {
				fmt.Fprintf(&b, ", %s=%s", kv[0], luaQuote(kv[1]))
			}
		}
		b.WriteString(", algs={")
		for _, a := range p.Algorithms {
			fmt.Fprintf(&b, "[%s]=true, ", luaQuote(a))
		}
		b.WriteString("}},\n")
	}
	b.WriteString("}\n")
	// Header names as locals ("" leaves that header out; identity headers
	// are filled with defaults, so none is empty today).
	fmt.Fprintf(&b, "local H_USER, H_ROLES, H_TENANT, H_TIER = %s, %s, %s, %s\n", luaQuote(h.UserID), luaQuote(h.Roles), luaQuote(h.Tenant), luaQuote(h.Tier))
	fmt.Fprintf(&b, "local JWT, AUTHZ = %s, %s\n", luaQuote(envoy.JwtAuthnName), luaQuote(envoy.ExtAuthzName))
	challenge := jwtChallenge
	if mixed {
		challenge = mixedChallenge
	}
	fmt.Fprintf(&b, "local CHALLENGE, MIXED, NATIVE = %s, %t, %s\n", luaQuote(challenge), mixed, luaQuote(nativeMarkerKey))
	b.WriteString(jwtIdentityBody)
	return b.String()
}

// jwtChallenge is ext_authz's WWW-Authenticate for a refused token on a
// JWT-only route.
const jwtChallenge = `Bearer realm="tollgate", error="invalid_token"`

// luaQuote quotes s as a Lua string literal.
func luaQuote(s string) string { return strconv.Quote(s) }

// jwtIdentityBody is the fixed part of jwtIdentityScript.
const jwtIdentityBody = `
local function deny(h, reason)
  h:respond({[":status"]="401", ["content-type"]="application/json", ["cache-control"]="no-store",
    ["www-authenticate"]=CHALLENGE},
    '{"error":"unauthorized","reason":"' .. reason .. '"}')
end

-- A control character (NUL, CR, LF, DEL...) cannot be in a header value:
-- Envoy cuts a Lua string at NUL (so "alice\0x" would reach the upstream
-- and the rate-limit key as "alice", another identity) and refuses CR/LF.
local function clean(v) return string.find(v, "[%z\1-\8\10-\31\127]") == nil end

local function optional(v)
  if v == nil then return "" end
  if type(v) ~= "string" or not clean(v) then return nil end
  return v
end

-- A role reaches the comma-joined roles header only as visible ASCII
-- without a comma (contract.ValidRole); other values are dropped.
local function valid(r) return string.find(r, "^[!-+%-.-~]+$") ~= nil end

local logged = false -- one warning per worker

local function roles(h, p, v)
  if v == nil then return "" end
  local out, dropped = {}, 0
  local function add(r)
    if valid(r) then out[#out+1] = r else dropped = dropped + 1 end
  end
  if type(v) == "string" then
    for r in string.gmatch(v, "[^ ,]+") do add(r) end
  elseif type(v) == "table" then
    -- A JSON array arrives as a table with keys 1..n, an object with string
    -- keys: an object is refused (bad_claim), like the ext_authz service.
    -- (An empty object cannot be told from an empty array: no roles.)
    for k in pairs(v) do
      if type(k) ~= "number" then return nil end
    end
    for _, r in ipairs(v) do
      if type(r) ~= "string" then return nil end
      if r ~= "" then add(r) end
    end
  else
    return nil
  end
  if dropped > 0 and not logged then
    logged = true
    h:logWarn("tollgate: dropped role values of provider " .. p.name ..
      " holding a comma, whitespace, a control or a non-ASCII character (logged once per worker)")
  end
  return table.concat(out, ",")
end

-- jwt_authn checks exp when present but does not require it here: it
-- would refuse a token without exp as "Jwt verification fails", the words
-- of a bad signature. The script requires it (no_exp) and bounds the
-- lifetime exp - iat, or exp - now without iat (lifetime_too_long), as the
-- ext_authz service does.
local function lifetime(h, p, c)
  if type(c.exp) ~= "number" then return deny(h, "no_exp") end
  local start = c.iat
  if type(start) ~= "number" then start = os.time() end
  if c.exp - start > p.maxlife then return deny(h, "lifetime_too_long") end
  return true
end

-- setHeader sets (or, for an empty value, removes) one identity header.
local function setHeader(hs, name, v)
  if name == "" then return end
  if v ~= "" then hs:replace(name, v) else hs:remove(name) end
end

-- identity checks the verified token of provider p (claims c, JOSE header
-- hd) and publishes the identity: the headers, and the consumer key of
-- the metadata (the other keys are copied from the headers by the
-- header_to_metadata filter after the identity scripts: one metadata
-- write per key from Lua costs more than the rest of the script; on a
-- mixed route also the method and the native marker). Straight-line code:
-- no table per request, one concatenation (the user id).
local function identity(h, m, p, c, hd)
  if hd == nil or not p.algs[hd.alg] then return deny(h, "alg_not_allowed") end
  if not lifetime(h, p, c) then return end
  local user = c[p.user]
  if type(user) ~= "string" or user == "" or not clean(user) then return deny(h, "bad_claim") end
  local rs, tenant, tier = "", "", ""
  if p.roles then rs = roles(h, p, c[p.roles]) end
  if p.tenant then tenant = optional(c[p.tenant]) end
  if p.tier then tier = optional(c[p.tier]) end
  if rs == nil or tenant == nil or tier == nil then return deny(h, "bad_claim") end
  user = p.prefix .. user
  local hs = h:headers()
  setHeader(hs, H_USER, user)
  setHeader(hs, H_ROLES, rs)
  setHeader(hs, H_TENANT, tenant)
  setHeader(hs, H_TIER, tier)
  m:set(AUTHZ, "consumer", user)
  if MIXED then
    m:set(AUTHZ, "method", "jwt")
    m:set(AUTHZ, NATIVE, "jwt")
  end
end

function envoy_on_request(h)
  local m = h:streamInfo():dynamicMetadata()
  local md = m:get(JWT)
  if md == nil then return end
  for i = 1, #P do
    local p = P[i]
    local c = md[p.payload]
    if c ~= nil then return identity(h, m, p, c, md[p.header]) end
  end
  if MIXED then return end
  return deny(h, "invalid_token")
end
`
