package policy

// RouteHTTP is what a route changes on the request and the response,
// and how it answers without a backend. Nil fields change nothing.
type RouteHTTP struct {
	Headers *HeaderRules
	Query   *HeaderMutations
	// DirectResponse and Redirect answer the route without a backend.
	DirectResponse *DirectResponse
	Redirect       *Redirect
	// CORS and Compression replace the gateway's; Disabled turns it off.
	CORS        *CORS
	Compression *Compression
	// Lua is an inline Lua script for this route only.
	Lua string
}

// GatewayHTTP is a gateway's header mutations, CORS policy and
// compression (for every route that sets none) and its edge hardening.
type GatewayHTTP struct {
	Headers     *HeaderRules
	CORS        *CORS
	Compression *Compression
	Edge        *Edge
}

// HeaderRules are request and response header mutations.
type HeaderRules struct {
	Request  *HeaderMutations
	Response *HeaderMutations
}

// HeaderMutations adds (appends), sets (replaces) and removes headers or
// query parameters; Add and Set keep the YAML order.
type HeaderMutations struct {
	Add    []NamedValue
	Set    []NamedValue
	Remove []string
}

// NamedValue is one entry of a name: value mapping.
type NamedValue struct {
	Name  string
	Value string
}

// DirectResponse answers with Status and Body.
type DirectResponse struct {
	Status int
	Body   string
}

// Redirect answers with a redirect; Status 0 means 301.
type Redirect struct {
	Scheme     string
	Host       string
	Port       int
	Path       string
	PathPrefix string
	StripQuery bool
	Status     int
}

// CORS is a CORS policy; Disabled is `cors: none`.
type CORS struct {
	Disabled           bool
	AllowOrigins       []string
	AllowOriginRegexes []string
	AllowMethods       []string
	AllowHeaders       []string
	ExposeHeaders      []string
	AllowCredentials   bool
	MaxAge             string
}

// Compression is response compression; Disabled is `compression: none`.
// MinLength nil means DefaultCompressionMinLength, Algorithms nil both.
type Compression struct {
	Disabled     bool
	Algorithms   []string
	MinLength    *int
	ContentTypes []string
}

// Edge is a gateway's edge hardening; nil fields take the defaults.
type Edge struct {
	XFFTrustedHops        *int
	StripInternalHeaders  *bool
	MaxRequestHeadersKB   *int
	MaxHeadersCount       *int
	RequestHeadersTimeout string
	StreamIdleTimeout     string
	IdleTimeout           string
}
