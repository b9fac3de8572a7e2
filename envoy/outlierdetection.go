package envoy

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// OutlierDetection ejects a host after consecutive5xx consecutive 5xx
// answers (connection failures and timeouts count as 5xx), checked every
// interval, for baseEjection × the number of ejections, at most
// maxEjectionPercent of the hosts. The gateway-failure and success-rate
// detectors stay off.
func OutlierDetection(consecutive5xx uint32, interval, baseEjection time.Duration, maxEjectionPercent uint32) *clusterv3.OutlierDetection {
	return &clusterv3.OutlierDetection{
		Consecutive_5Xx:                    wrapperspb.UInt32(consecutive5xx),
		Interval:                           durationpb.New(interval),
		BaseEjectionTime:                   durationpb.New(baseEjection),
		MaxEjectionPercent:                 wrapperspb.UInt32(maxEjectionPercent),
		EnforcingConsecutive_5Xx:           wrapperspb.UInt32(100),
		EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(0),
		EnforcingSuccessRate:               wrapperspb.UInt32(0),
	}
}
