package policy

import (
	"fmt"
	"slices"
	"strings"
)

// substitutionVars are the Envoy substitution variables a header value
// may use (%NAME% or, for those marked true, %NAME(arg)%). Envoy knows more;
// these are the ones that make sense in a gateway's headers.
var substitutionVars = map[string]bool{
	"DOWNSTREAM_REMOTE_ADDRESS":                     false,
	"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT":        false,
	"DOWNSTREAM_REMOTE_PORT":                        false,
	"DOWNSTREAM_DIRECT_REMOTE_ADDRESS":              false,
	"DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT": false,
	"DOWNSTREAM_LOCAL_ADDRESS":                      false,
	"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":         false,
	"DOWNSTREAM_LOCAL_PORT":                         false,
	"REQUESTED_SERVER_NAME":                         false,
	"PROTOCOL":                                      false,
	"HOSTNAME":                                      false,
	"ROUTE_NAME":                                    false,
	"UPSTREAM_CLUSTER":                              false,
	"UPSTREAM_REMOTE_ADDRESS":                       false,
	"RESPONSE_CODE":                                 false,
	"START_TIME":                                    true,
	"REQ":                                           true,
	"RESP":                                          true,
}

// argRequired are the variables that need an argument.
var argRequired = map[string]bool{"REQ": true, "RESP": true}

// headerRules checks request and response header mutations.
func (c *checker) headerRules(path string, h HeaderRules, ids identitySet) {
	if h.Request != nil {
		c.headerMutations(fieldPath(path, "request"), *h.Request, ids)
	}
	if h.Response != nil {
		c.headerMutations(fieldPath(path, "response"), *h.Response, nil)
		for _, op := range []struct {
			name string
			vals []NamedValue
		}{{"add", h.Response.Add}, {"set", h.Response.Set}} {
			for _, v := range op.vals {
				if strings.EqualFold(v.Name, "server") {
					c.warnf(fieldPath(fieldPath(fieldPath(path, "response"), op.name), v.Name),
						"set `edge: {stripInternalHeaders: false}` on the gateway to keep it",
						"the Server header is removed from responses while the gateway strips internal headers (the default)")
				}
			}
		}
	}
}

// headerMutations checks one direction's add, set and remove; ids, when
// not nil, are the names it may not touch. A name may appear once across
// the three.
func (c *checker) headerMutations(path string, m HeaderMutations, ids identitySet) {
	seen := map[string]string{}
	check := func(p, name string) {
		c.mutableHeaderName(p, name, ids)
		lower := strings.ToLower(name)
		if first, ok := seen[lower]; ok {
			c.errorf(p, "keep one: add appends a value, set replaces the values, remove drops the header",
				"header %q is already changed at %s", lower, c.where(first))
			return
		}
		seen[lower] = p
	}
	for _, op := range []struct {
		name string
		vals []NamedValue
	}{{"add", m.Add}, {"set", m.Set}} {
		for _, v := range op.vals {
			p := fieldPath(fieldPath(path, op.name), v.Name)
			check(p, v.Name)
			c.headerValue(p, v.Value)
		}
	}
	for i, name := range m.Remove {
		check(indexPath(fieldPath(path, "remove"), i), name)
	}
}

// mutableHeaderName checks a header name the policy changes.
func (c *checker) mutableHeaderName(path, name string, ids identitySet) {
	lower := strings.ToLower(name)
	switch {
	case strings.HasPrefix(name, ":") || lower == "host":
		c.errorf(path, "use rewrite.host or rewrite.hostFromBackend for the Host, rewrite.pathPrefix or rewrite.pathRegex for the path",
			"header %q cannot be changed here", name)
	case strings.ContainsFunc(name, func(r rune) bool { return !isTokenRune(r) }):
		c.errorf(path, "use letters, digits and !#$%&'*+-.^_`|~ only", "invalid header name %q", name)
	case strings.HasPrefix(lower, "x-envoy-"):
		c.errorf(path, "use another name: Envoy reserves x-envoy-* and the gateway strips them from responses", "header %q is reserved for Envoy", lower)
	case ids[lower]:
		c.errorf(path, "remove it: the auth layer sets and strips the identity headers (auth.identityHeaders) itself, so no client or policy can forge them",
			"header %q is an identity header managed by the auth layer", lower)
	}
}

// headerValue checks a header value and its substitution variables.
func (c *checker) headerValue(path, v string) {
	switch {
	case len(v) > maxHeaderValue:
		c.errorf(path, fmt.Sprintf("shorten the value to at most %d bytes", maxHeaderValue), "header value is %d bytes long", len(v))
		return
	case strings.ContainsAny(v, "\r\n\x00"):
		c.errorf(path, "remove the line breaks and NUL bytes", "header value contains a line break or NUL")
		return
	}
	if problem := substitutionProblem(v); problem != "" {
		c.errorf(path, "use %% for a literal percent sign; known variables: "+strings.Join(knownVars(), ", "), "%s", problem)
	}
}

// substitutionProblem says what is wrong with the %VARIABLE% references
// in v, or "" if nothing. A variable is %NAME%, %NAME(arg)% (the argument
// may hold "%", as in %START_TIME(%s)%), either with a ":N" length.
func substitutionProblem(v string) string {
	for rest := v; ; {
		i := strings.IndexByte(rest, '%')
		if i < 0 {
			return ""
		}
		rest = rest[i+1:]
		if strings.HasPrefix(rest, "%") {
			rest = rest[1:]
			continue
		}
		n := strings.IndexFunc(rest, func(r rune) bool { return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') })
		if n < 0 {
			return `unterminated substitution variable: a "%" without its closing "%"`
		}
		name, arg, hasArg := rest[:n], "", false
		rest = rest[n:]
		if strings.HasPrefix(rest, "(") {
			end := strings.IndexByte(rest, ')')
			if end < 0 {
				return fmt.Sprintf("substitution variable %%%s%% has an unclosed \"(\"", name)
			}
			arg, hasArg, rest = rest[1:end], true, rest[end+1:]
		}
		j := strings.IndexByte(rest, '%')
		if j < 0 {
			return `unterminated substitution variable: a "%" without its closing "%"`
		}
		if tail := rest[:j]; tail != "" && !isLengthSuffix(tail) {
			return fmt.Sprintf("substitution variable %%%s%% is malformed near %q; write %%NAME%% or %%NAME(arg)%%", name, tail)
		}
		if p := variableProblem(name, arg, hasArg); p != "" {
			return p
		}
		rest = rest[j+1:]
	}
}

// variableProblem checks a variable's name and argument.
func variableProblem(name, arg string, hasArg bool) string {
	takesArg, known := substitutionVars[name]
	switch {
	case !known:
		return fmt.Sprintf("unknown substitution variable %%%s%%", name)
	case hasArg && !takesArg:
		return fmt.Sprintf("substitution variable %%%s%% takes no argument", name)
	case argRequired[name] && (!hasArg || arg == ""):
		return fmt.Sprintf("substitution variable %%%s%% needs an argument, e.g. %%%s(x-request-id)%%", name, name)
	}
	return ""
}

// isLengthSuffix reports whether s is ":N" with N decimal digits.
func isLengthSuffix(s string) bool {
	return len(s) > 1 && s[0] == ':' && isDigits(s[1:])
}

func knownVars() []string {
	out := make([]string, 0, len(substitutionVars))
	for k := range substitutionVars {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// queryRules checks query parameter mutations: names and values are sent
// as written, so they are limited to characters that need no escaping.
func (c *checker) queryRules(path string, m HeaderMutations) {
	seen := map[string]string{}
	check := func(p, name string) {
		if name == "" || strings.ContainsFunc(name, func(r rune) bool { return !isQueryRune(r) }) {
			c.errorf(p, "use letters, digits and -._~!$'()*+,;:@/? only", "invalid query parameter name %q", name)
		}
		if first, ok := seen[name]; ok {
			c.errorf(p, "keep one of add, set and remove per parameter", "query parameter %q is already changed at %s", name, c.where(first))
			return
		}
		seen[name] = p
	}
	for _, op := range []struct {
		name string
		vals []NamedValue
	}{{"add", m.Add}, {"set", m.Set}} {
		for _, v := range op.vals {
			p := fieldPath(fieldPath(path, op.name), v.Name)
			check(p, v.Name)
			if strings.ContainsFunc(v.Value, func(r rune) bool { return !isQueryRune(r) }) {
				c.errorf(p, "use letters, digits and -._~!$'()*+,;:@/? only (no spaces, &, = or %)", "invalid query parameter value %q", v.Value)
			}
		}
	}
	for i, name := range m.Remove {
		check(indexPath(fieldPath(path, "remove"), i), name)
	}
}

// isQueryRune reports whether r may appear unescaped in a query parameter
// name or value (RFC 3986 unreserved and sub-delims without & and =).
func isQueryRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("-._~!$'()*+,;:@/?", r)
}
