package policy

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// rateLimitSchema holds the allowed fields of the rate-limit mappings: the
// top-level rateLimits section, a limit and a route's rateLimit.
type rateLimitSchema struct {
	section []field[RateLimits]
	limit   []field[Limit]
	route   []field[RouteRateLimit]
}

func newRateLimitSchema() rateLimitSchema {
	return rateLimitSchema{section: rateLimitsFields(), limit: limitFields(), route: routeRateLimitFields()}
}

// loadRateLimits loads a top-level rateLimits section. Several sections
// (in several files or documents) add up: their tiers are merged, but
// defaultTier, anonymous and failureMode may be set in one of them only.
func loadRateLimits(l *loader, p *Policy, path string, n *yaml.Node) {
	if p.RateLimits == nil {
		p.RateLimits = &RateLimits{}
	}
	mapping(l, path, n, p.RateLimits, l.schema.limits.section)
}

func rateLimitsFields() []field[RateLimits] {
	return []field[RateLimits]{
		{name: "tiers", load: loadTiers},
		{name: "defaultTier", load: func(l *loader, r *RateLimits, path string, n *yaml.Node) {
			if !l.setTwice(path, n, r.DefaultTier != "") {
				r.DefaultTier = l.str(path, n)
			}
		}},
		{name: "anonymous", load: func(l *loader, r *RateLimits, path string, n *yaml.Node) {
			if !l.setTwice(path, n, r.Anonymous != nil) {
				r.Anonymous = appendList(l, path, n, []Limit{}, l.schema.limits.limit)
			}
		}},
		{name: "failureMode", load: func(l *loader, r *RateLimits, path string, n *yaml.Node) {
			if !l.setTwice(path, n, r.FailureMode != "") {
				r.FailureMode = l.str(path, n)
			}
		}},
		{name: "mode", load: func(l *loader, r *RateLimits, path string, n *yaml.Node) {
			if !l.setTwice(path, n, r.Mode != "") {
				r.Mode = l.str(path, n)
			}
		}},
		{name: "ietfHeaders", load: func(l *loader, r *RateLimits, path string, n *yaml.Node) {
			if !l.setTwice(path, n, r.IETFHeaders != nil) {
				v := l.boolean(path, n)
				r.IETFHeaders = &v
			}
		}},
	}
}

// loadTiers loads a mapping of tier names to tiers, appending them to r's
// tiers. A tier's path is rateLimits.tiers.<name>, at its name; a name
// defined twice (here or in another section) is reported and dropped. When
// a name cannot be read, the whole tiers field is marked failed: the set of
// tier names is then unknown.
func loadTiers(l *loader, r *RateLimits, path string, n *yaml.Node) {
	v, ok := l.resolve(path, n)
	if !ok {
		return
	}
	if !isMap(v) {
		got, _ := describe(v)
		l.fail(path, v, "expected a mapping, got "+got,
			"map each tier name to its limits, e.g. `tiers: {free: [{requests: 100, per: minute}], pro: unlimited}`")
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		name, ok := l.key(path, k)
		if !ok {
			l.p.src.markFailed(path)
			continue
		}
		tp := fieldPath(path, name)
		if l.tierDefined(r, tp, name, k) {
			continue
		}
		l.record(tp, k)
		t := Tier{Name: name}
		if isNull(val) {
			l.fail(tp, k, fmt.Sprintf("tier %q has no value", name), tierForm(name))
		} else {
			loadTier(l, &t, tp, val)
		}
		r.Tiers = append(r.Tiers, t)
	}
}

// tierDefined reports, when r already has a tier called name, that the key
// k defines it again.
func (l *loader) tierDefined(r *RateLimits, path, name string, k *yaml.Node) bool {
	for _, t := range r.Tiers {
		if t.Name == name {
			l.errorAt(path, l.rangeOf(k), fmt.Sprintf("duplicate tier %q (first defined at %s)", name, l.p.src.firstRange(path)),
				"rename one of the two tiers, or merge their limits into one; only the first was read")
			return true
		}
	}
	return false
}

// tierForm is the fix for a tier that is neither a list nor "unlimited".
func tierForm(name string) string {
	return fmt.Sprintf("write `%s: [{requests: 100, per: minute}]` with its limits, or `%s: %s`", name, name, unlimitedTier)
}

// loadTier loads a tier's value: a list of limits, or the string
// "unlimited".
func loadTier(l *loader, t *Tier, path string, n *yaml.Node) {
	v, ok := l.resolve(path, n)
	if !ok {
		return
	}
	switch kindOfNode(v) {
	case kindSequence:
		t.Limits = appendList(l, path, v, []Limit{}, l.schema.limits.limit)
		return
	case kindString:
		if v.Value == unlimitedTier {
			t.Unlimited = true
			return
		}
	}
	summary := fmt.Sprintf("expected a list of limits or %q, got %s", unlimitedTier, kindOf(v))
	l.fail(path, v, summary+didYouMeanWord(v, unlimitedTier), tierForm(t.Name))
}

func limitFields() []field[Limit] {
	return []field[Limit]{
		{name: "requests", required: true, hint: "add `requests: <number of requests per unit>`", load: func(l *loader, lim *Limit, path string, n *yaml.Node) {
			lim.Requests, _ = l.integer(path, n)
		}},
		requiredString("per", "add `per: minute` (or second, hour, day, month)", func(lim *Limit) *string { return &lim.Per }),
		{name: "burst", load: loadBurst},
	}
}

// loadBurst loads a limit's burst. 0 would read as "left out": it is
// rejected here, as Validate cannot tell.
func loadBurst(l *loader, lim *Limit, path string, n *yaml.Node) {
	v, ok := l.integer(path, n)
	if !ok {
		return
	}
	if v == 0 {
		l.fail(path, n, "burst 0 is below the rate", burstFix("requests"))
		return
	}
	lim.Burst = v
}

// burstFix is the fix for a burst below the rate of requests.
func burstFix(requests string) string {
	return fmt.Sprintf("set burst to at least %s, or remove burst to use the rate as the burst", requests)
}

// routeRateLimitForm is the fix for a route rateLimit that is neither
// "none" nor a mapping.
const routeRateLimitForm = "write `rateLimit: none` for a route that is not rate limited, or a mapping such as " +
	"`rateLimit: {extra: [{requests: 5, per: second}]}`"

// loadRouteRateLimit loads a route's rateLimit: the string "none" for a
// route that is not rate limited, or a mapping.
func loadRouteRateLimit(l *loader, r *Route, path string, n *yaml.Node) {
	v, ok := l.resolve(path, n)
	if !ok {
		return
	}
	if isMap(v) {
		r.RateLimit = &RouteRateLimit{}
		mapping(l, path, v, r.RateLimit, l.schema.limits.route)
		return
	}
	if s, isString := plainString(v); isString && s == noRateLimit {
		r.RateLimit = &RouteRateLimit{None: true}
		return
	}
	summary := fmt.Sprintf("expected %q or a mapping, got %s", noRateLimit, kindOf(v))
	l.fail(path, v, summary+didYouMeanWord(v, noRateLimit), routeRateLimitForm)
}

func routeRateLimitFields() []field[RouteRateLimit] {
	return []field[RouteRateLimit]{
		{name: "consumer", load: func(l *loader, r *RouteRateLimit, path string, n *yaml.Node) {
			consumer := l.boolean(path, n)
			r.Consumer = &consumer
		}},
		{name: "extra", load: func(l *loader, r *RouteRateLimit, path string, n *yaml.Node) {
			r.Extra = appendList(l, path, n, []Limit{}, l.schema.limits.limit)
		}},
		stringsField("by", func(r *RouteRateLimit) *[]string { return &r.By }),
		{name: "shadow", load: func(l *loader, r *RouteRateLimit, path string, n *yaml.Node) {
			r.Shadow = l.boolean(path, n)
		}},
	}
}

// kindOf names the kind of value n holds, for "expected ..., got ..."
// summaries.
func kindOf(n *yaml.Node) string {
	kind, _ := describe(n)
	return kind
}

// didYouMeanWord is a "did you mean" suffix when n is a string close to
// word, e.g. "Unlimited" or "nne"; "" otherwise.
func didYouMeanWord(n *yaml.Node, word string) string {
	s, ok := plainString(n)
	if !ok {
		return ""
	}
	if _, near := closest(s, []string{word}); !near {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", word)
}
