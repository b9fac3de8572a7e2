// Command render draws the panels of a Grafana dashboard JSON from a real
// Prometheus, as one HTML page of inline SVG charts (Go standard library
// only), for a headless-browser screenshot. It is a stand-in for Grafana (not
// packaged for Debian): same panels, titles, layout (gridPos), queries and
// legends; $__rate_interval becomes 1m and multi-value variables match
// everything. docs/dashboard/run.sh runs it.
package main

import (
	"flag"
	"fmt"
	"html"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Grid of the page: Grafana's 24 columns of colW px, rows of rowH px, pad px
// between panels, below a header of headerH px.
const (
	colW    = 60
	rowH    = 34
	pad     = 8
	headerH = 44
)

// colorAt is the i-th series colour (Grafana's classic palette).
func colorAt(i int) string {
	palette := [...]string{"#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#fade2a", "#37872d", "#c4162a"}
	return palette[i%len(palette)]
}

type options struct {
	prometheus, dashboard, html, heightFile string
	start, end                              float64
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	fs.StringVar(&o.prometheus, "prometheus", "", "Prometheus base URL (required)")
	fs.StringVar(&o.dashboard, "dashboard", "", "Grafana dashboard JSON (required)")
	fs.Float64Var(&o.start, "start", 0, "start of the range, Unix seconds (required)")
	fs.Float64Var(&o.end, "end", 0, "end of the range, Unix seconds (required)")
	fs.StringVar(&o.html, "html", "", "HTML file to write (required)")
	fs.StringVar(&o.heightFile, "height-file", "", "file to write the page height in px to (required)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.prometheus == "" || o.dashboard == "" || o.html == "" || o.heightFile == "" || o.start == 0 || o.end <= o.start {
		return o, fmt.Errorf("--prometheus, --dashboard, --start, --end (after start), --html and --height-file are required")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	d, err := loadDashboard(o.dashboard)
	if err != nil {
		return err
	}
	prom := promClient{base: o.prometheus}
	step := max(5, int((o.end-o.start)/120))
	var parts []string
	bottom := 0
	for _, p := range d.Panels {
		_, top, _, _ := panelBox(p.GridPos)
		bottom = max(bottom, (p.GridPos.Y+p.GridPos.H)*rowH+headerH)
		if p.Type == "row" {
			parts = append(parts, fmt.Sprintf(`<div class="row" style="top:%dpx">%s</div>`, top, esc(p.Title)))
			continue
		}
		h, err := panelHTML(p, prom, o.start, o.end, step)
		if err != nil {
			return err
		}
		parts = append(parts, h)
	}
	if err := os.WriteFile(o.html, []byte(page(d.Title, o, strings.Join(parts, ""))), 0o644); err != nil {
		return fmt.Errorf("write html: %w", err)
	}
	if err := os.WriteFile(o.heightFile, []byte(strconv.Itoa(bottom+10)), 0o644); err != nil {
		return fmt.Errorf("write height: %w", err)
	}
	return nil
}

// esc escapes text for HTML.
func esc(s string) string { return html.EscapeString(s) }

// utc formats Unix seconds in UTC with a time layout.
func utc(sec float64, layout string) string {
	return time.Unix(int64(sec), 0).UTC().Format(layout)
}

// panelBox is a panel's position and size in px from its gridPos.
func panelBox(g gridPos) (left, top, w, h int) {
	return g.X * colW, g.Y*rowH + headerH, g.W*colW - pad, g.H*rowH - pad
}

// legendHeight is the height of a legend of the first nine series names in
// a panel w px wide: ~6.2 px per character and 90 px per entry's key, value
// and gaps; one to four rows of 18 px.
func legendHeight(names []string, w int) int {
	total := 0.0
	for i, n := range names {
		if i == 9 {
			break
		}
		total += float64(utf8.RuneCountInString(n))*6.2 + 90
	}
	rows := int(math.Ceil(total / float64(w-12)))
	return 18 * max(1, min(4, rows))
}

// sortSeries orders series by name (stable, as the legend lists them).
func sortSeries(s []series) {
	sort.SliceStable(s, func(i, j int) bool { return s[i].name < s[j].name })
}
