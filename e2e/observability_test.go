package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tollgate/tollgate/e2e/harness"
)

const observabilityPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  tiers: {free: [{requests: 1000, per: minute}]}
  defaultTier: free
  mode: exact # per-request decisions: the access log's rate_limit, tollgate_ratelimit_decisions_total
observability:
  accessLog: {grpc: %q}
  tracing: {otlp: %q, sampling: 100%%}
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo}
  - {name: open, match: {pathPrefix: /open}, backend: echo, auth: none, rateLimit: none}
  - {name: quiet, match: {pathPrefix: /quiet}, backend: echo, auth: none, rateLimit: none, accessLog: off}
  - {name: sampled, match: {pathPrefix: /sampled}, backend: echo, auth: none, rateLimit: none, accessLog: {sample: 50%%}}
backends:
  - {name: echo, endpoints: [%q]}
`

// obsEnvoyTimers shortens two Envoy timers the tests wait for, from 5 s
// each: the stats flush, which merges the latency histograms, and the
// OpenTelemetry tracer's span export (a runtime key, in a layer after the
// bootstrap's own). What is logged, counted and traced stays the same.
const obsEnvoyTimers = `stats_flush_interval: 0.5s
layered_runtime:
  layers:
    - name: e2e-timers
      static_layer: {tracing.opentelemetry.flush_interval_ms: 200}
`

// obsStack is a gateway with auth, rate limits, tracing to an in-test
// collector and the default access log (Envoy's stdout).
type obsStack struct {
	*stack
	envoy  *harness.Envoy
	otlp   *otlpReceiver
	als    *alsReceiver
	port   int
	policy string
	apiKey string // consumer alice, tier free
}

func startObservabilityStack(t *testing.T) *obsStack {
	up := harness.StartUpstream(t, "echo")
	otlp := startOTLPReceiver(t)
	als := startALSReceiver(t)
	port := harness.FreePort(t)
	policy := fmt.Sprintf(observabilityPolicy, als.addr, otlp.addr, port, up.Addr())
	s := startStackWith(t, policy,
		stackOptions{args: []string{"--tracing-otlp", otlp.addr}})
	e := s.envoyWith("public", "obs-0", harness.EnvoyOptions{ConfigYAML: obsEnvoyTimers})
	return &obsStack{stack: s, envoy: e, otlp: otlp, als: als, port: port, policy: policy}
}

// get sends GET path through Envoy and decodes the echo.
func (o *obsStack) get(t *testing.T, path string, headers map[string]string) (int, echoBody) {
	t.Helper()
	resp, err := harness.HTTPGet(testCtx(t, 10*time.Second), fmt.Sprintf("http://127.0.0.1:%d%s", o.port, path), "", headers)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	var echo echoBody
	if resp.Status == 200 {
		if err := resp.JSON(&echo); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.Status, echo
}

// echoBody is the part of the upstream's echo the tests read.
type echoBody struct {
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
}

// accessLines returns Envoy's access-log lines (the JSON lines of its
// stdout) for which keep is true.
func (o *obsStack) accessLines(keep func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(o.envoy.Logs()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("{")) {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// waitAccessLines waits until exactly want lines satisfy keep (Envoy
// flushes its access log about once a second) and returns them.
func (o *obsStack) waitAccessLines(t *testing.T, want int, keep func(map[string]any) bool) []map[string]any {
	t.Helper()
	var lines []map[string]any
	err := harness.WaitFor(testCtx(t, 10*time.Second), func() (bool, error) {
		lines = o.accessLines(keep)
		return len(lines) >= want, nil
	})
	if err != nil || len(lines) != want {
		t.Fatalf("access log: %d matching lines, want %d (%v)", len(lines), want, err)
	}
	return lines
}

// scrape fetches url (with the bearer token when token is set) and parses
// it with the Prometheus text parser.
func scrape(t *testing.T, url, token string) map[string]*dto.MetricFamily {
	t.Helper()
	headers := map[string]string{}
	if token != "" {
		headers["Authorization"] = "Bearer " + token
	}
	resp, err := harness.HTTPGet(testCtx(t, 10*time.Second), url, "", headers)
	if err != nil || resp.Status != 200 {
		t.Fatalf("scrape %s: %v %v", url, err, resp)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(resp.Body))
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// sumWhere adds the values (counter, gauge or histogram count) of the
// family's series whose labels include every pair of want.
func sumWhere(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, int) {
	total, series := 0.0, 0
	for _, m := range fams[name].GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		series++
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total, series
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	found := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok && v == lp.GetValue() {
			found++
		}
	}
	return found == len(want)
}

// envoyStats scrapes Envoy's /stats/prometheus.
func (o *obsStack) envoyStats(t *testing.T) map[string]*dto.MetricFamily {
	return scrape(t, o.envoy.AdminURL()+"/stats/prometheus", "")
}

// tollgateStats scrapes tollgate's admin /metrics.
func (o *obsStack) tollgateStats(t *testing.T) map[string]*dto.MetricFamily {
	return scrape(t, "http://"+o.adminAddr+"/metrics", testToken)
}

// waitCounter waits until the sum of the Envoy series (a histogram: its
// sample count) reads want.
func (o *obsStack) waitCounter(t *testing.T, name string, labels map[string]string, want float64) {
	t.Helper()
	var got float64
	err := harness.WaitFor(testCtx(t, 10*time.Second), func() (bool, error) {
		got, _ = sumWhere(o.envoyStats(t), name, labels)
		return got == want, nil
	})
	if err != nil {
		t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func routeIs(name string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["route"] == name }
}

// traceIDOf returns the trace id of a W3C traceparent, "" if malformed.
func traceIDOf(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		return ""
	}
	return parts[1]
}

// key creates an API key of tier free for consumer (extra: more keys
// create flags, e.g. --format opaque).
func (o *obsStack) key(t *testing.T, consumer string, extra ...string) string {
	var created struct{ Key string }
	out := o.cli(0, append([]string{"keys", "create", "--consumer", consumer, "--tier", "free", "-o", "json"}, extra...)...)
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Key == "" {
		t.Fatalf("keys create: %v %s", err, out)
	}
	return created.Key
}

// envoyWith is stack.envoy with Envoy options opts and the bootstrap's
// default xDS protocol.
func (s *stack) envoyWith(gateway, nodeID string, opts harness.EnvoyOptions) *harness.Envoy {
	s.t.Helper()
	out := s.cli(0, "bootstrap", "--gateway", gateway, "--node-id", nodeID, "--xds", s.xdsAddr,
		"--admin-port", fmt.Sprint(harness.FreePort(s.t)))
	e := harness.StartEnvoy(s.t, []byte(out), opts)
	if err := e.WaitReady(testCtx(s.t, 30*time.Second)); err != nil {
		s.t.Fatalf("envoy %s not ready: %v", nodeID, err)
	}
	return e
}

// dump writes the run's Envoy and tollgate metrics and access log to dir
// (TOLLGATE_OBS_DUMP), for documentation.
func (o *obsStack) dump(t *testing.T, dir string) {
	for name, url := range map[string]string{"envoy.prom": o.envoy.AdminURL() + "/stats/prometheus", "tollgate.prom": "http://" + o.adminAddr + "/metrics"} {
		resp, err := harness.HTTPGet(testCtx(t, 10*time.Second), url, "", map[string]string{"Authorization": "Bearer " + testToken})
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), resp.Body, 0o644)
		}
		if err != nil {
			t.Errorf("dump %s: %v", name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "envoy.log"), []byte(o.envoy.Logs()), 0o644); err != nil {
		t.Errorf("dump log: %v", err)
	}
}
