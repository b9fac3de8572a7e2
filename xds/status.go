package xds

import (
	"fmt"
	"sort"
	"time"

	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Ack is the last version of one type a proxy accepted.
type Ack struct {
	Version string        `json:"version"`
	At      time.Time     `json:"at"`
	Latency time.Duration `json:"latency"` // from sending the response to the ACK
}

// Nack is the last response of one type a proxy rejected, with Envoy's reason.
type Nack struct {
	Type    string    `json:"type"`
	Version string    `json:"version"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// NodeStatus is one connected proxy as the control plane sees it.
type NodeStatus struct {
	ID          string    `json:"id"`
	Gateway     string    `json:"gateway"`
	Protocol    string    `json:"protocol"` // sotw or delta
	ConnectedAt time.Time `json:"connectedAt"`
	// Version is the gateway snapshot version the proxy should have.
	Version string `json:"version,omitempty"`
	// Synced is true when the proxy ACKed every type of Version it
	// subscribed to.
	Synced bool `json:"synced"`
	// Acked holds the last ACKed version per type ("listener", "route", ...).
	Acked map[string]Ack `json:"acked"`
	// Nacks holds the last rejection per type, kept while the proxy stays
	// connected so a rolled-back push still shows why.
	Nacks []Nack `json:"nacks,omitempty"`
	// Problem explains why the proxy cannot be served, e.g. an unknown gateway.
	Problem string `json:"problem,omitempty"`
}

// NackError reports that a proxy rejected a pushed configuration.
type NackError struct {
	Node string
	Nack Nack
}

func (e *NackError) Error() string {
	return fmt.Sprintf("proxy %s rejected %s version %s: %s", e.Node, e.Nack.Type, e.Nack.Version, e.Nack.Message)
}

// status returns every connected node's status given the target versions
// per gateway, sorted by gateway then id.
func (t *tracker) status(targets map[string]*typeSet) []NodeStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]NodeStatus, 0, len(t.nodes))
	for _, nd := range t.nodes {
		out = append(out, nodeStatus(nd, targets[nd.gateway]))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Gateway != out[j].Gateway {
			return out[i].Gateway < out[j].Gateway
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func nodeStatus(nd *node, target *typeSet) NodeStatus {
	st := NodeStatus{ID: nd.id, Gateway: nd.gateway, Protocol: nd.protocol, ConnectedAt: nd.connectedAt, Acked: map[string]Ack{}}
	for t, a := range nd.acked {
		st.Acked[shortType(t)] = a
	}
	for _, n := range nd.nacks {
		st.Nacks = append(st.Nacks, n)
	}
	sort.Slice(st.Nacks, func(i, j int) bool { return st.Nacks[i].Type < st.Nacks[j].Type })
	if target == nil {
		st.Problem = fmt.Sprintf("gateway %q is not in the policy: the proxy gets no configuration (check node.cluster in its bootstrap)", nd.gateway)
		return st
	}
	st.Version = target.version()
	st.Synced = len(pendingTypes(nd, target, allTypes())) == 0
	return st
}

// pendingTypes returns the types of target that nd subscribed to but has not
// ACKed yet. Types the proxy never asked for (EDS without clusters, say) do
// not count: Envoy will not ACK what it did not request.
func pendingTypes(nd *node, target *typeSet, among []resource.Type) []resource.Type {
	var out []resource.Type
	for _, t := range among {
		if !nd.subscribed[t] || skipEmpty(target, t) {
			continue
		}
		if nd.acked[t].Version != target.of[t].version {
			out = append(out, t)
		}
	}
	return out
}

// skipEmpty reports whether t is a type Envoy requests by name (routes,
// endpoints and secrets) and target has none of it, so there is nothing to
// ACK.
func skipEmpty(target *typeSet, t resource.Type) bool {
	byName := t == resource.EndpointType || t == resource.RouteType || t == resource.SecretType || t == resource.ExtensionConfigType
	return byName && len(target.of[t].items) == 0
}
