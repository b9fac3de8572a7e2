package ir

import "time"

// RouteHTTP is what a route changes on the request and the response,
// and how it answers without a backend. The zero value changes nothing.
type RouteHTTP struct {
	// Headers are the route's header mutations; they apply after (and so
	// win over) the gateway's.
	Headers HeaderRules `json:"headers,omitzero"`
	// Query holds the query parameter mutations of the request.
	Query QueryRules `json:"query,omitzero"`
	// RegexRewrite rewrites the path by regex; exclusive with RewritePrefix.
	RegexRewrite *RegexRewrite `json:"regexRewrite,omitempty"`
	// HostRewrite replaces the Host header with a literal value.
	HostRewrite string `json:"hostRewrite,omitempty"`
	// AutoHostRewrite replaces the Host header with the chosen endpoint's
	// host name ("ip:port" for IP endpoints).
	AutoHostRewrite bool `json:"autoHostRewrite,omitempty"`
	// DirectResponse answers the route itself; Backend is then empty.
	DirectResponse *DirectResponse `json:"directResponse,omitempty"`
	// Redirect answers with a redirect; Backend is then empty.
	Redirect *Redirect `json:"redirect,omitempty"`
	// CORS is the route's effective CORS policy (its own or the gateway's);
	// nil means no CORS handling.
	CORS *CORS `json:"cors,omitempty"`
	// Compression is the route's effective response compression (its own
	// or the gateway's); nil means none.
	Compression *Compression `json:"compression,omitempty"`
	// Lua is an inline Lua script run on this route only.
	Lua string `json:"lua,omitempty"`
}

// HeaderRules are request and response header mutations.
type HeaderRules struct {
	Request  HeaderMutations `json:"request,omitzero"`
	Response HeaderMutations `json:"response,omitzero"`
}

// HeaderMutations adds, sets and removes headers. Names are lower case;
// Add and Set are sorted by name, Remove is sorted. Values may hold Envoy
// substitution variables (%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%).
type HeaderMutations struct {
	// Add appends a value, keeping existing ones.
	Add []HeaderValue `json:"add,omitempty"`
	// Set replaces existing values (or adds the header).
	Set    []HeaderValue `json:"set,omitempty"`
	Remove []string      `json:"remove,omitempty"`
}

// HeaderValue is one header name and value.
type HeaderValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// QueryRules add, set and remove query parameters of the request. Add and
// Set are sorted by name, Remove is sorted.
type QueryRules struct {
	Add    []HeaderValue `json:"add,omitempty"`
	Set    []HeaderValue `json:"set,omitempty"`
	Remove []string      `json:"remove,omitempty"`
}

// Empty reports whether q changes nothing.
func (q QueryRules) Empty() bool { return len(q.Add)+len(q.Set)+len(q.Remove) == 0 }

// RegexRewrite replaces the matches of Pattern (RE2) in the path with
// Substitution (\1-style group references allowed).
type RegexRewrite struct {
	Pattern      string `json:"pattern"`
	Substitution string `json:"substitution"`
}

// DirectResponse is a fixed answer.
type DirectResponse struct {
	Status uint32 `json:"status"`
	Body   string `json:"body,omitempty"`
}

// Redirect answers with a redirect to the same URL with the given parts
// replaced. Status is 301, 302, 303, 307 or 308.
type Redirect struct {
	Scheme string `json:"scheme,omitempty"`
	Host   string `json:"host,omitempty"`
	Port   uint32 `json:"port,omitempty"`
	// Path replaces the whole path; PathPrefix only the matched prefix.
	Path       string `json:"path,omitempty"`
	PathPrefix string `json:"pathPrefix,omitempty"`
	StripQuery bool   `json:"stripQuery,omitempty"`
	Status     uint32 `json:"status"`
}

// CORS is a CORS policy answered by Envoy. Origins match exactly
// (AllowOrigins) or by whole-string RE2 regex (AllowOriginRegexes); both
// sorted. Methods and headers are sorted; MaxAge 0 leaves it unset.
type CORS struct {
	AllowOrigins       []string      `json:"allowOrigins,omitempty"`
	AllowOriginRegexes []string      `json:"allowOriginRegexes,omitempty"`
	AllowMethods       []string      `json:"allowMethods,omitempty"`
	AllowHeaders       []string      `json:"allowHeaders,omitempty"`
	ExposeHeaders      []string      `json:"exposeHeaders,omitempty"`
	AllowCredentials   bool          `json:"allowCredentials,omitempty"`
	MaxAge             time.Duration `json:"maxAge,omitempty"`
}

// Compression algorithms.
const (
	Brotli = "brotli"
	Gzip   = "gzip"
)

// Compression compresses responses with Algorithms (sorted; Envoy picks by
// the request's Accept-Encoding, brotli first on a tie) when the response
// is at least MinLength bytes and its content type is one of ContentTypes
// (sorted; empty means Envoy's default list of text types).
type Compression struct {
	Algorithms   []string `json:"algorithms"`
	MinLength    uint32   `json:"minLength"`
	ContentTypes []string `json:"contentTypes,omitempty"`
}

// GatewayHTTP is a gateway's own header mutations, applied on every
// route (before the route's, which win).
type GatewayHTTP struct {
	Headers HeaderRules `json:"headers,omitzero"`
}

// Edge is the gateway's edge hardening. Compile fills every default, so
// the IR says what Envoy does.
type Edge struct {
	// XFFTrustedHops is how many X-Forwarded-For entries (from the right)
	// come from trusted proxies in front of Envoy; 0 means the connection's
	// peer is the client.
	XFFTrustedHops uint32 `json:"xffTrustedHops"`
	// StripInternalHeaders removes Server and x-envoy-* from responses.
	StripInternalHeaders bool `json:"stripInternalHeaders"`
	// MaxRequestHeadersKB bounds the size of a request's headers.
	MaxRequestHeadersKB uint32 `json:"maxRequestHeadersKb"`
	// MaxHeadersCount bounds the number of request headers.
	MaxHeadersCount uint32 `json:"maxHeadersCount"`
	// RequestHeadersTimeout bounds receiving a request's headers.
	RequestHeadersTimeout time.Duration `json:"requestHeadersTimeout"`
	// StreamIdleTimeout bounds a stream with no activity.
	StreamIdleTimeout time.Duration `json:"streamIdleTimeout"`
	// IdleTimeout closes a downstream connection without streams.
	IdleTimeout time.Duration `json:"idleTimeout"`
}

// NeedsCORS reports whether a route of the gateway has a CORS policy.
func (g *Gateway) NeedsCORS() bool {
	return g.anyRoute(func(r *Route) bool { return r.HTTP != nil && r.HTTP.CORS != nil })
}

// NeedsLua reports whether a route of the gateway runs a Lua script.
func (g *Gateway) NeedsLua() bool {
	return g.anyRoute(func(r *Route) bool { return r.HTTP != nil && r.HTTP.Lua != "" })
}

// anyRoute reports whether f holds for a route of the gateway.
func (g *Gateway) anyRoute(f func(r *Route) bool) bool {
	for i := range g.VirtualHosts {
		for j := range g.VirtualHosts[i].Routes {
			if f(&g.VirtualHosts[i].Routes[j]) {
				return true
			}
		}
	}
	return false
}

// EachRoute calls f on every route of the gateway (a route in several
// virtual hosts once per host).
func (g *Gateway) EachRoute(f func(r *Route)) {
	g.anyRoute(func(r *Route) bool { f(r); return false })
}
