package quota

import (
	"testing"

	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit"
)

// TestParseBucket: the quota server reads the ids the translator builds
// (the static part in one entry) and the earlier form (separate kind,
// route and tier entries); any other id is not Tollgate's and is never
// answered (Envoy then applies the bucket's no-assignment rule).
func TestParseBucket(t *testing.T) {
	tb := ratelimit.NewTable(testConfig(ir.FailOpen))
	static := func(kind, route, tier string) string { return ir.BucketStatic(kind, route, tier) }
	tests := []struct {
		name        string
		id          map[string]string
		kind        string
		route, tier string // the labels of its reported requests
		limits      int
		ok          bool
	}{
		{"consumer", consumerBucket("tiny"), ir.BucketKindConsumer, "api", "tiny", 1, true},
		{"consumer, unknown tier is the default", consumerBucket("gold"), ir.BucketKindConsumer, "api", "tiny", 1, true},
		{"consumer, unlimited tier", consumerBucket("ent"), ir.BucketKindConsumer, "api", "ent", 0, true},
		{"consumer, earlier form", legacyConsumerBucket("tiny"), ir.BucketKindConsumer, "api", "tiny", 1, true},
		{"anonymous", map[string]string{ir.BucketKeyBucket: static(ir.BucketKindAnonymous, "open", ""), ir.BucketKeyClientIP: "192.0.2.1"},
			ir.BucketKindAnonymous, "open", "", 1, true},
		{"deny", map[string]string{ir.BucketKeyBucket: static(ir.BucketKindDeny, "api", "")}, ir.BucketKindDeny, "api", "", 0, true},
		{"unlimited", map[string]string{ir.BucketKeyBucket: static(ir.BucketKindUnlimited, "api", "")}, ir.BucketKindUnlimited, "api", "", 0, true},
		{"deny, route not limited", map[string]string{ir.BucketKeyBucket: static(ir.BucketKindDeny, "made-up", "")}, ir.BucketKindDeny, "", "", 0, true},
		{"unlimited, earlier form, route not limited", map[string]string{ir.BucketKeyKind: ir.BucketKindUnlimited, ir.BucketKeyRoute: "made-up"},
			ir.BucketKindUnlimited, "", "", 0, true},
		{"consumer missing", map[string]string{ir.BucketKeyBucket: static(ir.BucketKindConsumer, "api", "tiny")}, "", "", "", 0, false},
		{"client address missing", map[string]string{ir.BucketKeyBucket: static(ir.BucketKindAnonymous, "open", "")}, "", "", "", 0, false},
		{"unknown route", map[string]string{ir.BucketKeyBucket: static(ir.BucketKindConsumer, "gone", "tiny"), ir.BucketKeyConsumer: "alice"}, "", "", "", 0, false},
		{"both forms", map[string]string{ir.BucketKeyBucket: static(ir.BucketKindConsumer, "api", "tiny"), ir.BucketKeyKind: ir.BucketKindDeny,
			ir.BucketKeyConsumer: "alice"}, "", "", "", 0, false},
		{"malformed static part", map[string]string{ir.BucketKeyBucket: "consumer", ir.BucketKeyConsumer: "alice"}, "", "", "", 0, false},
		{"unknown kind", map[string]string{ir.BucketKeyBucket: static("other", "api", ""), ir.BucketKeyConsumer: "alice"}, "", "", "", 0, false},
		{"not Tollgate's, with route and tier keys", map[string]string{"route": "api", "tier": "tiny", "name": "theirs"}, "", "", "", 0, false},
		{"empty id", map[string]string{}, "", "", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ok := parseBucket(tb, tt.id)
			if ok != tt.ok || b.kind != tt.kind || len(b.limits) != tt.limits {
				t.Fatalf("parseBucket(%v) = %q with %d limits, %v; want %q with %d, %v", tt.id, b.kind, len(b.limits), ok, tt.kind, tt.limits, tt.ok)
			}
			// The backstop bound counts the route's listeners: a bucket
			// with limits names its route whichever form its id has. The
			// route and tier label the reported requests: the policy's
			// names only.
			if b.route != tt.route || b.tier != tt.tier {
				t.Fatalf("parseBucket(%v): route %q, tier %q; want %q, %q", tt.id, b.route, b.tier, tt.route, tt.tier)
			}
		})
	}
}
