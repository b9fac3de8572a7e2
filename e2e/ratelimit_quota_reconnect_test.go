package e2e

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// quotaReconnectPolicy: one JWT route in quota mode, every consumer on the
// tier pro (1,000 a minute), failure mode open.
const quotaReconnectPolicy = `version: 1
auth:
{{.JWT}}
rateLimits:
  mode: quota
  tiers:
    pro: [{requests: 1000, per: minute}]
  defaultTier: pro
  failureMode: open
gateways:
  - name: a
    listeners: [{name: http, port: {{.Port}}, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo, auth: {methods: [jwt]}}
backends:
  - {name: echo, endpoints: [{{.Upstream}}]}
`

// TestQuotaModuleReconnectKeepsTheShare: one consumer of a 1,000-a-minute
// tier sends 20 req/s through an Envoy whose module enforces the limit;
// after 3 s `tollgate serve` is stopped (SIGTERM; then SIGKILL, in a
// second run) and started again on the same Redis while Envoy keeps
// running; the load goes on for 8 s after the restart. The consumer uses
// about a third of its burst in the whole run, so nothing may be refused:
// the module's reconnected stream is the same participant of the account
// as before (it names its client, ir.RateLimitQuotaClientHeader), not a
// newcomer held to its floor share (0.05 of the rate, 0.83/s, and no
// tokens) while the stream that ended holds the whole limit for 15 s:
// before, 221 of 320 were refused, 1 admitted a second after the restart
// (the run was 4 s + 12 s then). Parallel (e2e/doc.go): a light load
// (20 req/s) whose refusals are counted, not its rate or latency; a slow
// restart on a busy machine admits on the module's local limits.
func TestQuotaModuleReconnectKeepsTheShare(t *testing.T) {
	t.Parallel()
	for _, kill := range []bool{false, true} {
		t.Run(map[bool]string{false: "stopped", true: "killed"}[kill], func(t *testing.T) {
			t.Parallel()
			codes, assigned := quotaReconnect(t, true, kill)
			if codes[429] > 0 || codes[200] == 0 {
				t.Errorf("statuses %v, want no 429 (the consumer used ~%d of its 1,000); assignments after the restart: %s",
					codes, codes[200], assigned)
			}
		})
	}
}

// quotaReconnect runs the reconnect scenario (module: --envoy-module, else
// the filter path; kill: serve is killed, else stopped gracefully) and
// returns the statuses of the whole run and the
// restarted server's assignments (its debug log), as one line.
func quotaReconnect(t *testing.T, module, kill bool) (map[int]int, string) {
	t.Helper()
	n := startNativeEnv(t)
	port := harness.FreePort(t)
	var extra []string
	if module {
		extra = []string{"--envoy-module", harness.BuildEnvoyModule(t)}
	}
	s := n.stack(t, n.policy(t, quotaReconnectPolicy, port), extra...)
	out := s.cli(0, "bootstrap", "--gateway", "a", "--node-id", "reconnect-0", "--xds", s.xdsAddr,
		"--admin-port", fmt.Sprint(harness.FreePort(t)), "--xds-protocol", "delta")
	e := harness.StartEnvoy(t, []byte(out), harness.EnvoyOptions{Env: []string{"TOLLGATE_MODULE_LOG=debug"}})
	if err := e.WaitReady(testCtx(t, 30*time.Second)); err != nil {
		t.Fatalf("envoy not ready: %v", err)
	}
	s.waitSynced("reconnect-0")
	tok := bearer(n.idp.rs256("k1", with(n.idp.claims("pro-1", "user"), "plan", "pro")))
	const before, after = 3 * time.Second, 8 * time.Second
	start := time.Now()
	var perSecond secondCounts
	var codes map[int]int
	var wg sync.WaitGroup
	wg.Go(func() {
		codes = load(t, port, tok, 50*time.Millisecond, before+after, start, &perSecond)
	})
	time.Sleep(time.Until(start.Add(before)))
	stopped := time.Now()
	if kill {
		_ = s.cp.Kill() // reports "signal: killed": the point
		s.startServe("")
	} else {
		s.restart()
	}
	ready := time.Since(stopped)
	wg.Wait()
	t.Logf("module %v, killed %v: serve stopped at %s, ready again %s later; admitted/refused per second: %s; total %v", module, kill,
		stopped.Sub(start).Round(10*time.Millisecond), ready.Round(10*time.Millisecond), perSecond.table(), codes)
	assigned := assignments(s.cp.Logs())
	t.Logf("assignments of the restarted server: %s", assigned)
	return codes, assigned
}

// table formats the counts as "second:admitted/refused ...".
func (s *secondCounts) table() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	secs := make([]int, 0, len(s.by))
	for sec := range s.by {
		secs = append(secs, sec)
	}
	sort.Ints(secs)
	var out []string
	for _, sec := range secs {
		out = append(out, fmt.Sprintf("%d:%d/%d", sec, s.by[sec][200], s.by[sec][429]))
	}
	return strings.Join(out, " ")
}

// assignmentLine picks the figures of serve's debug line of an assignment.
var assignmentLine = regexp.MustCompile(`rlqs: assignment.*?used=(\d+).*?share=(\S+).*?remaining=(\d+).*?grant=(\S+) rate=(\S+)`)

// assignments returns the first 8 assignments in logs, one per entry.
func assignments(logs string) string {
	var out []string
	for _, m := range assignmentLine.FindAllStringSubmatch(logs, 8) {
		out = append(out, fmt.Sprintf("[used %s share %s remaining %s grant %s rate %s]", m[1], m[2], m[3], m[4], m[5]))
	}
	return strings.Join(out, " ")
}

// TestQuotaFilterReconnectKeepsTheShare: TestQuotaModuleReconnectKeepsTheShare
// on the filter path (Envoy's rate_limit_quota filter and its backstop),
// serve stopped gracefully: Envoy's stream names no client, so the
// stopping server releases its participants (quota.Server.Close) and the
// stream Envoy opens to the restarted one gets the share its usage earns
// (before: 211 of 320 refused). A killed serve releases nothing: then the
// reconnected filter is held to its floor share until the dead stream's
// hold expires (docs/concepts/rate-limiting.md).
func TestQuotaFilterReconnectKeepsTheShare(t *testing.T) {
	t.Parallel() // as TestQuotaModuleReconnectKeepsTheShare
	codes, assigned := quotaReconnect(t, false, false)
	if codes[429] > 0 || codes[200] == 0 {
		t.Errorf("statuses %v, want no 429; assignments after the restart: %s", codes, assigned)
	}
}
