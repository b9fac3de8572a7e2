package envoy

import (
	"regexp"
	"testing"
)

// TestRouteCountersNotCreated: the matcher drops a route's timeout and
// retry counters and nothing else: the route's documented series, the
// clusters' timeout and retry counters and other scopes' stats stay.
func TestRouteCountersNotCreated(t *testing.T) {
	re := regexp.MustCompile(RouteCountersNotCreated)
	tests := []struct {
		name string
		drop bool
	}{
		{"vhost.api_example_com.route.users.upstream_rq_timeout", true},
		{"vhost.any.route.users.upstream_rq_retry", true},
		{"vhost.any.route.users.upstream_rq_retry_limit_exceeded", true},
		{"vhost.any.route.users.upstream_rq_retry_overflow", true},
		{"vhost.any.route.users.upstream_rq_retry_success", true},
		{"vhost.any.route.users.upstream_rq_total", false},
		{"vhost.any.route.users.upstream_rq_2xx", false},
		{"vhost.any.route.users.upstream_rq_503", false},
		{"vhost.any.route.users.upstream_rq_time", false},
		{"vhost.any.vcluster.other.upstream_rq_timeout", false},
		{"cluster.users.upstream_rq_timeout", false},
		{"cluster.users.upstream_rq_retry", false},
		{"cluster.users.upstream_rq_retry_success", false},
		{"http.public.downstream_rq_timeout", false},
	}
	for _, tt := range tests {
		if got := re.MatchString(tt.name); got != tt.drop {
			t.Errorf("%s: dropped %v, want %v", tt.name, got, tt.drop)
		}
	}
}
