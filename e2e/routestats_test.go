package e2e

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// TestRouteStatsOff: with observability.routeStats false, Envoy serves the
// routes without per-route stats (vhost.<vhost>.route.<route>.*) while the
// cluster's stats still count the requests; by default the route has them,
// without its timeout and retry counters (the cluster has those).
func TestRouteStatsOff(t *testing.T) {
	us := upstreams(t, "one", "two")
	port := harness.FreePort(t)
	policy := pushPolicy(port, us["one"].Addr(), us["two"].Addr(), "") + "observability: {routeStats: false}\n"
	s := startStack(t, policy)
	e := s.envoy("public", "stats-0", "delta")
	client := harness.NewHTTPClient(true)
	defer client.Close()
	ctx := testCtx(t, 30*time.Second)
	if err := harness.WaitFor(ctx, func() (bool, error) {
		code, _ := get(ctx, client, port, "/old")
		return code == 200, nil
	}); err != nil {
		t.Fatalf("route never served: %v", err)
	}
	if err := e.WaitStat(ctx, "cluster.one.upstream_rq_total", func(v int64) bool { return v >= 1 }); err != nil {
		t.Fatal(err)
	}
	stats, err := e.Stats(ctx, `^vhost\..*\.route\.`)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 0 {
		t.Errorf("per-route stats with routeStats false: %v", stats)
	}
	// The default gives the route its stats.
	s.cli(0, "push", writeFile(t, "default.yaml", pushPolicy(port, us["one"].Addr(), us["two"].Addr(), "")))
	if err := harness.WaitFor(ctx, func() (bool, error) {
		get(ctx, client, port, "/old")
		st, err := e.Stats(ctx, `^vhost\..*\.route\.old\.upstream_rq_total$`)
		return len(st) == 1, err
	}); err != nil {
		t.Fatalf("no per-route stats by default: %v", err)
	}
	// Of a route's counters, the timeout and retry ones are not created
	// (envoy.RouteCountersNotCreated); the cluster keeps its own.
	if st, err := e.Stats(ctx, `^vhost\..*\.route\.old\.upstream_rq_(timeout|retry.*)$`); err != nil || len(st) != 0 {
		t.Errorf("route timeout/retry counters: %v, %v", st, err)
	}
	for _, name := range []string{"cluster.one.upstream_rq_timeout", "cluster.one.upstream_rq_retry"} {
		if _, ok, err := e.Stat(ctx, name); !ok || err != nil {
			t.Errorf("%s: present %v, %v", name, ok, err)
		}
	}
}
