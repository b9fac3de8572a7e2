package envoy

import (
	"time"

	overloadv3 "github.com/envoyproxy/go-control-plane/envoy/config/overload/v3"
	downstreamconnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	fixedheapv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Overload manager defaults and thresholds (fractions of the heap limit).
const (
	DefaultMaxHeapBytes             = 1 << 30
	DefaultMaxDownstreamConnections = 50000
	overloadRefresh                 = 250 * time.Millisecond
	shrinkHeapAt                    = 0.90
	disableKeepaliveAt              = 0.95
	stopAcceptingRequestsAt         = 0.98
	fixedHeapMonitor                = "envoy.resource_monitors.fixed_heap"
	connectionsMonitor              = "envoy.resource_monitors.global_downstream_max_connections"
)

// OverloadManager returns an overload manager that watches the heap
// against maxHeapBytes — at 90% it returns free memory to the system, at
// 95% it stops HTTP keep-alive, at 98% it answers new requests with 503 —
// and, when maxConnections > 0, caps the downstream connections of all
// listeners (new ones are refused beyond it).
func OverloadManager(maxHeapBytes uint64, maxConnections int64) *overloadv3.OverloadManager {
	om := &overloadv3.OverloadManager{
		RefreshInterval: durationpb.New(overloadRefresh),
		ResourceMonitors: []*overloadv3.ResourceMonitor{{
			Name: fixedHeapMonitor,
			ConfigType: &overloadv3.ResourceMonitor_TypedConfig{
				TypedConfig: MustAny(&fixedheapv3.FixedHeapConfig{MaxHeapSizeBytes: maxHeapBytes}),
			},
		}},
		Actions: []*overloadv3.OverloadAction{
			heapAction("envoy.overload_actions.shrink_heap", shrinkHeapAt),
			heapAction("envoy.overload_actions.disable_http_keepalive", disableKeepaliveAt),
			heapAction("envoy.overload_actions.stop_accepting_requests", stopAcceptingRequestsAt),
		},
	}
	if maxConnections > 0 {
		om.ResourceMonitors = append(om.ResourceMonitors, &overloadv3.ResourceMonitor{
			Name: connectionsMonitor,
			ConfigType: &overloadv3.ResourceMonitor_TypedConfig{
				TypedConfig: MustAny(&downstreamconnv3.DownstreamConnectionsConfig{MaxActiveDownstreamConnections: maxConnections}),
			},
		})
	}
	return om
}

func heapAction(name string, threshold float64) *overloadv3.OverloadAction {
	return &overloadv3.OverloadAction{
		Name: name,
		Triggers: []*overloadv3.Trigger{{
			Name:         fixedHeapMonitor,
			TriggerOneof: &overloadv3.Trigger_Threshold{Threshold: &overloadv3.ThresholdTrigger{Value: threshold}},
		}},
	}
}
