package envoy

import (
	"fmt"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// HeaderMutationName is the conventional name of the header mutation HTTP
// filter.
const HeaderMutationName = "envoy.filters.http.header_mutation"

// HeaderMutation returns a header mutation filter config that removes every
// header in removeRequestHeaders from each request, on every route, before
// the filters after it run. Names are lower-cased, sorted and deduplicated.
func HeaderMutation(removeRequestHeaders ...string) *headermutationv3.HeaderMutation {
	names := headerNames(removeRequestHeaders)
	mutations := make([]*mutationrulesv3.HeaderMutation, 0, len(names))
	for _, n := range names {
		mutations = append(mutations, &mutationrulesv3.HeaderMutation{
			Action: &mutationrulesv3.HeaderMutation_Remove{Remove: n},
		})
	}
	return &headermutationv3.HeaderMutation{
		Mutations: &headermutationv3.Mutations{RequestMutations: mutations},
	}
}

// HeaderMutationFilter wraps HeaderMutation(removeRequestHeaders...) as the
// HTTP filter named HeaderMutationName. Put it first in the chain so that no
// later filter, and no upstream, sees a client-supplied value of those
// headers. It fails only if a name cannot be marshalled (invalid UTF-8).
func HeaderMutationFilter(removeRequestHeaders ...string) (*hcmv3.HttpFilter, error) {
	a, err := Any(HeaderMutation(removeRequestHeaders...))
	if err != nil {
		return nil, fmt.Errorf("header mutation filter: %w", err)
	}
	return &hcmv3.HttpFilter{
		Name:       HeaderMutationName,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a},
	}, nil
}
