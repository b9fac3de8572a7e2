package envoy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		msg     func(t *testing.T) proto.Message
		wantErr []string // substrings; empty means valid
	}{
		{
			name: "valid listener",
			msg:  func(t *testing.T) proto.Message { return hcmListener(t, HTTPConnectionManager("http", "http")) },
		},
		{
			name: "top-level PGV failure",
			msg: func(*testing.T) proto.Message {
				return EDSCluster("", "", 0, clusterv3.Cluster_ROUND_ROBIN) // name is required
			},
			wantErr: []string{"Cluster.Name"},
		},
		{
			name: "PGV failure inside an Any",
			msg: func(t *testing.T) proto.Message {
				return hcmListener(t, HTTPConnectionManager("", "http"))
			},
			wantErr: []string{"filter_chains[0].filters[0].typed_config<envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager>", "StatPrefix"},
		},
		{
			name: "PGV failure inside an Any inside an Any",
			msg: func(t *testing.T) proto.Message {
				hcm := HTTPConnectionManager("http", "http")
				hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: RouteConfiguration("inline",
					&routev3.VirtualHost{Name: "v", Domains: []string{"*"}, TypedPerFilterConfig: map[string]*anypb.Any{
						"bad": MustAny(&httpv3.HttpProtocolOptions{}), // upstream_protocol_options is required
					}})}
				return hcmListener(t, hcm)
			},
			wantErr: []string{`route_config.virtual_hosts[0].typed_per_filter_config["bad"]<envoy.extensions.upstreams.http.v3.HttpProtocolOptions>`, "UpstreamProtocolOptions"},
		},
		{
			name: "PGV failure in a map of Any",
			msg: func(*testing.T) proto.Message {
				c := EDSCluster("c", "", 0, clusterv3.Cluster_ROUND_ROBIN)
				c.TypedExtensionProtocolOptions = map[string]*anypb.Any{HTTPProtocolOptionsName: MustAny(&httpv3.HttpProtocolOptions{})}
				return c
			},
			wantErr: []string{`typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]`},
		},
		{
			name: "unknown Any type",
			msg: func(*testing.T) proto.Message {
				c := EDSCluster("c", "", 0, clusterv3.Cluster_ROUND_ROBIN)
				c.TypedExtensionProtocolOptions = map[string]*anypb.Any{"x": {TypeUrl: "type.googleapis.com/no.Such"}}
				return c
			},
			wantErr: []string{"unknown type type.googleapis.com/no.Such"},
		},
	}
	shared := &AnyTypes{} // what one case's Validator learns serves the next
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := tt.msg(t)
			err := Validate(msg)
			if serr := NewValidatorWith(shared).Validate(msg); fmt.Sprint(serr) != fmt.Sprint(err) {
				t.Errorf("with shared AnyTypes: %v; alone: %v", serr, err)
			}
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: no error, want %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate error %q\ndoes not contain %q", err, want)
				}
			}
		})
	}
}

// hcmListener returns a listener with hcm as its only network filter.
func hcmListener(t *testing.T, hcm *hcmv3.HttpConnectionManager) *listenerv3.Listener {
	t.Helper()
	f, err := HTTPConnectionManagerFilter(hcm)
	if err != nil {
		t.Fatal(err)
	}
	return Listener("http", "0.0.0.0", 8080, f)
}

// TestFieldsToAny compares the pruning analysis with a naive fixed point
// over every type reachable from a few roots (whose type graphs have cycles).
func TestFieldsToAny(t *testing.T) {
	roots := []proto.Message{
		&bootstrapv3.Bootstrap{}, &listenerv3.Listener{}, &clusterv3.Cluster{},
		&routev3.RouteConfiguration{}, &hcmv3.HttpConnectionManager{},
	}
	types := anyTypes{}
	for _, root := range roots {
		md := root.ProtoReflect().Descriptor()
		want := naiveLeadsToAny(md)
		for name, d := range reachable(md) {
			var wantFields []protoreflect.FullName
			for i := range d.Fields().Len() {
				if sub := fieldMessage(d.Fields().Get(i)); sub != nil && want[sub.FullName()] {
					wantFields = append(wantFields, d.Fields().Get(i).FullName())
				}
			}
			var gotFields []protoreflect.FullName
			for _, fd := range types.fieldsToAny(d) {
				gotFields = append(gotFields, fd.FullName())
			}
			if !slices.Equal(gotFields, wantFields) {
				t.Errorf("%s: fieldsToAny = %v, want %v", name, gotFields, wantFields)
			}
		}
	}
}

// reachable returns every message type reachable from md through fields.
func reachable(md protoreflect.MessageDescriptor) map[protoreflect.FullName]protoreflect.MessageDescriptor {
	out := map[protoreflect.FullName]protoreflect.MessageDescriptor{}
	stack := []protoreflect.MessageDescriptor{md}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := out[cur.FullName()]; ok {
			continue
		}
		out[cur.FullName()] = cur
		stack = append(stack, messageFieldTypes(cur)...)
	}
	return out
}

// naiveLeadsToAny iterates "is Any or has a field that leads to Any" until
// nothing changes.
func naiveLeadsToAny(md protoreflect.MessageDescriptor) map[protoreflect.FullName]bool {
	all := reachable(md)
	leads := map[protoreflect.FullName]bool{anyFullName: true}
	for changed := true; changed; {
		changed = false
		for name, d := range all {
			if leads[name] {
				continue
			}
			for _, sub := range messageFieldTypes(d) {
				if leads[sub.FullName()] {
					leads[name], changed = true, true
					break
				}
			}
		}
	}
	return leads
}
