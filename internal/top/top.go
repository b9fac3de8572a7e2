// Package top computes a live per-route view of an Envoy from two scrapes
// of its Prometheus stats: request rate, error rates and p50/p99 latency
// per policy route (the envoy_route label of the route stats Tollgate turns
// on with each route's stat_prefix), summed over virtual hosts.
package top

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The Envoy series top reads.
const (
	totalName   = "envoy_vhost_route_upstream_rq_total"
	classesName = "envoy_vhost_route_upstream_rq_xx"
	timeName    = "envoy_vhost_route_upstream_rq_time"
	routeLabel  = "envoy_route"
	classLabel  = "envoy_response_code_class"
	statsPath   = `/stats/prometheus?usedonly&filter=%5Evhost%5C.` // ^vhost\.
)

// Sample is one scrape: per-route counters and latency buckets.
type Sample struct {
	At     time.Time
	Routes map[string]*RouteStats
}

// RouteStats are one route's cumulative counters, summed over virtual
// hosts. Buckets maps an upper bound (ms) to the cumulative count.
type RouteStats struct {
	Total, Err4xx, Err5xx float64
	Buckets               map[float64]float64
}

// Scrape reads Envoy's admin /stats/prometheus (route stats only).
func Scrape(ctx context.Context, c *http.Client, adminURL string) (*Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, adminURL+statsPath, nil)
	if err != nil {
		return nil, fmt.Errorf("stats request: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", adminURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %d", adminURL, resp.StatusCode)
	}
	return Parse(resp.Body, time.Now())
}

// Parse reads Prometheus text exposition taken at time at.
func Parse(r io.Reader, at time.Time) (*Sample, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse Envoy stats: %w", err)
	}
	s := &Sample{At: at, Routes: map[string]*RouteStats{}}
	for _, m := range fams[totalName].GetMetric() {
		s.route(m).Total += m.GetCounter().GetValue()
	}
	for _, m := range fams[classesName].GetMetric() {
		switch label(m, classLabel) {
		case "4":
			s.route(m).Err4xx += m.GetCounter().GetValue()
		case "5":
			s.route(m).Err5xx += m.GetCounter().GetValue()
		}
	}
	for _, m := range fams[timeName].GetMetric() {
		rs := s.route(m)
		for _, b := range m.GetHistogram().GetBucket() {
			rs.Buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	}
	return s, nil
}

func (s *Sample) route(m *dto.Metric) *RouteStats {
	name := label(m, routeLabel)
	rs, ok := s.Routes[name]
	if !ok {
		rs = &RouteStats{Buckets: map[float64]float64{}}
		s.Routes[name] = rs
	}
	return rs
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// Row is one route's activity between two samples. Latencies are nil when
// the route had no completed request in the interval.
type Row struct {
	Route    string   `json:"route"`
	RPS      float64  `json:"rps"`
	Requests float64  `json:"requests"`
	Err4xx   float64  `json:"errorRate4xx"`
	Err5xx   float64  `json:"errorRate5xx"`
	P50ms    *float64 `json:"p50Ms"`
	P99ms    *float64 `json:"p99Ms"`
}

// Diff returns the rows of every route in cur, busiest first.
func Diff(prev, cur *Sample) []Row {
	secs := cur.At.Sub(prev.At).Seconds()
	rows := make([]Row, 0, len(cur.Routes))
	for name, c := range cur.Routes {
		p := prev.Routes[name]
		if p == nil {
			p = &RouteStats{Buckets: map[float64]float64{}}
		}
		n := c.Total - p.Total
		r := Row{Route: name, Requests: n}
		if secs > 0 {
			r.RPS = n / secs
		}
		if n > 0 {
			r.Err4xx, r.Err5xx = (c.Err4xx-p.Err4xx)/n, (c.Err5xx-p.Err5xx)/n
		}
		delta := deltaBuckets(p.Buckets, c.Buckets)
		r.P50ms, r.P99ms = orNil(Quantile(0.5, delta)), orNil(Quantile(0.99, delta))
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].RPS != rows[j].RPS {
			return rows[i].RPS > rows[j].RPS
		}
		return rows[i].Route < rows[j].Route
	})
	return rows
}

// Bucket is a cumulative histogram bucket.
type Bucket struct{ UpperBound, Count float64 }

func deltaBuckets(prev, cur map[float64]float64) []Bucket {
	out := make([]Bucket, 0, len(cur))
	for ub, c := range cur {
		out = append(out, Bucket{UpperBound: ub, Count: c - prev[ub]})
	}
	slices.SortFunc(out, func(a, b Bucket) int { return cmp.Compare(a.UpperBound, b.UpperBound) })
	return out
}

// Quantile estimates the q-quantile of cumulative buckets sorted by upper
// bound, interpolating linearly inside a bucket as Prometheus's
// histogram_quantile does; NaN without observations. A quantile in the
// +Inf bucket is the largest finite bound.
func Quantile(q float64, buckets []Bucket) float64 {
	if len(buckets) == 0 {
		return math.NaN()
	}
	total := buckets[len(buckets)-1].Count
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range buckets {
		if b.Count >= rank {
			if math.IsInf(b.UpperBound, 1) {
				return lower
			}
			if b.Count == below {
				return b.UpperBound
			}
			return lower + (b.UpperBound-lower)*(rank-below)/(b.Count-below)
		}
		lower, below = b.UpperBound, b.Count
	}
	return lower
}

func orNil(f float64) *float64 {
	if math.IsNaN(f) {
		return nil
	}
	return &f
}
