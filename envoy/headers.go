package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// Header is a header (or query parameter) name and value. Values of
// headers may hold Envoy substitution variables (%DOWNSTREAM_REMOTE_ADDRESS%).
type Header struct {
	Name  string
	Value string
}

// HeaderChanges are the header mutations of one direction: Add appends a
// value, Set replaces any existing values, Remove drops headers.
type HeaderChanges struct {
	Add    []Header
	Set    []Header
	Remove []string
}

// HeaderValueOptions returns Envoy's headers_to_add for c: Add entries
// append (APPEND_IF_EXISTS_OR_ADD), Set entries overwrite
// (OVERWRITE_IF_EXISTS_OR_ADD), in that order.
func HeaderValueOptions(c HeaderChanges) []*corev3.HeaderValueOption {
	if len(c.Add)+len(c.Set) == 0 {
		return nil
	}
	out := make([]*corev3.HeaderValueOption, 0, len(c.Add)+len(c.Set))
	for _, h := range c.Add {
		out = append(out, headerValueOption(h, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD))
	}
	for _, h := range c.Set {
		out = append(out, headerValueOption(h, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD))
	}
	return out
}

func headerValueOption(h Header, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: h.Name, Value: h.Value},
		AppendAction: action,
	}
}

// SetRouteHeaders sets r's request and response header mutations. Route
// level mutations are applied after the route table's when the table has
// most_specific_header_mutations_wins (see SetRouteConfigurationHeaders).
func SetRouteHeaders(r *routev3.Route, request, response HeaderChanges) {
	r.RequestHeadersToAdd = HeaderValueOptions(request)
	r.RequestHeadersToRemove = request.Remove
	r.ResponseHeadersToAdd = HeaderValueOptions(response)
	r.ResponseHeadersToRemove = response.Remove
}

// SetRouteConfigurationHeaders sets rc's request and response header
// mutations, applied to every route, and makes the more specific (route)
// mutations win over them.
// Mutations rc already has are kept, before these.
func SetRouteConfigurationHeaders(rc *routev3.RouteConfiguration, request, response HeaderChanges) {
	rc.RequestHeadersToAdd = append(rc.RequestHeadersToAdd, HeaderValueOptions(request)...)
	rc.RequestHeadersToRemove = append(rc.RequestHeadersToRemove, request.Remove...)
	rc.ResponseHeadersToAdd = append(rc.ResponseHeadersToAdd, HeaderValueOptions(response)...)
	rc.ResponseHeadersToRemove = append(rc.ResponseHeadersToRemove, response.Remove...)
	rc.MostSpecificHeaderMutationsWins = true
}
