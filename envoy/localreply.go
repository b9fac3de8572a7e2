package envoy

import (
	"fmt"
	"maps"
	"slices"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	celv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// LocalReplyRewrite rewrites the local replies (answers Envoy's filters
// make themselves, never an upstream's) whose response code details start
// with DetailsPrefix and contain DetailsContain (when not empty).
type LocalReplyRewrite struct {
	DetailsPrefix, DetailsContain string
	// Condition, when set, is a further CEL expression the reply must
	// match (e.g. on request.headers).
	Condition string
	// Status replaces the status; 0 keeps it.
	Status uint32
	// Body replaces the body, sent with ContentType. It is a substitution
	// format string: '%' starts a command operator such as
	// %RESP(retry-after)% (write %% for a literal '%').
	Body, ContentType string
	// Headers are set on the reply, replacing any value a filter set.
	Headers map[string]string
}

// LocalReplyConfig returns the HTTP connection manager's local reply
// mappers, in order (the first match wins). Each matches with a CEL
// expression on response.code_details, which only local replies have.
func LocalReplyConfig(rewrites []LocalReplyRewrite) (*hcmv3.LocalReplyConfig, error) {
	out := &hcmv3.LocalReplyConfig{}
	for _, r := range rewrites {
		m, err := localReplyMapper(r)
		if err != nil {
			return nil, err
		}
		out.Mappers = append(out.Mappers, m)
	}
	return out, nil
}

func localReplyMapper(r LocalReplyRewrite) (*hcmv3.ResponseMapper, error) {
	expr := fmt.Sprintf("response.code_details.startsWith(%q)", r.DetailsPrefix)
	if r.DetailsContain != "" {
		expr += fmt.Sprintf(" && response.code_details.contains(%q)", r.DetailsContain)
	}
	if r.Condition != "" {
		expr += " && (" + r.Condition + ")"
	}
	cel, err := Any(&celv3.ExpressionFilter{Expression: expr})
	if err != nil {
		return nil, fmt.Errorf("local reply filter: %w", err)
	}
	m := &hcmv3.ResponseMapper{Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ExtensionFilter{
		ExtensionFilter: &accesslogv3.ExtensionFilter{Name: "envoy.access_loggers.extension_filters.cel",
			ConfigType: &accesslogv3.ExtensionFilter_TypedConfig{TypedConfig: cel}},
	}}}
	if r.Status != 0 {
		m.StatusCode = wrapperspb.UInt32(r.Status)
	}
	if r.Body != "" {
		m.BodyFormatOverride = &corev3.SubstitutionFormatString{
			Format: &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corev3.DataSource{
				Specifier: &corev3.DataSource_InlineString{InlineString: r.Body}}},
			ContentType: r.ContentType,
		}
	}
	for _, k := range sortedKeys(r.Headers) {
		m.HeadersToAdd = append(m.HeadersToAdd, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: k, Value: r.Headers[k]},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	return m, nil
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
