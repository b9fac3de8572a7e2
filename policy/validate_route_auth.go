package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/policy/ir"
)

// authMethodNames are the methods a route may accept, sorted.
var authMethodNames = []string{ir.MethodAPIKey, ir.MethodJWT, ir.MethodOAuth2}

// methodSection is the auth field that configures each method.
var methodSection = map[string]string{
	ir.MethodAPIKey: "auth.apiKeys",
	ir.MethodJWT:    "auth.jwt",
	ir.MethodOAuth2: "auth.oauth2",
}

// methodFix says how to configure each method.
var methodFix = map[string]string{
	ir.MethodAPIKey: "add `apiKeys: {}` under auth, or remove \"apiKey\" from methods",
	ir.MethodJWT:    "add a provider under auth.jwt, or remove \"jwt\" from methods",
	ir.MethodOAuth2: "add a provider under auth.oauth2, or remove \"oauth2\" from methods",
}

// authMethods is what the policy's auth section configures, for the
// routes' checks.
type authMethods struct {
	set map[string]bool
	// known is false when Load could not read all of the auth section (or
	// a whole file): then the checks that need the configured set are
	// skipped.
	known bool
}

func (c *checker) authMethods(a *Auth) authMethods {
	m := authMethods{set: make(map[string]bool, len(authMethodNames)), known: !c.src.isPartial()}
	for _, path := range []string{"auth", "auth.jwt", "auth.apiKeys", "auth.oauth2"} {
		if c.src.isFailed(path) {
			m.known = false
		}
	}
	for _, meth := range a.methods() {
		m.set[meth] = true
	}
	return m
}

// routeAuth checks the auth of the route at path against the configured
// methods. A route without auth, or without auth.methods, accepts every
// configured method, so the policy must configure one.
func (c *checker) routeAuth(path string, r Route, m authMethods) {
	if r.Auth != nil && r.Auth.Public {
		return
	}
	ap := fieldPath(path, "auth")
	if c.src.isFailed(ap) {
		return
	}
	a := r.Auth
	if a == nil {
		a, ap = &RouteAuth{}, path
	}
	switch {
	case a.Methods != nil:
		c.routeMethods(fieldPath(ap, "methods"), a.Methods, m)
	case m.known && len(m.set) == 0:
		c.errorf(ap, `add auth.jwt, auth.apiKeys or auth.oauth2, or mark the route "auth: none"`,
			"route %q needs authentication but the policy configures no auth method", r.Name)
	}
	if a.Roles != nil {
		c.nonEmpty(fieldPath(ap, "roles"), "roles", "role", "remove roles to allow any authenticated caller", a.Roles)
	}
	if a.Scopes != nil {
		c.scopes(fieldPath(ap, "scopes"), a.Scopes)
	}
}

func (c *checker) routeMethods(path string, methods []string, m authMethods) {
	if len(methods) == 0 {
		c.errorf(path, "list at least one of apiKey, jwt and oauth2, or remove methods to accept every configured method",
			"auth.methods is empty")
	}
	seen := make(map[string]string, len(methods))
	for i, meth := range methods {
		mp := indexPath(path, i)
		if !slices.Contains(authMethodNames, meth) {
			summary := fmt.Sprintf("unknown auth method %q", meth)
			if s, ok := closest(meth, authMethodNames); ok {
				summary += fmt.Sprintf("; did you mean %q?", s)
			}
			c.errorf(mp, "use jwt, apiKey or oauth2", "%s", summary)
			continue
		}
		if first, dup := seen[meth]; dup {
			c.errorf(mp, "remove the duplicate", "duplicate auth method %q; first listed at %s", meth, c.where(first))
			continue
		}
		seen[meth] = mp
		if m.known && !m.set[meth] {
			c.errorf(mp, methodFix[meth], "auth method %q is not configured: the policy has no %s", meth, methodSection[meth])
		}
	}
}

// nonEmpty checks a list that must not be empty when given, without empty
// or duplicate entries; fix says what to do instead of an empty list.
func (c *checker) nonEmpty(path, field, kind, fix string, values []string) {
	if len(values) == 0 {
		c.errorf(path, fmt.Sprintf("list at least one %s, or %s", kind, fix), "auth.%s is empty", field)
	}
	c.distinct(path, kind, values)
}

// scopes checks a route's required OAuth2 scopes: each one scope token
// (RFC 6749, section 3.3), since tokens list their scopes space-separated.
func (c *checker) scopes(path string, scopes []string) {
	c.nonEmpty(path, "scopes", "scope", "remove scopes to require none", scopes)
	for i, s := range scopes {
		if s != "" && strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e || r == '"' || r == '\\' }) {
			c.errorf(indexPath(path, i), "write one scope per entry: printable ASCII without spaces, '\"' or '\\'",
				"invalid scope %q", s)
		}
	}
}

// gatewayAuth checks how a gateway calls the ext_authz service.
func (c *checker) gatewayAuth(path string, a GatewayAuth) {
	if a.StatusOnError != 0 {
		if summary, fix := statusOnErrorProblem(a.StatusOnError); summary != "" {
			c.errorf(fieldPath(path, "statusOnError"), fix, "%s", summary)
		}
	}
	c.durationIn(fieldPath(path, "timeout"), "timeout", a.Timeout, minAuthTimeout, maxAuthTimeout)
}

// statusOnErrorProblem says what is wrong with a gateway's statusOnError,
// or "" if nothing.
func statusOnErrorProblem(status int) (summary, fix string) {
	if status == DefaultAuthStatusOnError || status == altAuthStatus {
		return "", ""
	}
	return fmt.Sprintf("statusOnError must be %d or %d, got %d", altAuthStatus, DefaultAuthStatusOnError, status),
		fmt.Sprintf("use %d (the default) to report the outage, or %d to deny the request", DefaultAuthStatusOnError, altAuthStatus)
}
