package xds

import (
	"context"
	"errors"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// fixedSet returns a typeSet with the given version for every type.
func fixedSet(version string) *typeSet {
	ts := &typeSet{of: map[resource.Type]typed{}}
	for _, t := range allTypes() {
		ts.of[t] = typed{version: version}
	}
	return ts
}

func newTestTracker() *tracker {
	clock := time.Unix(1000, 0)
	return newTracker(func() time.Time { clock = clock.Add(time.Millisecond); return clock })
}

// connect opens stream id for node and sends the first LDS and CDS requests.
func connect(tr *tracker, id int64, node, gateway, protocol string) bool {
	tr.open(id, protocol)
	_, _, first := tr.request(id, &core.Node{Id: node, Cluster: gateway}, resource.ClusterType, "", false, "")
	tr.request(id, nil, resource.ListenerType, "", false, "")
	return first
}

func TestTrackerAckAndNack(t *testing.T) {
	tr := newTestTracker()
	if !connect(tr, 1, "n1", "public", "sotw") {
		t.Fatal("first request of a new node not reported as first")
	}
	target := fixedSet("v2")
	tr.response(1, resource.ClusterType, "1", "v2")
	tr.response(1, resource.ListenerType, "2", "v2")
	tr.request(1, nil, resource.ClusterType, "1", false, "")
	tr.request(1, nil, resource.ListenerType, "2", true, "Error adding/updating listener(s) taken: cannot bind")

	st := tr.status(map[string]*typeSet{"public": target})
	if len(st) != 1 || st[0].Synced || st[0].Acked["cluster"].Version != "v2" {
		t.Fatalf("status after ACK+NACK = %+v", st)
	}
	if len(st[0].Nacks) != 1 || st[0].Nacks[0].Type != "listener" || st[0].Nacks[0].Version != "v2" {
		t.Fatalf("nacks = %+v", st[0].Nacks)
	}
	if got := tr.rejectedVersion("n1", resource.ListenerType); got != "v2" {
		t.Errorf("rejectedVersion = %q, want v2", got)
	}
	_, err := tr.check("public", target, allTypes(), time.Unix(0, 0))
	var nack *NackError
	if !errors.As(err, &nack) || nack.Node != "n1" {
		t.Fatalf("check = %v, want a NackError from n1", err)
	}
}

func TestTrackerNackWithCodeZeroCounts(t *testing.T) {
	// go-control-plane's own client NACKs with code 0: presence of
	// error_detail is what makes a NACK, never its code.
	tr := newTestTracker()
	connect(tr, 1, "n1", "public", "delta")
	tr.response(1, resource.ListenerType, "7", "v3")
	tr.request(1, nil, resource.ListenerType, "7", true, "")
	if st := tr.status(map[string]*typeSet{"public": fixedSet("v3")}); len(st[0].Nacks) != 1 {
		t.Fatalf("an empty-message NACK was not recorded: %+v", st[0])
	}
}

func TestTrackerUnknownNonceAndStream(t *testing.T) {
	tr := newTestTracker()
	connect(tr, 1, "n1", "public", "sotw")
	tr.request(1, nil, resource.ClusterType, "no-such-nonce", false, "")
	tr.request(99, &core.Node{Id: "ghost"}, resource.ClusterType, "1", false, "")
	tr.response(99, resource.ClusterType, "1", "v1")
	st := tr.status(nil)
	if len(st) != 1 || len(st[0].Acked) != 0 {
		t.Fatalf("status = %+v, want one node with no ACKs", st)
	}
	if st[0].Problem == "" {
		t.Error("a node whose gateway is unknown has no problem reported")
	}
}

func TestTrackerSyncedIgnoresUnsubscribedTypes(t *testing.T) {
	tr := newTestTracker()
	connect(tr, 1, "n1", "public", "delta")
	target := fixedSet("v1")
	tr.response(1, resource.ClusterType, "1", "v1")
	tr.response(1, resource.ListenerType, "2", "v1")
	tr.request(1, nil, resource.ClusterType, "1", false, "")
	tr.request(1, nil, resource.ListenerType, "2", false, "")
	// The proxy never asked for routes or endpoints: it is in sync.
	if st := tr.status(map[string]*typeSet{"public": target}); !st[0].Synced {
		t.Fatalf("status = %+v, want synced", st[0])
	}
	pending, err := tr.waitSynced(context.Background(), "public", target, allTypes(), time.Unix(0, 0))
	if err != nil || len(pending) != 0 {
		t.Fatalf("waitSynced = %v, %v", pending, err)
	}
}

func TestTrackerWaitWakesOnAck(t *testing.T) {
	tr := newTestTracker()
	connect(tr, 1, "n1", "public", "sotw")
	target := fixedSet("v9")
	tr.response(1, resource.ClusterType, "1", "v9")
	tr.response(1, resource.ListenerType, "2", "v9")
	done := make(chan error, 1)
	go func() {
		_, err := tr.waitSynced(context.Background(), "public", target, allTypes(), time.Unix(0, 0))
		done <- err
	}()
	tr.request(1, nil, resource.ClusterType, "1", false, "")
	tr.request(1, nil, resource.ListenerType, "2", false, "")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waitSynced did not wake up on the ACKs")
	}
}

func TestTrackerWaitTimesOutWithPending(t *testing.T) {
	tr := newTestTracker()
	connect(tr, 1, "n1", "public", "sotw")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	pending, err := tr.waitSynced(ctx, "public", fixedSet("v5"), allTypes(), time.Unix(0, 0))
	if err != nil || len(pending) != 1 || pending[0] != "n1" {
		t.Fatalf("waitSynced = %v, %v; want [n1], nil", pending, err)
	}
}

func TestTrackerCloseForgetsNodeOnLastStream(t *testing.T) {
	tr := newTestTracker()
	connect(tr, 1, "n1", "public", "sotw")
	connect(tr, 2, "n1", "public", "sotw")
	if id := tr.close(1); id != "" {
		t.Fatalf("close of first stream returned %q, want \"\"", id)
	}
	if id := tr.close(2); id != "n1" {
		t.Fatalf("close of last stream returned %q, want n1", id)
	}
	if n := tr.gatewayCounts()["public"]; n != 0 {
		t.Fatalf("%d nodes left", n)
	}
}
