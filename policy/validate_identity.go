package policy

import (
	"fmt"
	"strings"
)

// Identity namespaces and the choice of introspection provider.
//
// Every JWT and OAuth2 provider puts its callers in an identity namespace,
// its name unless it sets `namespace`: the consumer (rate-limit key, access
// log) and the user id header are "<namespace>:<id>", so equal subjects of
// two identity providers stay two identities. Two providers share a
// namespace only when one of them says so explicitly. API keys are bare
// unless auth.apiKeys sets a namespace.
//
// An opaque token goes to exactly one introspection endpoint: with several
// OAuth2 providers each needs a tokenPrefix, and no prefix may start
// another, so at most one provider matches.

// tokenPrefixRunes are the characters a tokenPrefix may hold: those of an
// RFC 6750 b64token.
const tokenPrefixRunes = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"

// namespaceOwner is a provider's effective namespace and where it comes
// from.
type namespaceOwner struct {
	path     string // the provider's path
	kind     string // "jwt" or "oauth2"
	explicit bool   // set by `namespace:` rather than defaulted to the name
}

// identityNamespaces checks the namespaces of the providers and API keys:
// valid names, and no two providers in one namespace by accident (both
// defaulted from equal names of a JWT and an OAuth2 provider).
func (c *checker) identityNamespaces(a *Auth) {
	seen := make(map[string]namespaceOwner, len(a.JWT)+len(a.OAuth2))
	claim := func(kind string, i int, name, ns string) {
		path := indexPath("auth."+kind, i)
		if ns != "" {
			c.namespace(fieldPath(path, "namespace"), ns)
		}
		own := namespaceOwner{path: path, kind: kind, explicit: ns != ""}
		if ns == "" {
			ns = name
		}
		// Equal names of one kind are reported as duplicates already.
		first, dup := seen[ns]
		if dup && first.kind != kind && !first.explicit && !own.explicit && ns != "" {
			c.errorf(fieldPath(path, "name"), fmt.Sprintf(
				"rename one of them, or set `namespace: %s` on one to make them share identities on purpose", ns),
				"providers %s and %s share the identity namespace %q only because they have the same name: "+
					"their callers with equal subjects would be one identity", c.where(first.path), path, ns)
			return
		}
		if !dup {
			seen[ns] = own
		}
	}
	for i, j := range a.JWT {
		claim("jwt", i, j.Name, j.Namespace)
	}
	for i, o := range a.OAuth2 {
		claim("oauth2", i, o.Name, o.Namespace)
	}
	if a.APIKeys != nil && a.APIKeys.Namespace != "" {
		c.namespace("auth.apiKeys.namespace", a.APIKeys.Namespace)
	}
}

// namespace checks an explicit identity namespace: a name, as it becomes
// the part of every identity before the first ':'.
func (c *checker) namespace(path, ns string) {
	if !validName(ns) {
		c.errorf(path, nameRule+nameExample(ns)+"; identities are \"<namespace>:<id>\"",
			"invalid identity namespace %q", ns)
	}
}

// tokenPrefixes checks the OAuth2 providers' token prefixes and
// concurrency bounds: with several providers every one needs a prefix,
// and no prefix may be a prefix of another's, so that an opaque token is
// sent to one introspection endpoint at most.
func (c *checker) tokenPrefixes(ps []OAuth2Provider) {
	type prefix struct{ value, path string }
	var seen []prefix
	for i, o := range ps {
		path := indexPath("auth.oauth2", i)
		if o.MaxConcurrent < 0 || o.MaxConcurrent > maxConcurrent {
			c.errorf(fieldPath(path, "maxConcurrent"), fmt.Sprintf("use a bound from 1 to %d", maxConcurrent),
				"maxConcurrent must be between 1 and %d, got %d", maxConcurrent, o.MaxConcurrent)
		}
		pp := fieldPath(path, "tokenPrefix")
		if o.TokenPrefix == "" {
			if len(ps) > 1 && !c.src.isFailed(pp) {
				c.errorf(path, "add `tokenPrefix: <the start of this provider's tokens>`, e.g. `tokenPrefix: \"corp_\"`; "+
					"tokens matching no prefix are refused without introspection",
					"oauth2 provider %q has no tokenPrefix: with several oauth2 providers, each needs one so that "+
						"a token is sent to its own provider's endpoint only, never to the others", o.Name)
			}
			continue
		}
		if !c.tokenPrefix(pp, o.TokenPrefix) {
			continue
		}
		for _, other := range seen {
			if strings.HasPrefix(o.TokenPrefix, other.value) || strings.HasPrefix(other.value, o.TokenPrefix) {
				c.errorf(pp, "make the prefixes distinct so that no prefix starts another, e.g. \"corp_\" and \"partner_\"",
					"tokenPrefix %q overlaps tokenPrefix %q at %s: a token could belong to both providers",
					o.TokenPrefix, other.value, c.where(other.path))
			}
		}
		seen = append(seen, prefix{o.TokenPrefix, pp})
	}
}

// tokenPrefix checks the characters and length of one prefix.
func (c *checker) tokenPrefix(path, p string) bool {
	switch {
	case len(p) > maxTokenPrefix:
		c.errorf(path, fmt.Sprintf("use at most %d characters", maxTokenPrefix), "tokenPrefix is %d characters long", len(p))
	case strings.ContainsFunc(p, func(r rune) bool { return !strings.ContainsRune(tokenPrefixRunes, r) }):
		c.errorf(path, "use letters, digits and -._~+/ only: the characters of a bearer token",
			"tokenPrefix %q holds a character no bearer token has", p)
	default:
		return true
	}
	return false
}
