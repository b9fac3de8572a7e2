package envoy

import (
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
)

// Listener returns a TCP listener bound to address:port with one filter chain
// holding filters in order (typically a single HTTPConnectionManagerFilter).
// name is the listener's xDS resource name.
func Listener(name, address string, port uint32, filters ...*listenerv3.Filter) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:         name,
		Address:      SocketAddress(address, port),
		FilterChains: []*listenerv3.FilterChain{{Filters: filters}},
	}
}
