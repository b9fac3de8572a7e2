package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// moduleStatPrefix is the module's counters' prefix in Envoy's /stats.
const moduleStatPrefix = "dynamicmodulescustom.tollgate_module."

// TestJWTModuleStatsAcrossPush: the module's Envoy counters count its
// decisions (the C table's and Go's apart) and a push that replaces the
// listener, hence the module's filter configuration, neither resets them
// nor adds a second series: the new configuration (an empty token table)
// decides its first request in Go, on top of the earlier counts.
func TestJWTModuleStatsAcrossPush(t *testing.T) {
	u := startListenerUpdate(t, jwtEngines[1], "jwt-module-stats") // one request: Go
	e, a, tok, modified, ctx := u.e, u.a, u.tok, u.modified, testCtx(t, 20*time.Second)
	for range 2 {
		if code, _, body := a.call(t, "/users/1", bearer(tok)); code != 200 {
			t.Fatalf("before the push: %d %s", code, body)
		}
	}
	before := moduleCounters(t, e)
	if before["rq_go_allowed"] != 1 || before["rq_table_allowed"] != 2 {
		t.Fatalf("before the push: %v, want rq_go_allowed 1 and rq_table_allowed 2", before)
	}
	u.s.cli(0, "push", writeFile(t, "next.yaml", u.next()))
	if err := harness.WaitFor(ctx, func() (bool, error) {
		now, _, err := e.Stat(ctx, "listener_manager.listener_modified")
		warming, _, werr := e.Stat(ctx, "listener_manager.total_listeners_warming")
		return err == nil && werr == nil && now > modified && warming == 0, errors.Join(err, werr)
	}); err != nil {
		t.Fatalf("the listener was not replaced: %v", err)
	}
	for range 2 {
		if code, _, body := a.call(t, "/users/1", bearer(tok)); code != 200 {
			t.Fatalf("after the push: %d %s", code, body)
		}
	}
	after := moduleCounters(t, e)
	if after["rq_go_allowed"] != 2 || after["rq_table_allowed"] != 3 || len(after) != len(before) {
		t.Errorf("after the push: %v, want rq_go_allowed 2 and rq_table_allowed 3 (before: %v)", after, before)
	}
}

// moduleCounters reads the module's counters from e's /stats, by name
// without moduleStatPrefix.
func moduleCounters(t *testing.T, e *harness.Envoy) map[string]int64 {
	t.Helper()
	stats, err := e.Stats(testCtx(t, 5*time.Second), "^"+strings.ReplaceAll(moduleStatPrefix, ".", `\.`))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for name, v := range stats {
		out[strings.TrimPrefix(name, moduleStatPrefix)] = v
	}
	if len(out) != 16 { // envoymodule/stats.c: tg_stat_names
		t.Errorf("%d module counters, want 16: %v", len(out), out)
	}
	return out
}
