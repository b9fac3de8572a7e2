package ratelimit

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDecisionTierLabelIsThePolicys: the decisions metric's tier label is
// the policy tier the request's tier resolved to, never the request's own
// value: a credential's made-up tier claim is counted under the default
// tier, so the label's values are bounded by the policy.
func TestDecisionTierLabelIsThePolicys(t *testing.T) {
	s, _, _ := newTestService(t)
	reg := prometheus.NewRegistry()
	s.opts.Metrics = NewMetrics(reg)
	for _, entries := range [][]string{
		{"route", "tiered", "consumer", "a", "tier", "pro"},
		{"route", "tiered", "consumer", "b", "tier", "made-up-by-the-idp-1"},
		{"route", "tiered", "consumer", "c", "tier", "made-up-by-the-idp-2"},
		{"route", "tiered", "consumer", "d"},
		{"route", "open", "remote_address", "192.0.2.1"},
	} {
		admitted(t, s, 1, entries...)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fams {
		if f.GetName() != "tollgate_ratelimit_decisions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var l []string
			for _, p := range m.GetLabel() {
				l = append(l, p.GetName()+"="+p.GetValue())
			}
			got = append(got, strings.Join(l, ","))
		}
	}
	slices.Sort(got)
	want := []string{
		"decision=ok,route=open,tier=",
		"decision=ok,route=tiered,tier=free",
		"decision=ok,route=tiered,tier=pro",
	}
	if !slices.Equal(got, want) {
		t.Errorf("series:\n got %q\nwant %q", got, want)
	}
}
