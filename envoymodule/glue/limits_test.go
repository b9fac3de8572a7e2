package glue

import (
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/extauthz"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

func TestGCRAOf(t *testing.T) {
	tests := []struct {
		name string
		l    ir.Limit
		want GCRA
		err  bool
	}{
		{"10/s", ir.Limit{Requests: 10, Per: time.Second}, GCRA{100 * time.Millisecond, 900 * time.Millisecond}, false},
		{"burst above requests", ir.Limit{Requests: 2, Per: time.Second, Burst: 5}, GCRA{500 * time.Millisecond, 2 * time.Second}, false},
		{"burst below requests is requests", ir.Limit{Requests: 4, Per: time.Minute, Burst: 1}, GCRA{15 * time.Second, 45 * time.Second}, false},
		{"emission rounded up", ir.Limit{Requests: 7, Per: time.Minute}, GCRA{8571428572, 6 * 8571428572}, false},
		{"one a month", ir.Limit{Requests: 1, Per: 30 * 24 * time.Hour}, GCRA{30 * 24 * time.Hour, 0}, false},
		{"more than one a nanosecond", ir.Limit{Requests: 5e9, Per: time.Second}, GCRA{1, 5e9 - 1}, false},
		{"huge burst capped", ir.Limit{Requests: 1, Per: time.Hour, Burst: 1 << 62}, GCRA{time.Hour, maxTolerance}, false},
		{"zero requests", ir.Limit{Per: time.Second}, GCRA{}, true},
		{"zero per", ir.Limit{Requests: 1}, GCRA{}, true},
		{"per beyond 36 years", ir.Limit{Requests: 1, Per: math.MaxInt64}, GCRA{}, true}, // limit.h TG_LIMIT_MAX_NS
		{"per at 2^60 ns", ir.Limit{Requests: 1, Per: maxTolerance}, GCRA{maxTolerance, 0}, false},
	}
	for _, tt := range tests {
		got, err := GCRAOf(tt.l)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%s: %+v %v, want %+v (error %v)", tt.name, got, err, tt.want, tt.err)
		}
	}
}

func TestBucketsOf(t *testing.T) {
	deny := []envoymod.Header{{Name: "retry-after", Value: "1"}, {Name: "content-type", Value: "application/json"}}
	ietf := &envoymod.IETFHeaders{Policy: `"gold";q=10;w=1`, RateLimitR: `"gold";r=`, RateLimitT: ";t="}
	rl := envoymod.RouteLimits{
		Tiers: map[string]envoymod.LimitBucket{
			"gold": {ID: "tier/gold/r", Limits: []ir.Limit{{Requests: 10, Per: time.Second}, {Requests: 100, Per: time.Minute, Burst: 150}},
				ReportedLimit: 1, DenyBody: `{"error":"rate_limited"}`, DenyHeaders: deny, IETF: ietf},
			"free": {ID: "tier/free/r", Unlimited: true},
		},
		Default:      envoymod.LimitBucket{ID: "tier//r", Limits: []ir.Limit{{Requests: 1, Per: time.Second}}, DenyBody: "d"},
		Unidentified: envoymod.LimitBucket{ID: "anon//r", DenyBody: "u"},
	}
	got, err := BucketsOf(rl)
	if err != nil {
		t.Fatal(err)
	}
	hs := []extauthz.Header{{Name: "retry-after", Value: "1"}, {Name: "content-type", Value: "application/json"}}
	want := []Bucket{
		{Tier: "free", ID: "tier/free/r", Flags: SpecUnlimited},
		{Tier: "gold", ID: "tier/gold/r", Limits: []GCRA{{100 * time.Millisecond, 900 * time.Millisecond},
			{600 * time.Millisecond, 149 * 600 * time.Millisecond}}, Body: `{"error":"rate_limited"}`, Headers: hs,
			Reported: 1, ReportLimit: 150, IETF: ietf},
		{ID: "tier//r", Limits: []GCRA{{time.Second, 0}}, Body: "d", ReportLimit: 1},
		{ID: "anon//r", Flags: SpecDeny, Body: "u"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v\nwant %+v", got, want)
	}
	if p := got[1].LimitPairs(); !reflect.DeepEqual(p, []int64{1e8, 9e8, 6e8, 149 * 6e8}) {
		t.Errorf("pairs %v", p)
	}
}

func TestBucketsOfRefuses(t *testing.T) {
	many := make([]ir.Limit, MaxLimits+1)
	for i := range many {
		many[i] = ir.Limit{Requests: 1, Per: time.Second}
	}
	tests := []struct {
		name string
		rl   envoymod.RouteLimits
		want string
	}{
		{"limited without an id", envoymod.RouteLimits{Default: envoymod.LimitBucket{Limits: many[:1]}}, "default bucket: a limited bucket needs an id"},
		{"too many limits", envoymod.RouteLimits{Tiers: map[string]envoymod.LimitBucket{"t": {ID: "x", Limits: many}}}, `tier "t": 9 limits`},
		{"bad limit", envoymod.RouteLimits{Default: envoymod.LimitBucket{ID: "x", Limits: []ir.Limit{{Per: time.Second}}}}, "requests and per must be positive"},
		{"too many headers", envoymod.RouteLimits{Default: envoymod.LimitBucket{Unlimited: true},
			Unidentified: envoymod.LimitBucket{Deny: true, DenyHeaders: make([]envoymod.Header, MaxDenyHeaders+1)}}, "unidentified bucket: 17 deny headers"},
		{"reported beyond the limits", envoymod.RouteLimits{Default: envoymod.LimitBucket{ID: "x", Limits: many[:2], ReportedLimit: 2}},
			"default bucket: reported limit 2 of 2 limits"},
		{"reported negative", envoymod.RouteLimits{Default: envoymod.LimitBucket{ID: "x", Limits: many[:1], ReportedLimit: -1}},
			"reported limit -1"},
		{"reported without limits", envoymod.RouteLimits{Default: envoymod.LimitBucket{Unlimited: true, ReportedLimit: 1}},
			"reported limit 1 of 0 limits"},
		{"IETF headers without limits", envoymod.RouteLimits{Default: envoymod.LimitBucket{ID: "x", IETF: &envoymod.IETFHeaders{Policy: "p"}}},
			"default bucket: IETF headers need limits"},
	}
	for _, tt := range tests {
		_, err := BucketsOf(tt.rl)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestCaller(t *testing.T) {
	c, tier := Caller([]extauthz.Header{{Name: "consumer", Value: "corp:a"}, {Name: "route", Value: "r"}, {Name: "tier", Value: "gold"}})
	if c != "corp:a" || tier != "gold" {
		t.Fatalf("%q %q", c, tier)
	}
	if c, tier := Caller(nil); c != "" || tier != "" {
		t.Fatalf("%q %q", c, tier)
	}
}

func TestParseDrain(t *testing.T) {
	rec := func(id, consumer string, a, d uint64) []byte {
		b := Blob(nil).Add(id).Add(consumer)
		return binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(b, a), d)
	}
	b := append(rec("b1", "alice", 3, 2), rec("b2", "", 0, 0)...)
	got, err := ParseDrain(b, 2)
	want := []DrainRecord{{"b1", "alice", 3, 2}, {"b2", "", 0, 0}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range [][]byte{b[:len(b)-1], append(b, 0), b[:3]} {
		if _, err := ParseDrain(bad, 2); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}

func TestBucketsOfEmptyDefault(t *testing.T) {
	got, err := BucketsOf(envoymod.RouteLimits{Unidentified: envoymod.LimitBucket{ID: "deny//r", Deny: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Flags != SpecUnlimited || got[1].Flags != SpecDeny {
		t.Fatalf("%+v", got)
	}
}
