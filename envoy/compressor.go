package envoy

import (
	"fmt"
	"regexp"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	brotliv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/brotli/compressor/v3"
	gzipv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/gzip/compressor/v3"
	compressorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/compressor/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Compression libraries.
const (
	CompressionBrotli = "brotli"
	CompressionGzip   = "gzip"
)

// CompressorName is the conventional name of the compressor HTTP filter;
// a gateway with several compressor instances names each
// CompressorName + "." + algorithm + "." + a settings id.
const CompressorName = "envoy.filters.http.compressor"

// CompressorOptions is one compressor filter instance.
type CompressorOptions struct {
	// Name of the HTTP filter (per-route configs are keyed by it).
	Name string
	// Algorithm is CompressionBrotli or CompressionGzip.
	Algorithm string
	// MinLength: smaller responses are sent as they are.
	MinLength uint32
	// ContentTypes that are compressed; empty means Envoy's default list
	// (text/html, text/plain, text/css, application/javascript,
	// application/json, application/xml, image/svg+xml and a few more).
	ContentTypes []string
	// ChooseFirst prefers this algorithm when Accept-Encoding gives two the
	// same q-value.
	ChooseFirst bool
}

// CompressorFilter returns a compressor HTTP filter for o. It compresses
// responses only (never requests), honouring the request's
// Accept-Encoding (request compression is off by default).
func CompressorFilter(o CompressorOptions) (*hcmv3.HttpFilter, error) {
	var lib proto.Message
	var libName string
	switch o.Algorithm {
	case CompressionBrotli:
		lib, libName = &brotliv3.Brotli{}, "envoy.compression.brotli.compressor"
	case CompressionGzip:
		lib, libName = &gzipv3.Gzip{}, "envoy.compression.gzip.compressor"
	default:
		return nil, fmt.Errorf("compressor %q: unknown algorithm %q", o.Name, o.Algorithm)
	}
	cfg := &compressorv3.Compressor{
		CompressorLibrary: &corev3.TypedExtensionConfig{Name: libName, TypedConfig: MustAny(lib)},
		ResponseDirectionConfig: &compressorv3.Compressor_ResponseDirectionConfig{
			CommonConfig: &compressorv3.Compressor_CommonDirectionConfig{
				MinContentLength:   wrapperspb.UInt32(o.MinLength),
				ContentTypeMatcher: contentTypeMatchers(o.ContentTypes),
			},
		},
		ChooseFirst: o.ChooseFirst,
	}
	a, err := Any(cfg)
	if err != nil {
		return nil, fmt.Errorf("compressor %q: %w", o.Name, err)
	}
	return &hcmv3.HttpFilter{Name: o.Name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// CompressorPerRouteDisabled is the per-route config that turns a
// compressor filter off.
func CompressorPerRouteDisabled() *compressorv3.CompressorPerRoute {
	return &compressorv3.CompressorPerRoute{Override: &compressorv3.CompressorPerRoute_Disabled{Disabled: true}}
}

// contentTypeMatchers matches each media type, with or without parameters
// ("application/json" matches "application/json; charset=utf-8"): Envoy
// matches the whole Content-Type value.
func contentTypeMatchers(types []string) []*matcherv3.StringMatcher {
	var out []*matcherv3.StringMatcher
	for _, t := range types {
		out = append(out, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{
			SafeRegex: SafeRegex(regexp.QuoteMeta(t) + `(\s*;.*)?`),
		}})
	}
	return out
}
