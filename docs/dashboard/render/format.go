package main

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// expand replaces the dashboard's variables: $__rate_interval is 1m and the
// multi-value $route matches every route.
func expand(expr string) string {
	expr = strings.ReplaceAll(expr, "$__rate_interval", "1m")
	return strings.ReplaceAll(expr, `=~"$route"`, `=~".*"`)
}

// legend formats a series name from a Grafana legendFormat ({{label}} is the
// label's value, "" if absent); without a format it is the label set as JSON.
func legend(format string, metric map[string]string) string {
	if format == "" {
		return labelsJSON(metric)
	}
	re := regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)
	return re.ReplaceAllStringFunc(format, func(m string) string {
		return metric[re.FindStringSubmatch(m)[1]]
	})
}

// labelsJSON writes a label set as {"a": "1", "b": "2"}, keys sorted.
func labelsJSON(metric map[string]string) string {
	keys := make([]string, 0, len(metric))
	for k := range metric {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = strconv.Quote(k) + ": " + strconv.Quote(metric[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// formatValue formats v in a Grafana unit: percentunit, reqps, s, ms, or a
// plain number ("-" for NaN).
func formatValue(v float64, unit string) string {
	if math.IsNaN(v) {
		return "-"
	}
	switch unit {
	case "percentunit":
		return fmt.Sprintf("%.1f%%", v*100)
	case "reqps":
		return fmt.Sprintf("%.1f req/s", v)
	case "s":
		return formatValue(v*1000, "ms")
	case "ms":
		switch {
		case v >= 1000:
			return fmt.Sprintf("%.2f s", v/1000)
		case v > 0 && v < 1:
			return fmt.Sprintf("%.2g ms", v)
		}
		return fmt.Sprintf("%.1f ms", v)
	}
	if math.Abs(v-math.Round(v)) < 1e-9 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
