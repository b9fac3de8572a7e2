package main

import "fmt"

// style is the page's CSS (Grafana's dark theme, approximately).
const style = `body{margin:0;background:#111217;color:#d8d9da;font-family:'DejaVu Sans',sans-serif;position:relative;width:1440px}
.hd{height:36px;line-height:36px;padding:0 10px;font-size:16px;border-bottom:1px solid #2c3235}
.hd small{color:#8e8e8e;font-size:12px;margin-left:12px}
.row{position:absolute;left:4px;font-size:14px;font-weight:bold;color:#ccccdc}
.p{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:3px;padding:4px 6px;box-sizing:border-box;overflow:hidden}
.t{font-size:12.5px;font-weight:600;margin-bottom:2px;white-space:nowrap;overflow:hidden}
.lg{font-size:10.5px;line-height:18px;color:#ccccdc} .k{margin-right:12px;white-space:nowrap}
.k i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle} .k b{color:#9fa7b3;font-weight:normal}
.stats{display:flex;gap:16px;justify-content:center;align-items:center;height:75%} .v{font-size:30px;color:#73bf69;text-align:center}
.l{font-size:11px;color:#9fa7b3;text-align:center} .none{color:#8e8e8e;padding:30px;text-align:center}
`

// page is the whole HTML page: a header naming the dashboard, the time span
// and the Prometheus, then the panels.
func page(title string, o options, panels string) string {
	span := utc(o.start, "2006-01-02 15:04") + "–" + utc(o.end, "15:04 UTC")
	return fmt.Sprintf(`<!doctype html><html><head><meta charset="utf-8"><style>
%s</style></head><body><div class="hd">%s<small>%s · Prometheus %s · drawn by docs/dashboard/render from the dashboard JSON (not Grafana)</small></div>
%s</body></html>`, style, esc(title), span, esc(o.prometheus), panels)
}
