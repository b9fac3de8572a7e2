package xds

import (
	"context"
	"time"

	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// check returns the connected nodes of gateway that have not ACKed target
// for the given types, or the first NACK of a target version received
// since since.
func (t *tracker) check(gateway string, target *typeSet, among []resource.Type, since time.Time) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var pending []string
	for _, nd := range t.nodes {
		if nd.gateway != gateway {
			continue
		}
		for _, typ := range among {
			if n, ok := nd.nacks[typ]; ok && n.Version == target.of[typ].version && !n.At.Before(since) {
				return nil, &NackError{Node: nd.id, Nack: n}
			}
		}
		if len(pendingTypes(nd, target, among)) > 0 {
			pending = append(pending, nd.id)
		}
	}
	return pending, nil
}

// waitSynced blocks until every connected node of gateway ACKed target for
// the given types, a node NACKs it (a *NackError), or ctx ends; then it
// returns the nodes still pending.
func (t *tracker) waitSynced(ctx context.Context, gateway string, target *typeSet, among []resource.Type, since time.Time) ([]string, error) {
	for {
		t.mu.Lock()
		ch := t.changed
		t.mu.Unlock()
		pending, err := t.check(gateway, target, among, since)
		if err != nil || len(pending) == 0 {
			return pending, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return pending, nil
		}
	}
}
