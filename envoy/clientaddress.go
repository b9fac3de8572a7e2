package envoy

import (
	"fmt"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// clientAddressFormat is Envoy's trusted client address without the port:
// the stream's downstream remote address, which the connection manager
// derives with use_remote_address and xff_num_trusted_hops (or the PROXY
// protocol). The ratelimit filter's remote_address action
// (RateLimitActionRemoteAddress) reads that very address, printed the same
// way, whereas ext_authz's attributes.source.address is the TCP peer.
const clientAddressFormat = "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"

// SetClientAddressHeader adds to f, a header mutation filter (as
// HeaderMutationFilter and EdgeHeaderMutationFilter build it), the request
// mutations that remove every copy of header name a client sent and then
// set it to Envoy's trusted client address, so that a later filter (the
// ext_authz service) reads the same client IP as the remote_address
// rate-limit action. A non-IP address is not added (the action skips it
// too). It fails when f is not a header mutation filter.
func SetClientAddressHeader(f *hcmv3.HttpFilter, name string) error {
	cfg := &headermutationv3.HeaderMutation{}
	if err := f.GetTypedConfig().UnmarshalTo(cfg); err != nil {
		return fmt.Errorf("client address header: filter %q: %w", f.GetName(), err)
	}
	if cfg.Mutations == nil {
		cfg.Mutations = &headermutationv3.Mutations{}
	}
	cfg.Mutations.RequestMutations = append(cfg.Mutations.RequestMutations,
		&mutationrulesv3.HeaderMutation{Action: &mutationrulesv3.HeaderMutation_Remove{Remove: name}},
		&mutationrulesv3.HeaderMutation{Action: &mutationrulesv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: name, Value: clientAddressFormat},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}}})
	a, err := Any(cfg)
	if err != nil {
		return fmt.Errorf("client address header: %w", err)
	}
	f.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}
	return nil
}
