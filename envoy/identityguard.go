package envoy

import (
	"fmt"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// IdentityGuardName is the name of the identity guard: a second header
// mutation filter, after the Lua filter, with a name of its own so that
// routes can turn it off without touching the first one.
const IdentityGuardName = "tollgate.identity_guard"

// IdentityHeaderSource is one identity header and the key of the ext_authz
// filter's dynamic metadata (namespace ExtAuthzName) that holds its value.
type IdentityHeaderSource struct {
	Header      string
	MetadataKey string
}

// IdentityGuard returns the header mutation config that first removes every
// header in sources, whatever set it, then sets each from the ext_authz
// filter's dynamic metadata with Envoy's substitution formatter. When the
// metadata key is absent or empty (a public route, or a caller without that
// attribute) the formatted value is empty and, keep_empty_value being
// false, the header is not added: the upstream sees no header rather than
// an empty one.
func IdentityGuard(sources []IdentityHeaderSource) *headermutationv3.HeaderMutation {
	ms := make([]*mutationrulesv3.HeaderMutation, 0, 2*len(sources))
	for _, s := range sources {
		ms = append(ms, &mutationrulesv3.HeaderMutation{Action: &mutationrulesv3.HeaderMutation_Remove{Remove: s.Header}})
	}
	for _, s := range sources {
		ms = append(ms, &mutationrulesv3.HeaderMutation{Action: &mutationrulesv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{
			Header:         &corev3.HeaderValue{Key: s.Header, Value: fmt.Sprintf("%%DYNAMIC_METADATA(%s:%s)%%", ExtAuthzName, s.MetadataKey)},
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
