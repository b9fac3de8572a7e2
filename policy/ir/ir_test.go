package ir

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"
)

// TestHashIsMarshalSum pins the version id to the first six bytes of the
// SHA-256 of json.Marshal's encoding: ids stored by earlier releases must
// stay the ids of the same policy, or an upgrade would reload every Envoy.
func TestHashIsMarshalSum(t *testing.T) {
	configs := []*Config{
		{},
		{Gateways: []Gateway{{Name: "public", VirtualHosts: []VirtualHost{{Name: "any", Domains: []string{"*"},
			Routes: []Route{{Name: "web <&>", Match: Match{PathPrefix: "/é"}, Backend: "web", Timeout: 15 * time.Second}}}}}}},
	}
	for _, c := range configs {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if got, want := c.Hash(), hex.EncodeToString(sum[:6]); got != want {
			t.Errorf("Hash() = %s, want %s (sha256 of json.Marshal)", got, want)
		}
	}
}

// TestLimitBackstop: the backstop bucket holds the whole burst and refills
// at exactly Requests per Per in the finest whole-second steps, clamped to
// what Envoy's uint32 fields hold.
func TestLimitBackstop(t *testing.T) {
	for _, tc := range []struct {
		l              Limit
		maxTokens, per uint32
		fill           time.Duration
	}{
		{Limit{Requests: 2, Per: time.Second}, 2, 2, time.Second},
		{Limit{Requests: 4, Per: time.Minute}, 4, 1, 15 * time.Second},
		{Limit{Requests: 5, Per: time.Hour}, 5, 1, 720 * time.Second},
		{Limit{Requests: 1000, Per: 24 * time.Hour}, 1000, 5, 432 * time.Second},
		{Limit{Requests: 60, Per: time.Minute, Burst: 100}, 100, 1, time.Second},
		{Limit{Requests: 7, Per: 500 * time.Millisecond}, 7, 7, time.Second},
		{Limit{Requests: 1 << 40, Per: time.Second}, 1<<32 - 1, 1<<32 - 1, time.Second},
	} {
		maxTokens, per, fill := tc.l.Backstop()
		if maxTokens != tc.maxTokens || per != tc.per || fill != tc.fill {
			t.Errorf("%+v: %d tokens, %d per %s; want %d, %d per %s", tc.l, maxTokens, per, fill, tc.maxTokens, tc.per, tc.fill)
		}
	}
}

// TestBucketStaticRoundTrips: the static part of a bucket id parses back
// to its kind, route and tier (any route name); other values do not parse.
func TestBucketStaticRoundTrips(t *testing.T) {
	for _, c := range [][3]string{{BucketKindConsumer, "api", "gold"}, {BucketKindDeny, "api", ""}, {BucketKindAnonymous, "a/b:c", ""}} {
		k, r, tr, ok := ParseBucketStatic(BucketStatic(c[0], c[1], c[2]))
		if !ok || k != c[0] || r != c[1] || tr != c[2] {
			t.Errorf("%v: parsed %q %q %q %v", c, k, r, tr, ok)
		}
	}
	for _, v := range []string{"", "consumer", "consumer/gold", "/gold/api", "consumer//"} {
		if _, _, _, ok := ParseBucketStatic(v); ok {
			t.Errorf("%q parsed", v)
		}
	}
}
