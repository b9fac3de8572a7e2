package controlplane

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/xds"
	"github.com/tollgate/tollgate/xds/translator"
)

// stallingApplier serves the first push at once and stalls every later one
// until release is closed, as a push waiting for a stopped proxy's ACK does.
type stallingApplier struct {
	calls   chan struct{} // one value per Apply
	release chan struct{}
	n       int
}

func newStallingApplier() *stallingApplier {
	return &stallingApplier{calls: make(chan struct{}, 16), release: make(chan struct{})}
}

func (s *stallingApplier) Apply(ctx context.Context, _ map[string]*translator.Resources) ([]xds.GatewayResult, error) {
	s.n++
	s.calls <- struct{}{}
	if s.n == 1 {
		return nil, nil
	}
	select {
	case <-s.release:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *stallingApplier) Status() []xds.NodeStatus { return nil }

// crashStore is a store and how to open it again in a restarted process;
// expireLock makes a crashed replica's push lock expire (Redis: its TTL).
type crashStore struct {
	open       func() store.Store
	expireLock func()
}

func crashStores(t *testing.T) map[string]crashStore {
	dir := t.TempDir()
	addr := harness.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	return map[string]crashStore{
		"dir": {open: func() store.Store {
			d, err := store.OpenDir(dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}, expireLock: func() {}},
		"redis": {open: func() store.Store {
			r, err := store.OpenRedis(context.Background(), rdb, store.RedisOptions{Prefix: "c:"})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}, expireLock: func() { rdb.Del(context.Background(), "c:{policy}:lock") }},
	}
}

// A control plane that stops while its push waits for ACKs: the restarted
// one serves the pushed version and the history explains it (pending while
// the dead replica's lock lasts, then applied), never a version that the
// history does not mention.
func TestCrashDuringAckWaitIsExplainedAfterRestart(t *testing.T) {
	for name, cs := range crashStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			sa := newStallingApplier()
			defer close(sa.release)
			dead := New(log, cs.open(), sa, Options{})
			first, err := dead.PushWith(ctx, policyFiles(8080), Origin{Action: "push", Source: "a"}, "")
			if err != nil {
				t.Fatal(err)
			}
			<-sa.calls
			// The second push waits for its ACKs: the control plane dies here
			// (its goroutine never returns before the "crash").
			go dead.PushWith(ctx, policyFiles(8081), Origin{Action: "push", Source: "a", Reason: "more ports"}, "") //nolint:errcheck
			<-sa.calls

			restarted := New(log, cs.open(), &fakeApplier{}, Options{})
			if err := restarted.Restore(ctx, nil, ""); err != nil {
				t.Fatal(err)
			}
			served := restarted.Current().ID
			if served == first.Version {
				t.Fatalf("restarted on the previous version %s; the store made the new one current before the ACK wait", served)
			}
			h, _ := restarted.History()
			head := h[len(h)-1]
			wantHead := store.Applied
			if name == "redis" {
				// The dead replica's push lock still holds: the event stays
				// pending (it explains the served version) until it expires.
				wantHead = store.Pending
			}
			if head.Version != served || head.Outcome != wantHead || head.Reason != "more ports" {
				t.Fatalf("serving %s after the restart; history head %+v, want %s of that version", served, head, wantHead)
			}
			cs.expireLock()
			restarted.SettleOrphans(ctx)
			h, _ = restarted.History()
			head = h[len(h)-1]
			if len(h) != 2 || head.Version != served || head.Outcome != store.Applied || !strings.Contains(head.Message, "recovered after a restart") {
				t.Fatalf("history after settling = %+v, want the served version applied (recovered)", h)
			}
		})
	}
}

// A replica following another one's push while that push waits for ACKs
// serves the new version but leaves the pending event to its pusher, who
// settles it.
func TestFollowerLeavesALivePushPending(t *testing.T) {
	addr := harness.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	open := func() store.Store {
		r, err := store.OpenRedis(ctx, rdb, store.RedisOptions{Prefix: "f:"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sa := newStallingApplier()
	pusher, follower := New(log, open(), sa, Options{}), New(log, open(), &fakeApplier{}, Options{})
	if _, err := pusher.Push(ctx, policyFiles(8080), "push", "a"); err != nil {
		t.Fatal(err)
	}
	<-sa.calls
	done := make(chan error, 1)
	go func() {
		_, err := pusher.Push(ctx, policyFiles(8081), "push", "a")
		done <- err
	}()
	<-sa.calls
	if err := follower.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	follower.SettleOrphans(ctx)
	h, _ := follower.History()
	if head := h[len(h)-1]; head.Outcome != store.Pending || head.Version != follower.Current().ID {
		t.Fatalf("follower serves %s, history head %+v; want it pending for the live push", follower.Current().ID, head)
	}
	close(sa.release)
	if err := <-done; err != nil {
		t.Fatalf("the live push: %v", err)
	}
	h, _ = follower.History()
	if head := h[len(h)-1]; head.Outcome != store.Applied || head.Message != "" {
		t.Fatalf("history head after the push = %+v, want applied by its pusher", head)
	}
}
