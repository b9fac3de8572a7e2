package translator

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// TestQuotaDenial: the static denial names the limit with the longest
// emission interval (the one that admits last), Retry-After is that
// interval rounded up, and RateLimit-Policy lists every limit in exact
// mode's format and order.
func TestQuotaDenial(t *testing.T) {
	minute := ir.Limit{Requests: 10, Per: time.Minute}
	hour := ir.Limit{Requests: 100, Per: time.Hour}
	tests := []struct {
		name   string
		limits []namedLimit
		want   map[string]string
		body   string
	}{
		{"one limit", []namedLimit{{"tiny", minute}}, map[string]string{"retry-after": "6", "x-ratelimit-limit": "10",
			"x-ratelimit-remaining": "0", "x-ratelimit-reset": "6", "ratelimit-policy": `"tiny";q=10;w=60`, "ratelimit": `"tiny";r=0;t=6`},
			`{"error":"rate_limited","limit":"tiny","retryAfter":6}`},
		{"the hour binds (36 s per request)", []namedLimit{{"tiny", minute}, {"tiny", hour}}, map[string]string{"retry-after": "36",
			"x-ratelimit-limit": "100", "ratelimit-policy": `"tiny";q=10;w=60, "tiny";q=100;w=3600`, "ratelimit": `"tiny";r=0;t=36`},
			`{"error":"rate_limited","limit":"tiny","retryAfter":36}`},
		{"an extra limit binds", []namedLimit{{"tiny", minute}, {"orders", ir.Limit{Requests: 1, Per: time.Minute}}},
			map[string]string{"retry-after": "60", "x-ratelimit-limit": "1", "ratelimit": `"orders";r=0;t=60`,
				"ratelimit-policy": `"tiny";q=10;w=60, "orders";q=1;w=60`}, `{"error":"rate_limited","limit":"orders","retryAfter":60}`},
		{"rounded up", []namedLimit{{"anonymous", ir.Limit{Requests: 7, Per: time.Minute}}}, map[string]string{"retry-after": "9"},
			`{"error":"rate_limited","limit":"anonymous","retryAfter":9}`},
		{"no limit (deny bucket)", nil, map[string]string{"retry-after": "1", "ratelimit-policy": ""},
			`{"error":"rate_limited","limit":"unidentified","retryAfter":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, headers := quotaDenial(tt.limits, "unidentified")
			got := map[string]string{}
			for _, h := range headers {
				got[h.Name] = h.Value
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if body != tt.body {
				t.Errorf("body %s, want %s", body, tt.body)
			}
		})
	}
}
