package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// promClient runs queries against a Prometheus HTTP API.
type promClient struct{ base string }

// result is one series of a query or query_range answer.
type result struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
	Values [][]any           `json:"values"`
}

type point struct{ t, v float64 }

type series struct {
	name string
	pts  []point
}

func (c promClient) query(path string, params url.Values) ([]result, error) {
	u := c.base + path + "?" + params.Encode()
	cl := http.Client{Timeout: 30 * time.Second}
	resp, err := cl.Get(u)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", u, err)
	}
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Result []result `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &body); err != nil || body.Status != "success" {
		return nil, fmt.Errorf("query failed: %s: %s (%v)", u, b, err)
	}
	return body.Data.Result, nil
}

// unix formats Unix seconds for a Prometheus parameter.
func unix(sec float64) string { return strconv.FormatFloat(sec, 'f', -1, 64) }

// parsePoint reads a [time, "value"] pair of the Prometheus API.
func parsePoint(p []any) (point, error) {
	if len(p) != 2 {
		return point{}, fmt.Errorf("sample %v: want [time, value]", p)
	}
	t, ok := p[0].(float64)
	s, ok2 := p[1].(string)
	if !ok || !ok2 {
		return point{}, fmt.Errorf("sample %v: want [number, string]", p)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return point{}, fmt.Errorf("sample %v: %w", p, err)
	}
	return point{t, v}, nil
}

// lastValue is the last non-NaN value of pts, NaN if none.
func lastValue(pts []point) float64 {
	for i := len(pts) - 1; i >= 0; i-- {
		if !math.IsNaN(pts[i].v) {
			return pts[i].v
		}
	}
	return math.NaN()
}
