package e2e

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// dashboardPath is the Grafana dashboard docker compose provisions.
const dashboardPath = "../deploy/observability/grafana/dashboards/tollgate.json"

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

var (
	metricRef  = regexp.MustCompile(`\b((?:envoy|tollgate)_[A-Za-z0-9_]+)(\{[^}]*\})?`)
	matcherKey = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)`)
	byClause   = regexp.MustCompile(`\bby\s*\(([^)]*)\)`)
	// labelArg is label_values' label argument.
	labelArg = regexp.MustCompile(`,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)`)
)

// modeSeries are the series only one rate-limit mode exports: exact
// mode's per-request decisions, quota mode's reported usage and Envoy's
// backstop refusals (only quota mode configures its filters).
var modeSeries = map[string]string{
	"tollgate_ratelimit_decisions_total":    "exact",
	"tollgate_rlqs_reported_requests_total": "quota",
	backstopRefused:                         "quota",
}

// checkDashboard checks the dashboard JSON against a real run in
// rate-limit mode mode ("exact" or "quota"): valid, every panel placed and
// queried; every query (and template variable) of the panels scope keeps
// (by title; nil: all) naming only metrics, and labels of them, that the
// run's scrapes hold (but series modeSeries gives the other mode); and
// every rate-limit panel with a query whose every metric the run exported
// (so none is empty in either mode).
func checkDashboard(t *testing.T, mode string, scope func(title string) bool, scrapes ...map[string]*dto.MetricFamily) {
	t.Helper()
	fams := map[string]*dto.MetricFamily{}
	for _, s := range scrapes {
		for k, v := range s {
			fams[k] = v
		}
	}
	for name, m := range modeSeries {
		if m == mode && family(fams, name) == nil {
			t.Errorf("%s mode: %s was not exported by the test run", mode, name)
		}
	}
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard needs a uid, a title and panels: %+v", d)
	}
	queries := 0
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Datasource) == 0 || p.GridPos.W <= 0 || p.GridPos.H <= 0 || len(p.Targets) == 0 {
			t.Errorf("panel %d %q: needs a title, a datasource, a size and targets", p.ID, p.Title)
		}
		if scope != nil && !scope(p.Title) {
			continue
		}
		shown := false
		for _, tg := range p.Targets {
			queries++
			shown = checkDashboardQuery(t, mode, p.Title, tg.Expr, fams) || shown
		}
		if rateLimitPanel(p.Title) && !shown {
			t.Errorf("rate-limit panel %q: no query reads series a %s-mode run exports", p.Title, mode)
		}
	}
	for _, v := range d.Templating.List {
		if v.Definition != "" && scope == nil {
			checkDashboardQuery(t, mode, "variable "+v.Name, v.Definition, fams)
		}
	}
	t.Logf("%d panels, %d queries checked against %d exported metric families", len(d.Panels), queries, len(fams))
}

// rateLimitPanel reports whether a panel title is a rate-limit panel's.
func rateLimitPanel(title string) bool {
	title = strings.ToLower(title)
	return strings.Contains(title, "rate limit") || strings.Contains(title, "rate-limit") || strings.Contains(title, "429")
}

// checkDashboardQuery checks that expr names at least one metric, and that each
// metric and each label it filters or groups by was exported, but metrics
// that only the other rate-limit mode exports (modeSeries). It reports
// whether the run exported every metric of expr.
func checkDashboardQuery(t *testing.T, mode, where, expr string, fams map[string]*dto.MetricFamily) bool {
	t.Helper()
	// Metric names, each with its {matchers}; label names in by (...) and
	// label_values(metric, label) are not metrics.
	refs := metricRef.FindAllStringSubmatch(labelArg.ReplaceAllString(byClause.ReplaceAllString(expr, ""), ")"), -1)
	if len(refs) == 0 {
		t.Errorf("%s: query %q names no envoy_ or tollgate_ metric", where, expr)
		return false
	}
	var used []*dto.MetricFamily
	all := true
	for _, r := range refs {
		f := family(fams, r[1])
		if f == nil {
			all = false
			if m, ok := modeSeries[r[1]]; !ok || m == mode {
				t.Errorf("%s: metric %s was not exported by the test run", where, r[1])
			}
			continue
		}
		used = append(used, f)
		for _, m := range matcherKey.FindAllStringSubmatch(r[2], -1) {
			if !hasLabel(f, m[1]) {
				t.Errorf("%s: %s has no label %q", where, r[1], m[1])
			}
		}
	}
	for _, by := range byClause.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(by[1], ",") {
			l = strings.TrimSpace(l)
			if l == "le" || l == "" {
				continue
			}
			found := false
			for _, f := range used {
				found = found || hasLabel(f, l)
			}
			if !found && len(used) > 0 {
				t.Errorf("%s: grouping label %q is on none of the query's metrics", where, l)
			}
		}
	}
	return all
}

// family returns the family of a series name: the name itself, or a
// histogram's _bucket, _count or _sum.
func family(fams map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	if f, ok := fams[name]; ok {
		return f
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f, ok := fams[base]; ok && f.GetType() == dto.MetricType_HISTOGRAM {
				return f
			}
		}
	}
	return nil
}

func hasLabel(f *dto.MetricFamily, name string) bool {
	for _, m := range f.GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == name {
				return true
			}
		}
	}
	return false
}
