package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// SetRouteFilterMetadata sets string fields of the route's metadata under
// filter (its filter_metadata key): a Lua filter named filter reads them
// with h:metadata(), and CEL expressions as
// xds.route_metadata.filter_metadata[filter].
func SetRouteFilterMetadata(r *routev3.Route, filter string, fields map[string]string) {
	if r.Metadata == nil {
		r.Metadata = &corev3.Metadata{}
	}
	if r.Metadata.FilterMetadata == nil {
		r.Metadata.FilterMetadata = map[string]*structpb.Struct{}
	}
	st := r.Metadata.FilterMetadata[filter]
	if st == nil {
		st = &structpb.Struct{Fields: map[string]*structpb.Value{}}
		r.Metadata.FilterMetadata[filter] = st
	}
	for k, v := range fields {
		st.Fields[k] = structpb.NewStringValue(v)
	}
}
