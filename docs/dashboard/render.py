#!/usr/bin/env python3
"""Draws the panels of a Grafana dashboard JSON from a real Prometheus, as
one HTML page of inline SVG charts (Python standard library only), for a
headless-browser screenshot. It is a stand-in for Grafana (not packaged for
Debian or PyPI): same panels, titles, layout (gridPos), queries and legends;
$__rate_interval becomes 1m and multi-value variables match everything.
"""
import argparse, html, json, math, re, time, urllib.parse, urllib.request

COLORS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#fade2a", "#37872d", "#c4162a"]
COL_W, ROW_H, PAD = 60, 34, 8


def query(prom, path, params):
    url = prom + path + "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=30) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise SystemExit(f"query failed: {url}: {body}")
    return body["data"]["result"]


def expand(expr):
    return expr.replace("$__rate_interval", "1m").replace('=~"$route"', '=~".*"')


def legend(fmt, metric):
    if not fmt:
        return json.dumps(metric)
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt)


def fmt_value(v, unit):
    if v is None or math.isnan(v):
        return "-"
    if unit == "percentunit":
        return f"{v * 100:.1f}%"
    if unit == "reqps":
        return f"{v:.1f} req/s"
    if unit == "s":
        return fmt_value(v * 1000, "ms")
    if unit == "ms":
        if v >= 1000:
            return f"{v / 1000:.2f} s"
        return f"{v:.2g} ms" if 0 < v < 1 else f"{v:.1f} ms"
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:.2f}"


def timeseries_svg(series, unit, w, h, start, end):
    lw, bh = 62, 20
    pw, ph = w - lw - 10, h - bh - 6
    vals = [v for _, pts in series for _, v in pts if not math.isnan(v)]
    top = max(vals) * 1.15 if vals and max(vals) > 0 else 1.0
    out = [f'<svg width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">']
    for i in range(5):
        y = 6 + ph - ph * i / 4
        out.append(f'<line x1="{lw}" y1="{y:.1f}" x2="{lw + pw}" y2="{y:.1f}" stroke="#2c3235"/>')
        out.append(f'<text x="{lw - 6}" y="{y + 4:.1f}" fill="#9fa7b3" font-size="11" text-anchor="end">{html.escape(fmt_value(top * i / 4, unit))}</text>')
    for i in range(5):
        t = start + (end - start) * i / 4
        x = lw + pw * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        out.append(f'<text x="{x:.1f}" y="{h - 4}" fill="#9fa7b3" font-size="11" text-anchor="{anchor}">{time.strftime("%H:%M", time.gmtime(t))}</text>')
    for idx, (_, pts) in enumerate(series):
        color = COLORS[idx % len(COLORS)]
        path, pen = [], "M"
        for t, v in pts:
            if math.isnan(v):
                pen = "M"
                continue
            x = lw + pw * (t - start) / (end - start)
            y = 6 + ph - ph * v / top
            path.append(f"{pen}{x:.1f},{y:.1f}")
            pen = "L"
        if path:
            out.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="1.6"/>')
    out.append("</svg>")
    return "".join(out)


def panel_html(p, prom, start, end, step):
    g = p["gridPos"]
    w, h = g["w"] * COL_W - PAD, g["h"] * ROW_H - PAD
    unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
    style = f'left:{g["x"] * COL_W}px;top:{g["y"] * ROW_H + 44}px;width:{w}px;height:{h}px'
    title = f'<div class="t">{html.escape(p["title"])}</div>'
    if p["type"] == "stat":
        items = []
        for tg in p["targets"]:
            for r in query(prom, "/api/v1/query", {"query": expand(tg["expr"]), "time": end}):
                v = float(r["value"][1])
                text = legend(tg.get("legendFormat"), r["metric"]) if p.get("options", {}).get("textMode") == "name" else fmt_value(v, unit)
                sub = "" if p.get("options", {}).get("textMode") == "name" else legend(tg.get("legendFormat"), r["metric"])
                items.append(f'<div class="s"><div class="v">{html.escape(text)}</div><div class="l">{html.escape(sub)}</div></div>')
        return f'<div class="p" style="{style}">{title}<div class="stats">{"".join(items) or "<div class=v>-</div>"}</div></div>'
    series = []
    for tg in p["targets"]:
        res = query(prom, "/api/v1/query_range", {"query": expand(tg["expr"]), "start": start, "end": end, "step": step})
        for r in res:
            pts = [(float(t), float(v)) for t, v in r["values"]]
            series.append((legend(tg.get("legendFormat"), r["metric"]), pts))
    series.sort(key=lambda s: s[0])
    # legend rows: ~6.2 px per character, 24 px per entry's key and gaps
    legend_w = sum(len(n) * 6.2 + 90 for n, _ in series[:9])
    legend_h = 18 * max(1, min(4, math.ceil(legend_w / (w - 12))))
    chart = timeseries_svg(series, unit, w - 12, h - 30 - legend_h, start, end) if series else '<div class="none">No data</div>'
    last = lambda pts: next((v for _, v in reversed(pts) if not math.isnan(v)), float("nan"))
    keys = "".join(f'<span class="k"><i style="background:{COLORS[i % len(COLORS)]}"></i>{html.escape(n)} <b>{html.escape(fmt_value(last(pts), unit))}</b></span>'
                   for i, (n, pts) in enumerate(series[:9]))
    return f'<div class="p" style="{style}">{title}{chart}<div class="lg">{keys}</div></div>'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--start", type=float, required=True)
    ap.add_argument("--end", type=float, required=True)
    ap.add_argument("--html", required=True)
    ap.add_argument("--height-file", required=True)
    a = ap.parse_args()
    d = json.load(open(a.dashboard))
    step = max(5, int((a.end - a.start) / 120))
    parts, bottom = [], 0
    for p in d["panels"]:
        g = p["gridPos"]
        bottom = max(bottom, (g["y"] + g["h"]) * ROW_H + 44)
        if p["type"] == "row":
            parts.append(f'<div class="row" style="top:{g["y"] * ROW_H + 44}px">{html.escape(p["title"])}</div>')
        else:
            parts.append(panel_html(p, a.prometheus, a.start, a.end, step))
    span = f'{time.strftime("%Y-%m-%d %H:%M", time.gmtime(a.start))}–{time.strftime("%H:%M UTC", time.gmtime(a.end))}'
    page = f"""<!doctype html><html><head><meta charset="utf-8"><style>
body{{margin:0;background:#111217;color:#d8d9da;font-family:'DejaVu Sans',sans-serif;position:relative;width:1440px}}
.hd{{height:36px;line-height:36px;padding:0 10px;font-size:16px;border-bottom:1px solid #2c3235}}
.hd small{{color:#8e8e8e;font-size:12px;margin-left:12px}}
.row{{position:absolute;left:4px;font-size:14px;font-weight:bold;color:#ccccdc}}
.p{{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:3px;padding:4px 6px;box-sizing:border-box;overflow:hidden}}
.t{{font-size:12.5px;font-weight:600;margin-bottom:2px;white-space:nowrap;overflow:hidden}}
.lg{{font-size:10.5px;line-height:18px;color:#ccccdc}} .k{{margin-right:12px;white-space:nowrap}}
.k i{{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}} .k b{{color:#9fa7b3;font-weight:normal}}
.stats{{display:flex;gap:16px;justify-content:center;align-items:center;height:75%}} .v{{font-size:30px;color:#73bf69;text-align:center}}
.l{{font-size:11px;color:#9fa7b3;text-align:center}} .none{{color:#8e8e8e;padding:30px;text-align:center}}
</style></head><body><div class="hd">{html.escape(d["title"])}<small>{span} · Prometheus {html.escape(a.prometheus)} · drawn by docs/dashboard/render.py from the dashboard JSON (not Grafana)</small></div>
{"".join(parts)}</body></html>"""
    open(a.html, "w").write(page)
    open(a.height_file, "w").write(str(bottom + 10))


if __name__ == "__main__":
    main()
