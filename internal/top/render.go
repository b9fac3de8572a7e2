package top

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Render writes rows as a table headed by the Envoy and the interval.
func Render(w io.Writer, envoy string, interval time.Duration, rows []Row) error {
	fmt.Fprintf(w, "tollgate top — %s — per route over the last %s (latency: upstream time, refreshed at Envoy's stats flush)\n\n", envoy, interval)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ROUTE\tREQ/S\tREQUESTS\t4XX\t5XX\tP50\tP99\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.1f\t%.0f\t%s\t%s\t%s\t%s\t\n", r.Route, r.RPS, r.Requests,
			percent(r.Err4xx), percent(r.Err5xx), millis(r.P50ms), millis(r.P99ms))
	}
	if len(rows) == 0 {
		fmt.Fprintln(tw, "(no route has served a request yet)\t\t\t\t\t\t\t")
	}
	return tw.Flush()
}

func percent(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }

func millis(ms *float64) string {
	switch {
	case ms == nil:
		return "-"
	case *ms >= 1000:
		return fmt.Sprintf("%.2fs", *ms/1000)
	}
	return fmt.Sprintf("%.1fms", *ms)
}
