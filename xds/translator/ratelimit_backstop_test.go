package translator

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commonrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	localrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// TestChainRanks: the ranks of two limit lists checked together follow
// the time each bucket takes to refill from empty, shortest first; equal
// times share a rank.
func TestChainRanks(t *testing.T) {
	lim := func(requests uint64, per time.Duration, burst uint64) ir.Limit {
		return ir.Limit{Requests: requests, Per: per, Burst: burst}
	}
	sec, minute, hour, day := lim(5, time.Second, 0), lim(100, time.Minute, 0), lim(1000, time.Hour, 0), lim(10000, 24*time.Hour, 0)
	for _, tc := range []struct {
		name         string
		a, b         []ir.Limit
		wantA, wantB []int
	}{
		{"tier minute, extra second", []ir.Limit{minute}, []ir.Limit{sec}, []int{1}, []int{0}},
		{"interleaved", []ir.Limit{day, sec}, []ir.Limit{hour, minute}, []int{3, 0}, []int{2, 1}},
		{"equal windows share a rank", []ir.Limit{sec, minute}, []ir.Limit{lim(2, time.Second, 0)}, []int{0, 1}, []int{0}},
		{"a burst refills later than its window", []ir.Limit{lim(120, time.Minute, 0)}, []ir.Limit{lim(100, time.Minute, 1000)}, []int{0}, []int{1}},
		{"a burst the size of a longer window", []ir.Limit{lim(1, time.Second, 60)}, []ir.Limit{lim(60, time.Minute, 0)}, []int{0}, []int{0}},
		{"one list", []ir.Limit{hour, sec, minute}, nil, []int{2, 0, 1}, []int{}},
		{"no primary limits (an unlimited tier)", nil, []ir.Limit{hour, sec}, []int{}, []int{1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := chainRanks(tc.a, tc.b)
			if !slices.Equal(a, tc.wantA) || !slices.Equal(b, tc.wantB) {
				t.Fatalf("ranks %v %v, want %v %v", a, b, tc.wantA, tc.wantB)
			}
		})
	}
}

// backstopBucket is one bucket of a route's backstop as the layout test
// reads it: its filter, its limit lists and its refill time.
type backstopBucket struct {
	filter int
	chain  string // "" for the route's extra limits shared by every list
	list   string // the entries after the window and the chain
	extra  bool   // a bucket of the route's extra limits
	refill refill
}

// TestQuotaBackstopLayout: on every route, a request of each limit list
// (each tier, anonymous; with the route's extra limits)
// meets every one of its limits exactly once, in the order their buckets
// refill from empty, one filter per step (buckets that refill in the same
// time share a filter), with a bucket in the first filter, which alone
// writes X-RateLimit-*; every descriptor has an action in its filter. So
// a request one bucket refuses has spent no token of a bucket that
// refills later, of its list or of another. Route orders (tiers of
// 1 minute and 1 day, extra 20/second) checks the extra second first;
// route export (extra 500/hour beside an unlimited tier) keys the extra
// limit by tier, as it takes a different rank for the unlimited tier. The
// filters are disabled in the filter chain: a route enables those it uses
// (by its config), the others cost it nothing but a skip. A consumer of
// an unknown tier reaches every bucket of the default tier
// (checkUnknownTier).
func TestQuotaBackstopLayout(t *testing.T) {
	tc := loadCase(t, "ratelimit_quota")
	r, err := Translate(&tc.Config, tc.Gateway, tc.options())
	if err != nil {
		t.Fatal(err)
	}
	hcm := decodeHCM(t, r.Listeners[0])
	names := filterNames(hcm)
	i := slices.Index(names, envoy.RateLimitQuotaName)
	want := []string{envoy.LocalRateLimitFilterName(0), envoy.LocalRateLimitFilterName(1), envoy.LocalRateLimitFilterName(2)}
	if i < 0 || len(names) < i+4 || !slices.Equal(names[i+1:i+4], want) || slices.Contains(names, envoy.LocalRateLimitFilterName(3)) {
		t.Fatalf("filters %v, want %v right after RLQS", names, want)
	}
	for _, f := range hcm.GetHttpFilters()[i+1 : i+4] {
		if !f.GetDisabled() {
			t.Errorf("filter %s enabled in the filter chain, want disabled unless a route enables it", f.GetName())
		}
	}
	routes := map[string]ir.RouteRateLimit{}
	gw, _ := tc.Config.Gateway(tc.Gateway)
	gw.EachRoute(func(r *ir.Route) { routes[r.Name] = r.RateLimit })
	keyed := false
	for _, rc := range r.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, rt := range vh.GetRoutes() {
				buckets := routeBuckets(t, rt)
				rr := routes[rt.GetName()]
				for _, chain := range layoutChains(&tc.Config, rr) {
					checkChain(t, rt.GetName(), chain, buckets, chainLimits(&tc.Config, rr, chain))
				}
				if rr.Consumer {
					checkUnknownTier(t, rt, tc.Config.RateLimits.DefaultTier)
				}
				for _, b := range buckets {
					keyed = keyed || b.chain != "" && b.extra
				}
			}
		}
	}
	if !keyed {
		t.Error("no extra limit keyed by tier: route export should have one")
	}
}

// TestQuotaBackstopUnknownTierBesideUnlimitedDefault: with an unlimited
// default tier beside a limited one, an extra limit takes different ranks
// for the two and is keyed by the tier; a consumer of a tier the policy
// does not know (its own tier descriptor matches no bucket) meets the
// default tier's buckets, its extra bucket included, as RLQS counts it in
// the default tier. Before, it had no extra bucket at all here; then
// (with buckets of the unknown tier's own) one consumer with tokens of
// the default tier and of an unknown one got each limit twice.
func TestQuotaBackstopUnknownTierBesideUnlimitedDefault(t *testing.T) {
	cfg := &ir.Config{RateLimits: ir.RateLimits{Mode: ir.RateLimitQuota, DefaultTier: "internal", Tiers: []ir.Tier{
		{Name: "internal", Unlimited: true},
		{Name: "partner", Limits: []ir.Limit{{Requests: 100, Per: time.Second}}},
	}}}
	rr := ir.RouteRateLimit{Enabled: true, Consumer: true, Extra: []ir.Limit{{Requests: 3, Per: time.Minute}}, By: []string{byConsumer}}
	rt := &routev3.Route{Name: "api"}
	for i, rk := range newQuota(cfg, "rlqs").backstop("api", rr, extAuthzIdentity) {
		if err := envoy.SetRouteFilterConfig(rt, envoy.LocalRateLimitFilterName(i), envoy.LocalRateLimitRoute(rk.descs, rk.actions, 1, i == 0)); err != nil {
			t.Fatal(err)
		}
	}
	buckets := routeBuckets(t, rt)
	for _, chain := range layoutChains(cfg, rr) {
		checkChain(t, "api", chain, buckets, chainLimits(cfg, rr, chain))
	}
	if n := checkUnknownTier(t, rt, cfg.RateLimits.DefaultTier); n != 1 {
		t.Errorf("%d buckets of the default tier, want 1 (its extra bucket)", n)
	}
}

// checkUnknownTier checks that every bucket of the default tier on route
// rt has, in its filter, an action building its descriptor from the tier
// header's unknown values (the unknown tier's), and returns how many
// buckets the default tier has.
func checkUnknownTier(t *testing.T, rt *routev3.Route, def string) (n int) {
	t.Helper()
	for f := 0; ; f++ {
		a := rt.GetTypedPerFilterConfig()[envoy.LocalRateLimitFilterName(f)]
		if a == nil {
			return n
		}
		var cfg localrlv3.LocalRateLimit
		if err := a.UnmarshalTo(&cfg); err != nil {
			t.Fatal(err)
		}
		unknown := map[string]bool{}
		for _, rl := range cfg.GetRateLimits() {
			for _, act := range rl.GetActions() {
				if m := act.GetHeaderValueMatch(); m != nil && m.GetDescriptorKey() == localKeyTier && m.GetDescriptorValue() == def {
					unknown[actionKeys(rl)] = true
				}
			}
		}
		for _, d := range cfg.GetDescriptors() {
			if e := d.GetEntries(); e[1].GetKey() != localKeyTier || e[1].GetValue() != def {
				continue
			}
			n++
			if !unknown[descriptorKeys(d)] {
				t.Errorf("route %s filter %d: no unknown-tier action reaches the default tier's bucket %v", rt.GetName(), f, d.GetEntries())
			}
		}
	}
}

// routeBuckets reads the backstop of a route, checking that only the
// first filter writes X-RateLimit-* and that each descriptor has an
// action building its entries.
func routeBuckets(t *testing.T, rt *routev3.Route) []backstopBucket {
	t.Helper()
	var out []backstopBucket
	for f := 0; ; f++ {
		a := rt.GetTypedPerFilterConfig()[envoy.LocalRateLimitFilterName(f)]
		if a == nil {
			return out
		}
		var cfg localrlv3.LocalRateLimit
		if err := a.UnmarshalTo(&cfg); err != nil {
			t.Fatal(err)
		}
		if on := cfg.GetEnableXRatelimitHeaders() == commonrlv3.XRateLimitHeadersRFCVersion_DRAFT_VERSION_03; on != (f == 0) {
			t.Errorf("route %s filter %d: X-RateLimit headers %v", rt.GetName(), f, cfg.GetEnableXRatelimitHeaders())
		}
		built := map[string]bool{}
		for _, rl := range cfg.GetRateLimits() {
			built[actionKeys(rl)] = true
		}
		for _, d := range cfg.GetDescriptors() {
			out = append(out, readBucket(t, rt.GetName(), f, d))
			if k := descriptorKeys(d); !built[k] {
				t.Errorf("route %s filter %d: no action builds %s (actions %v)", rt.GetName(), f, k, built)
			}
		}
	}
}

func readBucket(t *testing.T, route string, f int, d *commonrlv3.LocalRateLimitDescriptor) backstopBucket {
	t.Helper()
	e := d.GetEntries()
	if len(e) < 2 || e[0].GetKey() != localKeyWindow {
		t.Fatalf("route %s: descriptor %v does not start with its window", route, d)
	}
	b := backstopBucket{filter: f, list: fmt.Sprint(e[1:])}
	switch e[1].GetKey() {
	case localKeyTier:
		b.chain, b.list = e[1].GetKey()+"="+e[1].GetValue(), fmt.Sprint(e[2:])
	case localKeyAnon:
		b.chain = localKeyAnon
	}
	b.extra = slices.ContainsFunc(e, func(x *commonrlv3.RateLimitDescriptor_Entry) bool { return x.GetKey() == localKeyExtra })
	tb := d.GetTokenBucket()
	b.refill = refill{num: uint64(tb.GetMaxTokens()) * uint64(tb.GetFillInterval().AsDuration()/time.Second), den: uint64(tb.GetTokensPerFill().GetValue())}
	return b
}

// layoutChains names the lists of which one applies to each request of a
// route, as readBucket names their buckets ("" for a route whose only
// list is its extra limits).
func layoutChains(cfg *ir.Config, rr ir.RouteRateLimit) []string {
	switch {
	case rr.Consumer:
		var out []string
		for _, t := range cfg.RateLimits.Tiers {
			out = append(out, localKeyTier+"="+t.Name)
		}
		return out
	case rr.Anonymous:
		return []string{localKeyAnon}
	case len(rr.Extra) > 0:
		return []string{""}
	}
	return nil
}

// chainLimits is the limits a request of chain meets on the route.
func chainLimits(cfg *ir.Config, rr ir.RouteRateLimit, chain string) []ir.Limit {
	var own []ir.Limit
	switch {
	case chain == localKeyAnon:
		own = cfg.RateLimits.Anonymous
	case chain != "":
		tier, _ := cfg.RateLimits.Tier(strings.TrimPrefix(chain, localKeyTier+"="))
		own = tier.Limits
	}
	return slices.Concat(own, rr.Extra)
}

// checkChain checks the buckets a request of chain meets: one per limit,
// refill times increasing from filter to filter and equal within one, one
// in the first filter.
func checkChain(t *testing.T, route, chain string, buckets []backstopBucket, limits []ir.Limit) {
	t.Helper()
	var mine []backstopBucket
	for _, b := range buckets {
		if b.chain == chain || b.chain == "" && b.extra {
			mine = append(mine, b)
		}
	}
	if len(mine) != len(limits) {
		t.Errorf("route %s, %q: %d buckets, want one per limit (%d): %v", route, chain, len(mine), len(limits), mine)
		return
	}
	if len(mine) > 0 && !slices.ContainsFunc(mine, func(b backstopBucket) bool { return b.filter == 0 }) {
		t.Errorf("route %s, %q: no bucket in the first filter (no X-RateLimit-*): %v", route, chain, mine)
	}
	for _, a := range mine {
		for _, b := range mine {
			if c := a.refill.compare(b.refill); a.filter < b.filter && c >= 0 || a.filter == b.filter && c != 0 {
				t.Errorf("route %s, %q: bucket %v (refill %v) in filter %d, %v (refill %v) in filter %d",
					route, chain, a.list, a.refill, a.filter, b.list, b.refill, b.filter)
			}
		}
	}
}

// descriptorKeys is a descriptor's keys, and the window's value.
func descriptorKeys(d *commonrlv3.LocalRateLimitDescriptor) string {
	keys := []string{d.GetEntries()[0].GetValue()}
	for _, e := range d.GetEntries() {
		keys = append(keys, e.GetKey())
	}
	return strings.Join(keys, ",")
}

// actionKeys is the keys of the descriptor an action list builds, and the
// window's value.
func actionKeys(rl *routev3.RateLimit) string {
	var keys []string
	for _, a := range rl.GetActions() {
		switch {
		case a.GetGenericKey() != nil:
			if a.GetGenericKey().GetDescriptorKey() == localKeyWindow {
				keys = append(keys, a.GetGenericKey().GetDescriptorValue())
			}
			keys = append(keys, a.GetGenericKey().GetDescriptorKey())
		case a.GetMetadata() != nil:
			keys = append(keys, a.GetMetadata().GetDescriptorKey())
		case a.GetHeaderValueMatch() != nil:
			keys = append(keys, a.GetHeaderValueMatch().GetDescriptorKey())
		case a.GetRemoteAddress() != nil:
			keys = append(keys, localKeyClientIP)
		}
	}
	return strings.Join(keys, ",")
}

// simBucket is a backstop token bucket as Envoy 1.40 keeps it: refilled
// continuously at rate up to max tokens.
type simBucket struct{ tokens, max, rate float64 }

func (b *simBucket) refill(dt float64) { b.tokens = min(b.max, b.tokens+b.rate*dt) }

// TestBackstopTierAndExtraLikeExactMode: a consumer of a tier of
// 100/minute on a route with an extra limit of 5/second (both per
// consumer: exact mode takes them all or nothing), sending 20 requests a
// second for 40 s, is admitted by the backstop's filters as Envoy 1.40
// runs them (simulated: within a filter, matched buckets slowest refill
// first, each spent until one refuses; filters in order) exactly what
// exact mode admits, with an all-or-nothing take over the same buckets.
// Both lists in one filter (the layout before) admitted about half.
func TestBackstopTierAndExtraLikeExactMode(t *testing.T) {
	cfg := &ir.Config{RateLimits: ir.RateLimits{Mode: ir.RateLimitQuota, DefaultTier: "t",
		Tiers: []ir.Tier{{Name: "t", Limits: []ir.Limit{{Requests: 100, Per: time.Minute}}}}}}
	rr := ir.RouteRateLimit{Enabled: true, Consumer: true, Extra: []ir.Limit{{Requests: 5, Per: time.Second}}}
	ranks := newQuota(cfg, "rlqs").backstop("api", rr, extAuthzIdentity)
	var filters [][]*simBucket
	for _, r := range ranks {
		var f []*simBucket
		for _, d := range r.descs {
			rate := float64(d.TokensPerFill) / d.FillInterval.Seconds()
			f = append(f, &simBucket{tokens: float64(d.MaxTokens), max: float64(d.MaxTokens), rate: rate})
		}
		slices.SortStableFunc(f, func(a, b *simBucket) int { return cmp.Compare(a.rate, b.rate) })
		filters = append(filters, f)
	}
	exact := []*simBucket{{tokens: 100, max: 100, rate: 100.0 / 60}, {tokens: 5, max: 5, rate: 5}}
	envoyAdmits := func() bool {
		for _, f := range filters {
			for _, b := range f {
				if b.tokens < 1 {
					return false
				}
				b.tokens--
			}
		}
		return true
	}
	exactAdmits := func() bool {
		for _, b := range exact {
			if b.tokens < 1 {
				return false
			}
		}
		for _, b := range exact {
			b.tokens--
		}
		return true
	}
	admitted, want := 0, 0
	const dt = 0.05 // 20 requests a second
	for i := 0; i < 800; i++ {
		for _, f := range filters {
			for _, b := range f {
				b.refill(dt)
			}
		}
		for _, b := range exact {
			b.refill(dt)
		}
		if envoyAdmits() {
			admitted++
		}
		if exactAdmits() {
			want++
		}
	}
	t.Logf("%d filters; 20/s for 40 s against 100/minute + 5/second: backstop admitted %d, exact mode %d", len(filters), admitted, want)
	if len(filters) != 2 || admitted != want {
		t.Fatalf("backstop in %d filters admitted %d, exact mode %d: want 2 filters admitting the same", len(filters), admitted, want)
	}
}
