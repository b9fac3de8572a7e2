package main

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// panelHTML draws one stat or timeseries panel at its gridPos.
func panelHTML(p panel, prom promClient, start, end float64, step int) (string, error) {
	left, top, w, h := panelBox(p.GridPos)
	style := fmt.Sprintf("left:%dpx;top:%dpx;width:%dpx;height:%dpx", left, top, w, h)
	title := `<div class="t">` + esc(p.Title) + `</div>`
	if p.Type == "stat" {
		body, err := statHTML(p, prom, end)
		if err != nil {
			return "", err
		}
		return `<div class="p" style="` + style + `">` + title + `<div class="stats">` + body + `</div></div>`, nil
	}
	ss, err := rangeSeries(p, prom, start, end, step)
	if err != nil {
		return "", err
	}
	return `<div class="p" style="` + style + `">` + title + timeseriesBody(ss, p.unit(), w, h, start, end) + `</div>`, nil
}

// statHTML is a stat panel's values at end: each series' value and legend
// below it, or only its legend when textMode is "name".
func statHTML(p panel, prom promClient, end float64) (string, error) {
	var items []string
	for _, tg := range p.Targets {
		res, err := prom.query("/api/v1/query", url.Values{"query": {expand(tg.Expr)}, "time": {unix(end)}})
		if err != nil {
			return "", err
		}
		for _, r := range res {
			pt, err := parsePoint(r.Value)
			if err != nil {
				return "", fmt.Errorf("panel %q: %w", p.Title, err)
			}
			name := legend(tg.LegendFormat, r.Metric)
			text, sub := formatValue(pt.v, p.unit()), name
			if p.Options.TextMode == "name" {
				text, sub = name, ""
			}
			items = append(items, `<div class="s"><div class="v">`+esc(text)+`</div><div class="l">`+esc(sub)+`</div></div>`)
		}
	}
	if len(items) == 0 {
		return "<div class=v>-</div>", nil
	}
	return strings.Join(items, ""), nil
}

// rangeSeries runs a panel's targets over [start, end], sorted by legend.
func rangeSeries(p panel, prom promClient, start, end float64, step int) ([]series, error) {
	var ss []series
	for _, tg := range p.Targets {
		params := url.Values{"query": {expand(tg.Expr)}, "start": {unix(start)}, "end": {unix(end)}, "step": {strconv.Itoa(step)}}
		res, err := prom.query("/api/v1/query_range", params)
		if err != nil {
			return nil, err
		}
		for _, r := range res {
			s := series{name: legend(tg.LegendFormat, r.Metric)}
			for _, v := range r.Values {
				pt, err := parsePoint(v)
				if err != nil {
					return nil, fmt.Errorf("panel %q: %w", p.Title, err)
				}
				s.pts = append(s.pts, pt)
			}
			ss = append(ss, s)
		}
	}
	sortSeries(ss)
	return ss, nil
}

// timeseriesBody is a timeseries panel's chart and legend (the first nine
// series with their last values) in a panel of w×h px.
func timeseriesBody(ss []series, unit string, w, h int, start, end float64) string {
	shown := ss[:min(9, len(ss))]
	names := make([]string, len(shown))
	for i, s := range shown {
		names[i] = s.name
	}
	chart := `<div class="none">No data</div>`
	if len(ss) > 0 {
		chart = timeseriesSVG(ss, unit, w-12, h-30-legendHeight(names, w), start, end)
	}
	var keys strings.Builder
	for i, s := range shown {
		fmt.Fprintf(&keys, `<span class="k"><i style="background:%s"></i>%s <b>%s</b></span>`,
			colorAt(i), esc(s.name), esc(formatValue(lastValue(s.pts), unit)))
	}
	return chart + `<div class="lg">` + keys.String() + `</div>`
}

// timeseriesSVG draws the series as lines over [start, end] with five
// y-axis gridlines (0 to 115 % of the maximum) and five time labels.
func timeseriesSVG(ss []series, unit string, w, h int, start, end float64) string {
	const lw, bh = 62, 20
	xEnd := w - 10 // lw + plot width
	pw, ph := float64(w-lw-10), float64(h-bh-6)
	top := yTop(ss)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`, w, h)
	for i := range 5 {
		y := 6 + ph - ph*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#2c3235"/>`, lw, y, xEnd, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#9fa7b3" font-size="11" text-anchor="end">%s</text>`,
			lw-6, y+4, esc(formatValue(top*float64(i)/4, unit)))
	}
	for i := range 5 {
		anchor := [...]string{"start", "middle", "middle", "middle", "end"}[i]
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#9fa7b3" font-size="11" text-anchor="%s">%s</text>`,
			lw+pw*float64(i)/4, h-4, anchor, utc(start+(end-start)*float64(i)/4, "15:04"))
	}
	for i, s := range ss {
		if d := svgPath(s.pts, lw, pw, ph, top, start, end); d != "" {
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.6"/>`, d, colorAt(i))
		}
	}
	b.WriteString("</svg>")
	return b.String()
}

// yTop is the top of the y axis: 115 % of the largest value, 1 without data.
func yTop(ss []series) float64 {
	top := math.Inf(-1)
	for _, s := range ss {
		for _, p := range s.pts {
			if !math.IsNaN(p.v) {
				top = math.Max(top, p.v)
			}
		}
	}
	if top > 0 {
		return top * 1.15
	}
	return 1
}

// svgPath is a series' SVG path; NaN samples break the line.
func svgPath(pts []point, lw, pw, ph, top, start, end float64) string {
	var parts []string
	pen := "M"
	for _, p := range pts {
		if math.IsNaN(p.v) {
			pen = "M"
			continue
		}
		x := lw + pw*(p.t-start)/(end-start)
		y := 6 + ph - ph*p.v/top
		parts = append(parts, fmt.Sprintf("%s%.1f,%.1f", pen, x, y))
		pen = "L"
	}
	return strings.Join(parts, " ")
}
