package envoy

import (
	"slices"
	"sync"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestAnyTypesSharedIsPlain: an AnyTypes that several goroutines extend at
// once, each from another root, answers fieldsToAny for every reachable
// type as an analysis of its own (anyTypes) does.
func TestAnyTypesSharedIsPlain(t *testing.T) {
	roots := []proto.Message{
		&bootstrapv3.Bootstrap{}, &listenerv3.Listener{}, &clusterv3.Cluster{},
		&routev3.RouteConfiguration{}, &hcmv3.HttpConnectionManager{}, &routev3.Route{},
	}
	shared := &AnyTypes{}
	var wg sync.WaitGroup
	for _, root := range roots {
		wg.Go(func() {
			for _, d := range reachable(root.ProtoReflect().Descriptor()) {
				shared.fieldsToAny(d)
			}
		})
	}
	wg.Wait()
	for _, root := range roots {
		alone := anyTypes{}
		for name, d := range reachable(root.ProtoReflect().Descriptor()) {
			got, want := names(shared.fieldsToAny(d)), names(alone.fieldsToAny(d))
			if !slices.Equal(got, want) {
				t.Errorf("%s: shared fieldsToAny = %v, alone %v", name, got, want)
			}
		}
	}
}

func names(fds []protoreflect.FieldDescriptor) []protoreflect.FullName {
	var out []protoreflect.FullName
	for _, fd := range fds {
		out = append(out, fd.FullName())
	}
	return out
}
