package xds

import (
	"sort"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// sent is what one response carried: its type and version.
type sent struct {
	typeURL string
	version string
	at      time.Time
}

// stream is one open ADS stream.
type stream struct {
	nodeID   string
	protocol string          // "sotw" or "delta"
	inflight map[string]sent // by nonce: responses not yet ACKed or NACKed
	types    map[string]bool // types the proxy subscribed to on this stream
}

// node is one connected proxy, identified by its node.id.
type node struct {
	id, gateway, protocol string
	streams               map[int64]bool
	connectedAt           time.Time
	subscribed            map[string]bool
	acked                 map[string]Ack
	nacks                 map[string]Nack
}

// tracker keeps the xDS bookkeeping: which proxies are connected, for which
// gateway, and what each ACKed or NACKed. Callbacks run on stream
// goroutines, so every method is short and takes one mutex that is never
// held while calling into the snapshot cache.
type tracker struct {
	mu      sync.Mutex
	streams map[int64]*stream
	nodes   map[string]*node
	// changed is closed and replaced whenever an ACK, NACK or disconnect
	// happens, waking waiters in waitSynced.
	changed chan struct{}
	now     func() time.Time
}

func newTracker(now func() time.Time) *tracker {
	return &tracker{streams: map[int64]*stream{}, nodes: map[string]*node{}, changed: make(chan struct{}), now: now}
}

// open records a new stream.
func (t *tracker) open(id int64, protocol string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.streams[id] = &stream{protocol: protocol, inflight: map[string]sent{}, types: map[string]bool{}}
}

// request records one discovery request and returns the node it came from
// and whether this stream just introduced the node (so it needs a snapshot).
// nack is Envoy's error message for a rejected response, "" for an ACK or a
// first request: a NACK is error_detail being present, whatever its code.
func (t *tracker) request(id int64, n *core.Node, typeURL, nonce string, isNack bool, nackMsg string) (nodeID, gateway string, first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.streams[id]
	if !ok {
		return "", "", false
	}
	if s.nodeID == "" && n != nil {
		first = t.attach(id, s, n)
	}
	nd := t.nodes[s.nodeID]
	if nd == nil {
		return "", "", false
	}
	s.types[typeURL] = true
	nd.subscribed[typeURL] = true
	if r, ok := s.inflight[nonce]; ok && nonce != "" {
		delete(s.inflight, nonce)
		t.settle(nd, r, isNack, nackMsg)
	}
	return nd.id, nd.gateway, first
}

// attach binds stream s to node n, creating the node on its first stream.
func (t *tracker) attach(id int64, s *stream, n *core.Node) bool {
	s.nodeID = n.GetId()
	nd, ok := t.nodes[s.nodeID]
	if !ok {
		nd = &node{id: n.GetId(), gateway: n.GetCluster(), protocol: s.protocol, streams: map[int64]bool{},
			connectedAt: t.now(), subscribed: map[string]bool{}, acked: map[string]Ack{}, nacks: map[string]Nack{}}
		t.nodes[nd.id] = nd
	}
	nd.streams[id] = true
	t.wake()
	return !ok
}

// settle records the proxy's verdict on response r.
func (t *tracker) settle(nd *node, r sent, isNack bool, msg string) {
	if isNack {
		nd.nacks[r.typeURL] = Nack{Type: shortType(r.typeURL), Version: r.version, Message: msg, At: t.now()}
	} else {
		nd.acked[r.typeURL] = Ack{Version: r.version, At: t.now(), Latency: t.now().Sub(r.at)}
	}
	t.wake()
}

// response records a response about to be sent on stream id.
func (t *tracker) response(id int64, typeURL, nonce, version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.streams[id]
	if !ok {
		return
	}
	// Envoy answers every response, but a stream that dies between the two
	// must not grow the map: keep the few newest per stream.
	if len(s.inflight) > 64 {
		clear(s.inflight)
	}
	s.inflight[nonce] = sent{typeURL: typeURL, version: version, at: t.now()}
}

// close forgets stream id and returns the node id if that was the node's
// last stream, so the caller can drop the node's snapshot.
func (t *tracker) close(id int64) (lastOf string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.streams[id]
	if !ok {
		return ""
	}
	delete(t.streams, id)
	nd := t.nodes[s.nodeID]
	if nd == nil {
		return ""
	}
	delete(nd.streams, id)
	if len(nd.streams) > 0 {
		return ""
	}
	delete(t.nodes, nd.id)
	t.wake()
	return nd.id
}

// wake signals waiters. Callers hold t.mu.
func (t *tracker) wake() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// nodesOf returns the ids of the connected nodes of gateway, sorted.
func (t *tracker) nodesOf(gateway string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []string
	for id, nd := range t.nodes {
		if nd.gateway == gateway {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// gatewayCounts returns the number of connected nodes per gateway.
func (t *tracker) gatewayCounts() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for _, nd := range t.nodes {
		out[nd.gateway]++
	}
	return out
}

// claim records that node already holds version of typeURL, which it said
// when it (re)connected: the server sends nothing then, so no ACK comes.
func (t *tracker) claim(nodeID, typeURL, version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if nd := t.nodes[nodeID]; nd != nil && version != "" {
		if _, ok := nd.acked[typeURL]; !ok {
			nd.acked[typeURL] = Ack{Version: version, At: t.now()}
			t.wake()
		}
	}
}

// rejectedVersion returns the version of the last response of typeURL that
// node rejected, or "".
func (t *tracker) rejectedVersion(nodeID, typeURL string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if nd := t.nodes[nodeID]; nd != nil {
		return nd.nacks[typeURL].Version
	}
	return ""
}
