package top

import (
	"math"
	"strings"
	"testing"
	"time"
)

const before = `# TYPE envoy_vhost_route_upstream_rq_total counter
envoy_vhost_route_upstream_rq_total{envoy_virtual_host="any",envoy_route="users"} 100
envoy_vhost_route_upstream_rq_total{envoy_virtual_host="api_example_com",envoy_route="users"} 50
# TYPE envoy_vhost_route_upstream_rq_xx counter
envoy_vhost_route_upstream_rq_xx{envoy_response_code_class="2",envoy_virtual_host="any",envoy_route="users"} 150
# TYPE envoy_vhost_route_upstream_rq_time histogram
envoy_vhost_route_upstream_rq_time_bucket{envoy_virtual_host="any",envoy_route="users",le="10"} 100
envoy_vhost_route_upstream_rq_time_bucket{envoy_virtual_host="any",envoy_route="users",le="100"} 150
envoy_vhost_route_upstream_rq_time_bucket{envoy_virtual_host="any",envoy_route="users",le="+Inf"} 150
envoy_vhost_route_upstream_rq_time_sum{envoy_virtual_host="any",envoy_route="users"} 1000
envoy_vhost_route_upstream_rq_time_count{envoy_virtual_host="any",envoy_route="users"} 150
`

const after = `# TYPE envoy_vhost_route_upstream_rq_total counter
envoy_vhost_route_upstream_rq_total{envoy_virtual_host="any",envoy_route="users"} 200
envoy_vhost_route_upstream_rq_total{envoy_virtual_host="api_example_com",envoy_route="users"} 50
envoy_vhost_route_upstream_rq_total{envoy_virtual_host="any",envoy_route="orders"} 10
# TYPE envoy_vhost_route_upstream_rq_xx counter
envoy_vhost_route_upstream_rq_xx{envoy_response_code_class="2",envoy_virtual_host="any",envoy_route="users"} 230
envoy_vhost_route_upstream_rq_xx{envoy_response_code_class="4",envoy_virtual_host="any",envoy_route="users"} 10
envoy_vhost_route_upstream_rq_xx{envoy_response_code_class="5",envoy_virtual_host="any",envoy_route="users"} 10
# TYPE envoy_vhost_route_upstream_rq_time histogram
envoy_vhost_route_upstream_rq_time_bucket{envoy_virtual_host="any",envoy_route="users",le="10"} 150
envoy_vhost_route_upstream_rq_time_bucket{envoy_virtual_host="any",envoy_route="users",le="100"} 250
envoy_vhost_route_upstream_rq_time_bucket{envoy_virtual_host="any",envoy_route="users",le="+Inf"} 250
envoy_vhost_route_upstream_rq_time_sum{envoy_virtual_host="any",envoy_route="users"} 6000
envoy_vhost_route_upstream_rq_time_count{envoy_virtual_host="any",envoy_route="users"} 250
`

func TestDiff(t *testing.T) {
	t0 := time.Unix(1000, 0)
	prev, err := Parse(strings.NewReader(before), t0)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := Parse(strings.NewReader(after), t0.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rows := Diff(prev, cur)
	if len(rows) != 2 || rows[0].Route != "users" || rows[1].Route != "orders" {
		t.Fatalf("rows %+v, want users then orders", rows)
	}
	u := rows[0]
	// 100 new requests in 10 s; 10 4xx, 10 5xx; 50 new samples ≤10 ms and 50 in (10, 100].
	if u.RPS != 10 || u.Requests != 100 || u.Err4xx != 0.1 || u.Err5xx != 0.1 {
		t.Errorf("users %+v", u)
	}
	if u.P50ms == nil || *u.P50ms != 10 || u.P99ms == nil || math.Abs(*u.P99ms-98.2) > 1e-9 {
		t.Errorf("users p50 %v p99 %v, want 10 and 98.2", deref(u.P50ms), deref(u.P99ms))
	}
	if o := rows[1]; o.RPS != 1 || o.P50ms != nil {
		t.Errorf("orders %+v: want 1 req/s and no latency (no histogram)", o)
	}
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		name    string
		q       float64
		buckets []Bucket
		want    float64
	}{
		{"empty", 0.5, nil, math.NaN()},
		{"no observations", 0.5, []Bucket{{10, 0}, {math.Inf(1), 0}}, math.NaN()},
		{"first bucket interpolates from 0", 0.5, []Bucket{{10, 4}, {math.Inf(1), 4}}, 5},
		{"in +Inf is the largest finite bound", 0.99, []Bucket{{10, 1}, {math.Inf(1), 10}}, 10},
		{"middle bucket", 0.75, []Bucket{{10, 50}, {20, 100}, {math.Inf(1), 100}}, 15},
	}
	for _, tt := range tests {
		got := Quantile(tt.q, tt.buckets)
		if !(got == tt.want || math.IsNaN(got) && math.IsNaN(tt.want)) {
			t.Errorf("%s: Quantile(%v) = %v, want %v", tt.name, tt.q, got, tt.want)
		}
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}
