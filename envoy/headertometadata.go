package envoy

import (
	h2mv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_to_metadata/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// HeaderMetadata copies request header Header into dynamic metadata key
// Key of Namespace, as a string; with Value set, Value is written instead
// of the header's value (still only when the header is present). An
// absent or empty header writes nothing.
type HeaderMetadata struct {
	Header, Namespace, Key, Value string
}

// HeaderToMetadataFilter is a header_to_metadata filter named name that
// does nothing until a route configures it (HeaderToMetadataPerRoute).
// It writes all of a request's keys of one namespace in one metadata
// update, which costs less per request than one update per key.
func HeaderToMetadataFilter(name string) (*hcmv3.HttpFilter, error) {
	a, err := Any(&h2mv3.Config{})
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// HeaderToMetadataPerRoute is the route configuration of a
// header_to_metadata filter that copies rules, in order. Headers are left
// in the request.
func HeaderToMetadataPerRoute(rules []HeaderMetadata) *h2mv3.Config {
	out := make([]*h2mv3.Config_Rule, 0, len(rules))
	for _, r := range rules {
		out = append(out, &h2mv3.Config_Rule{
			Header: r.Header,
			OnHeaderPresent: &h2mv3.Config_KeyValuePair{
				MetadataNamespace: r.Namespace, Key: r.Key, Value: r.Value, Type: h2mv3.Config_STRING,
			},
		})
	}
	return &h2mv3.Config{RequestRules: out}
}
