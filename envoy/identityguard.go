package envoy

import (
	"fmt"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	setfilterstatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/set_filter_state/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	httpsetfilterstatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_filter_state/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// IdentityGuardName is the name of the identity guard: a second header
// mutation filter, after the Lua filter, with a name of its own so that
// routes can turn it off without touching the first one.
// IdentitySnapshotName is the set_filter_state filter right before the Lua
// filter that copies ext_authz's identity metadata into filter state, which
// a Lua script cannot write (it can write any namespace of the dynamic
// metadata, ext_authz's included, so the guard must not read from there).
const (
	IdentityGuardName    = "tollgate.identity_guard"
	IdentitySnapshotName = "tollgate.identity_snapshot"
	// identityStatePrefix prefixes the snapshot's filter state keys.
	identityStatePrefix = "tollgate.identity."
	// stringFactory creates a generic string filter state object.
	stringFactory = "envoy.string"
)

// IdentitySnapshot returns the set_filter_state config that stores each
// source's metadata value (namespace ExtAuthzName), before Lua runs, as the
// string filter state object "tollgate.identity.<key>": an empty string
// when the key is absent (public route) or empty.
func IdentitySnapshot(sources []IdentityHeaderSource) *httpsetfilterstatev3.Config {
	values := make([]*setfilterstatev3.FilterStateValue, 0, len(sources))
	for _, s := range sources {
		values = append(values, &setfilterstatev3.FilterStateValue{
			Key:        &setfilterstatev3.FilterStateValue_ObjectKey{ObjectKey: identityStatePrefix + s.MetadataKey},
			FactoryKey: stringFactory,
			Value: &setfilterstatev3.FilterStateValue_FormatString{FormatString: &corev3.SubstitutionFormatString{
				Format: &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corev3.DataSource{
					Specifier: &corev3.DataSource_InlineString{InlineString: fmt.Sprintf("%%DYNAMIC_METADATA(%s:%s)%%", ExtAuthzName, s.MetadataKey)},
				}}, // text_format is deprecated in Envoy 1.40
				OmitEmptyValues: true,
			}},
		})
	}
	return &httpsetfilterstatev3.Config{OnRequestHeaders: values}
}

// IdentitySnapshotFilter wraps IdentitySnapshot(sources) as the HTTP filter
// named IdentitySnapshotName. Put it right before the Lua filter.
func IdentitySnapshotFilter(sources []IdentityHeaderSource) (*hcmv3.HttpFilter, error) {
	a, err := Any(IdentitySnapshot(sources))
	if err != nil {
		return nil, fmt.Errorf("identity snapshot filter: %w", err)
	}
	return &hcmv3.HttpFilter{Name: IdentitySnapshotName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// IdentityHeaderSource is one identity header and the key of the ext_authz
// filter's dynamic metadata (namespace ExtAuthzName) that holds its value.
type IdentityHeaderSource struct {
	Header      string
	MetadataKey string
}

// IdentityGuard returns the header mutation config that first removes every
// header in sources, whatever set it, then sets each from the identity
// snapshot (IdentitySnapshot: ext_authz's metadata as it was before Lua)
// with Envoy's substitution formatter. When the metadata key was absent or
// empty (a public route, or a caller without that attribute) the formatted
// value is empty and, keep_empty_value being false, the header is not
// added: the upstream sees no header rather than an empty one.
func IdentityGuard(sources []IdentityHeaderSource) *headermutationv3.HeaderMutation {
	ms := make([]*mutationrulesv3.HeaderMutation, 0, 2*len(sources))
	for _, s := range sources {
		ms = append(ms, &mutationrulesv3.HeaderMutation{Action: &mutationrulesv3.HeaderMutation_Remove{Remove: s.Header}})
	}
	for _, s := range sources {
		ms = append(ms, &mutationrulesv3.HeaderMutation{Action: &mutationrulesv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{
			Header:         &corev3.HeaderValue{Key: s.Header, Value: "%FILTER_STATE(" + identityStatePrefix + s.MetadataKey + ":PLAIN)%"},
			AppendAction:   corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
			KeepEmptyValue: false,
		}}})
	}
	return &headermutationv3.HeaderMutation{Mutations: &headermutationv3.Mutations{RequestMutations: ms}}
}

// IdentityGuardFilter wraps IdentityGuard(sources) as the HTTP filter named
// IdentityGuardName. Put it right after the Lua filter.
func IdentityGuardFilter(sources []IdentityHeaderSource) (*hcmv3.HttpFilter, error) {
	a, err := Any(IdentityGuard(sources))
	if err != nil {
		return nil, fmt.Errorf("identity guard filter: %w", err)
	}
	return &hcmv3.HttpFilter{Name: IdentityGuardName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// FilterDisabled is the generic per-route config that turns off the HTTP
// filter it is keyed by on a route (for filters, such as header_mutation,
// whose own per-route config cannot).
func FilterDisabled() *routev3.FilterConfig {
	return &routev3.FilterConfig{Disabled: true}
}
