package envoy

import (
	"strconv"
	"strings"
	"time"

	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// CORSName is the name of the CORS HTTP filter; per-route CorsPolicy
// configs are keyed by it.
const CORSName = "envoy.filters.http.cors"

// CORSOptions is one CORS policy.
type CORSOptions struct {
	// AllowOrigins match exactly; "*" allows any origin.
	AllowOrigins []string
	// AllowOriginRegexes match the whole origin (RE2).
	AllowOriginRegexes []string
	AllowMethods       []string
	AllowHeaders       []string
	ExposeHeaders      []string
	AllowCredentials   bool
	// MaxAge is how long a browser may cache a preflight; 0 leaves it out.
	MaxAge time.Duration
}

// CORSFilter returns the CORS HTTP filter. Its config is empty: routes
// carry their policy (CORSPolicy) as per-route config, and a route without
// one is not touched. Put it before any authentication filter so Envoy
// answers preflights itself.
func CORSFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: CORSName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: MustAny(&corsv3.Cors{})}}
}

// CORSPolicy returns the per-route CORS policy for o. Preflights from an
// origin the policy does not allow are answered by Envoy too (without CORS
// headers), never forwarded upstream.
func CORSPolicy(o CORSOptions) *corsv3.CorsPolicy {
	p := &corsv3.CorsPolicy{
		AllowMethods:                 strings.Join(o.AllowMethods, ","),
		AllowHeaders:                 strings.Join(o.AllowHeaders, ","),
		ExposeHeaders:                strings.Join(o.ExposeHeaders, ","),
		AllowCredentials:             wrapperspb.Bool(o.AllowCredentials),
		ForwardNotMatchingPreflights: wrapperspb.Bool(false),
	}
	if o.MaxAge > 0 {
		p.MaxAge = strconv.FormatInt(int64(o.MaxAge/time.Second), 10)
	}
	for _, origin := range o.AllowOrigins {
		p.AllowOriginStringMatch = append(p.AllowOriginStringMatch,
			&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: origin}})
	}
	for _, re := range o.AllowOriginRegexes {
		p.AllowOriginStringMatch = append(p.AllowOriginStringMatch,
			&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: SafeRegex(re)}})
	}
	return p
}
