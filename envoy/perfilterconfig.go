package envoy

import (
	"fmt"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// SetRouteFilterConfig sets r's per-route config of the HTTP filter named
// filterName (the filter's name in the HTTP connection manager, not its
// type: Envoy looks per-route configs up by name) to cfg, replacing any
// earlier one. It fails only if cfg cannot be marshalled.
func SetRouteFilterConfig(r *routev3.Route, filterName string, cfg proto.Message) error {
	a, err := Any(cfg)
	if err != nil {
		return fmt.Errorf("route %q: config of filter %q: %w", r.GetName(), filterName, err)
	}
	if r.TypedPerFilterConfig == nil {
		r.TypedPerFilterConfig = map[string]*anypb.Any{}
	}
	r.TypedPerFilterConfig[filterName] = a
	return nil
}
