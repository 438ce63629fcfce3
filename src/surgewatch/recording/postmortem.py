"""The post-mortem page behind `surgewatch report`: self-contained HTML with inline SVG, no external assets.

The page shows the campaign timeline, traffic and host-load charts with the recorded alerts marked, the
load models (lag, slope, fit) and capacity headroom that analysis fits when the recording is replayed
through it, and the alert list. Everything is computed here; the HTML needs no script or network.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

WIDTH, PAD_L, PAD_R, PAD_T, PAD_B = 960, 64, 16, 14, 26
PALETTE = ("#2563eb", "#d97706", "#059669", "#9333ea", "#dc2626", "#0891b2", "#65a30d", "#db2777")
SEVERITY_COLOUR = {"critical": "#dc2626", "warning": "#d97706", "info": "#2563eb"}
MAX_POINTS = 480


@dataclass
class PairFit:
    """The last load model analysis fitted for one campaign on one host metric, and its worst headroom."""

    campaign: str
    host: str
    metric: str
    lag: float = math.nan
    slope: float = math.nan
    r2: float = math.nan
    headroom: float = math.nan
    min_headroom: float = math.nan
    min_headroom_at: float = math.nan
    headroom_ts: list[float] = field(default_factory=list)
    headroom_series: list[float] = field(default_factory=list)


@dataclass
class ReportData:
    """What the page shows, gathered from the recording and a replay through analysis."""

    path: str
    start: float
    end: float
    tick: float
    config_label: str
    ts: np.ndarray
    series: dict[str, np.ndarray]
    alerts: list[dict[str, object]]
    campaigns: list[dict[str, object]]
    scheduled: list[tuple[str, float | None, float | None]]
    fits: list[PairFit]
    replay_alerts: int


def gather(path: str, start: float | None = None, end: float | None = None) -> ReportData:
    """Read the recording and replay it through analysis (no sinks) to collect lag and headroom."""
    from .format import RecordingError
    from .reader import Recording, read_series
    from .replay import ReplayDriver, replay_config

    with Recording(path) as rec:
        span = rec.span()
        if span is None:
            raise RecordingError(f"{path}: the recording has no live ticks")
        config = replay_config(rec)
        driver = ReplayDriver(rec, config, start=start, end=end, speed=math.inf, follow_reloads=True)
        fits: dict[tuple[str, str, str], PairFit] = {}
        replayed: list[object] = []
        driver.on_events(replayed.extend)
        every = max(1, (len(driver.timeline) - driver.index) // MAX_POINTS)
        k = 0
        while not driver.finished:
            driver.step()
            k += 1
            analysis = driver.engine.last_analysis
            if analysis is None:
                continue
            for c in analysis.campaigns:
                for p in c.pairs:
                    f = fits.setdefault((c.name, p.host, p.metric), PairFit(c.name, p.host, p.metric))
                    if p.model is not None:
                        f.lag, f.slope, f.r2 = p.lag_seconds, p.model.slope, p.model.r2
                    h = p.capacity.headroom
                    f.headroom = h
                    if h == h and not (f.min_headroom <= h):
                        f.min_headroom, f.min_headroom_at = h, driver.position
                    if k % every == 0:
                        f.headroom_ts.append(driver.position)
                        f.headroom_series.append(h)
        asyncio.run(driver.close(0.0))
        first, last = float(driver.start), driver.end
        alerts = [e.doc | {"_ts": e.ts} for e in rec.events("alert", first, last)]
        campaigns = [e.doc | {"_ts": e.ts} for e in rec.events("campaign", first, last)]
        scheduled = [(c.name, c.start, c.end) for c in config.campaigns]
        label, tick = rec.config_label, rec.tick_seconds
    ts, series = read_series(path, first, last)
    return ReportData(path, first, last, tick, label, ts, series, alerts, campaigns, scheduled,
                      sorted(fits.values(), key=lambda f: (f.campaign, f.host, f.metric)), len(replayed))


# -- SVG ------------------------------------------------------------------------------------------


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S")


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if not (hi > lo):
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _fmt(v: float) -> str:
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:g}G"
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _downsample(ts: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_POINTS points: bucket means (NaN buckets stay gaps)."""
    if ts.size <= MAX_POINTS:
        return ts, v
    edges = np.linspace(0, ts.size, MAX_POINTS + 1).astype(int)
    out_t, out_v = [], []
    for a, b in itertools.pairwise(edges.tolist()):
        seg = v[a:b]
        ok = seg[~np.isnan(seg)]
        out_t.append(float(ts[a:b].mean()))
        out_v.append(float(ok.mean()) if ok.size else math.nan)
    return np.array(out_t), np.array(out_v)


class _Axes:
    """Maps time and value to SVG coordinates for one chart."""

    def __init__(self, t0: float, t1: float, lo: float, hi: float, height: int) -> None:
        self.t0, self.t1 = t0, t1 if t1 > t0 else t0 + 1.0
        self.lo, self.hi = lo, hi if hi > lo else lo + 1.0
        self.h = height

    def x(self, t: float) -> float:
        return PAD_L + (t - self.t0) / (self.t1 - self.t0) * (WIDTH - PAD_L - PAD_R)

    def y(self, v: float) -> float:
        return PAD_T + (1 - (v - self.lo) / (self.hi - self.lo)) * (self.h - PAD_T - PAD_B)


TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _time_axis(ax: _Axes) -> list[str]:
    """Grid lines and labels at round clock times (every 10 s ... every day), at most seven."""
    step = next((s for s in TIME_STEPS if (ax.t1 - ax.t0) / s <= 7), TIME_STEPS[-1])
    out = []
    t = math.ceil(ax.t0 / step) * step
    while t <= ax.t1:
        x = ax.x(t)
        out.append(f'<line x1="{x:.1f}" y1="{PAD_T}" x2="{x:.1f}" y2="{ax.h - PAD_B}" class="grid"/>')
        label = _clock(t) if step < 60 else _clock(t)[:5]
        out.append(f'<text x="{x:.1f}" y="{ax.h - 8}" text-anchor="middle" class="lbl">{label}</text>')
        t += step
    return out


def _alert_marks(ax: _Axes, alerts: Sequence[dict[str, object]], match: Sequence[str] | None) -> list[str]:
    """Shaded firing spans and a line at each firing, coloured by severity, for alerts on `match` series."""
    out = []
    firing: dict[str, float] = {}
    for a in alerts:
        if match is not None and a.get("series") not in match:
            continue
        fp, ts = str(a.get("fingerprint")), float(a["_ts"])  # type: ignore[arg-type]
        colour = SEVERITY_COLOUR.get(str(a.get("severity")), "#6b7280")
        if a.get("event") == "firing":
            firing[fp] = ts
            x = ax.x(ts)
            title = html.escape(f"{_clock(ts)} {a.get('rule')} firing: {a.get('summary')}")
            out.append(f'<line x1="{x:.1f}" y1="{PAD_T}" x2="{x:.1f}" y2="{ax.h - PAD_B}" stroke="{colour}" '
                       f'stroke-width="1.5" stroke-dasharray="4 2"><title>{title}</title></line>')
            out.append(f'<circle cx="{x:.1f}" cy="{PAD_T + 4}" r="4" fill="{colour}"><title>{title}</title></circle>')
        elif fp in firing:
            t0 = firing.pop(fp)
            out.append(_span(ax, t0, ts, colour))
    for t0 in firing.values():
        out.append(_span(ax, t0, ax.t1, "#dc2626"))
    return out


def _span(ax: _Axes, a: float, b: float, colour: str) -> str:
    x0, x1 = ax.x(a), ax.x(b)
    return (f'<rect x="{x0:.1f}" y="{PAD_T}" width="{max(1.0, x1 - x0):.1f}" height="{ax.h - PAD_T - PAD_B}" '
            f'fill="{colour}" opacity="0.10"/>')


def line_chart(title: str, ts: np.ndarray, lines: dict[str, np.ndarray], alerts: Sequence[dict[str, object]],
               t0: float, t1: float, *, height: int = 200, limit: float | None = None,
               match: Sequence[str] | None = None) -> str:
    """One inline SVG line chart with a time axis, a value axis, a legend and the alerts marked."""
    values = [v[~np.isnan(v)] for v in lines.values()]
    finite = np.concatenate(values) if values else np.zeros(0)
    lo = min(0.0, float(finite.min())) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    if limit is not None:
        hi = max(hi, limit)
    hi = hi * 1.05 if hi > 0 else hi + 1
    ax = _Axes(t0, t1, lo, hi, height)
    parts = [f'<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="{html.escape(title)}">']
    for level in _nice_ticks(lo, hi):
        yl = ax.y(level)
        parts.append(f'<line x1="{PAD_L}" y1="{yl:.1f}" x2="{WIDTH - PAD_R}" y2="{yl:.1f}" class="grid"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{yl + 4:.1f}" text-anchor="end" class="lbl">{_fmt(level)}</text>')
    parts += _time_axis(ax)
    parts += _alert_marks(ax, alerts, match)
    if limit is not None:
        yl = ax.y(limit)
        parts.append(f'<line x1="{PAD_L}" y1="{yl:.1f}" x2="{WIDTH - PAD_R}" y2="{yl:.1f}" stroke="#dc2626" '
                     f'stroke-dasharray="6 3"/><text x="{WIDTH - PAD_R - 4}" y="{yl - 4:.1f}" text-anchor="end" '
                     f'class="lbl" fill="#dc2626">limit {_fmt(limit)}</text>')
    legend = []
    for i, (name, v) in enumerate(lines.items()):
        colour = PALETTE[i % len(PALETTE)]
        pt, pv = _downsample(ts, v)
        segs: list[list[str]] = []
        cur: list[str] = []
        for a, b in zip(pt.tolist(), pv.tolist(), strict=True):
            if b != b:
                if cur:
                    segs.append(cur)
                cur = []
            else:
                cur.append(f"{ax.x(a):.1f},{ax.y(b):.1f}")
        if cur:
            segs.append(cur)
        for s in segs:
            parts.append(f'<polyline points="{" ".join(s)}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        legend.append(f'<span class="key"><i style="background:{colour}"></i>{html.escape(name)}</span>')
    parts.append("</svg>")
    return f'<figure><figcaption>{html.escape(title)} {"".join(legend)}</figcaption>{"".join(parts)}</figure>'


def timeline(data: ReportData) -> str:
    """The campaign timeline: scheduled windows, detected surges and every alert firing on one strip."""
    names = [n for n, _s, _e in data.scheduled] or ["(no campaigns)"]
    row_h, height = 38, PAD_T + PAD_B + 38 * len(names) + 26
    ax = _Axes(data.start, data.end, 0, 1, height)
    parts = [f'<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="campaign timeline">']
    parts += _time_axis(ax)
    for i, (name, s, e) in enumerate(data.scheduled):
        parts.append(f'<text x="{PAD_L + 2}" y="{PAD_T + i * row_h + 11}" class="lbl">{html.escape(name)}</text>')
        y = PAD_T + i * row_h + 16  # the campaign's name above its strip: names can be long
        if s is not None or e is not None:
            a, b = max(s or data.start, data.start), min(e or data.end, data.end)
            if b > a:
                parts.append(f'<rect x="{ax.x(a):.1f}" y="{y}" width="{ax.x(b) - ax.x(a):.1f}" height="18" '
                             f'fill="none" stroke="#6b7280" stroke-dasharray="3 2"><title>scheduled</title></rect>')
        began: float | None = None
        for ev in data.campaigns:
            if ev.get("campaign") != name:
                continue
            t = float(ev["_ts"])  # type: ignore[arg-type]
            if ev.get("event") == "surge-start":
                began = t
            elif began is not None:
                parts.append(_surge(ax, began, t, y, ev))
                began = None
        if began is not None:
            parts.append(_surge(ax, began, data.end, y, {}))
    y = PAD_T + len(data.scheduled) * row_h + 4
    parts.append(f'<text x="{PAD_L - 6}" y="{y + 13}" text-anchor="end" class="lbl">alerts</text>')
    for al in data.alerts:
        if al.get("event") != "firing":
            continue
        t = float(al["_ts"])  # type: ignore[arg-type]
        colour = SEVERITY_COLOUR.get(str(al.get("severity")), "#6b7280")
        title = html.escape(f"{_clock(t)} {al.get('rule')}: {al.get('summary')}")
        parts.append(f'<rect x="{ax.x(t) - 2:.1f}" y="{y}" width="4" height="18" fill="{colour}">'
                     f"<title>{title}</title></rect>")
    parts.append("</svg>")
    key = ("<span class='key'>dashed: scheduled</span><span class='key'>filled: traffic surging (at least 1.5× "
           "its baseline)</span><span class='key'>marks: alerts firing, by severity</span>")
    return f"<figure><figcaption>Campaign timeline {key}</figcaption>{''.join(parts)}</figure>"


def _surge(ax: _Axes, a: float, b: float, y: float, end_doc: dict[str, object]) -> str:
    title = html.escape(f"surge {_clock(a)}–{_clock(b)}")
    return (f'<rect x="{ax.x(a):.1f}" y="{y}" width="{max(2.0, ax.x(b) - ax.x(a)):.1f}" height="18" rx="3" '
            f'fill="#2563eb" opacity="0.55"><title>{title}</title></rect>')


# -- page ------------------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#111827;
background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb}
.meta{color:#4b5563}figure{margin:10px 0}figcaption{font-weight:600;margin-bottom:2px}
.key{font-weight:400;margin-left:14px;font-size:12px}.key i{display:inline-block;width:10px;height:10px;
margin-right:4px;border-radius:2px}svg{background:#fafafa;border:1px solid #e5e7eb;border-radius:4px}
.grid{stroke:#e5e7eb}.lbl{font-size:11px;fill:#4b5563}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #f3f4f6;vertical-align:top}
th{background:#f9fafb}.sev{font-weight:600}.critical{color:#dc2626}.warning{color:#b45309}.info{color:#2563eb}
td.num{text-align:right;font-variant-numeric:tabular-nums}
"""


def _num(v: float, unit: str = "", digits: int = 2) -> str:
    return "–" if v != v else f"{v:.{digits}f}{unit}"


def render(data: ReportData) -> str:
    """The whole page as one HTML string."""
    esc = html.escape
    s = data.series
    traffic = {n: v for n, v in s.items() if n.startswith(("traffic:", "campaign:")) and n.endswith("/visitors")}
    hosts = sorted({n.split(":", 1)[1].split("/", 1)[0] for n in s if n.startswith("host:")})
    firing = sum(1 for a in data.alerts if a.get("event") == "firing")
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           "<meta name='viewport' content='width=device-width, initial-scale=1'>",
           f"<title>surgewatch post-mortem {esc(_stamp(data.start))}</title><style>{CSS}</style></head><body>",
           "<h1>surgewatch post-mortem</h1>",
           f"<p class='meta'>{esc(_stamp(data.start))} → {esc(_stamp(data.end))} · {data.ts.size} ticks of "
           f"{data.tick:g}s · {len(s)} series · {firing} alerts fired · recording {esc(data.path)} · config "
           f"{esc(data.config_label)}</p>",
           "<h2>Timeline</h2>", timeline(data)]
    out.append("<h2>Traffic</h2>")
    if traffic:
        out.append(line_chart("Visitors", data.ts, traffic, data.alerts, data.start, data.end,
                              match=list(traffic)))
    else:
        out.append("<p>No traffic series in this recording.</p>")
    out.append("<h2>Host load</h2>")
    for h in hosts:
        cpu = {f"{m}": s[f"host:{h}/{m}"] for m in ("cpu.percent", "mem.percent") if f"host:{h}/{m}" in s}
        if cpu:
            out.append(line_chart(f"{h}: CPU and memory %", data.ts, cpu, data.alerts, data.start, data.end,
                                  limit=90.0, match=[f"host:{h}/{m}" for m in cpu]))
    out.append("<h2>Load models and headroom</h2>")
    if data.fits:
        out.append("<p>How host load follows campaign traffic, as analysis fitted it replaying this recording. "
                   "Headroom: how many times the current traffic the host takes before its limit.</p>")
        out.append("<table><tr><th>campaign</th><th>host</th><th>metric</th><th>lag</th><th>slope</th>"
                   "<th>fit r²</th><th>headroom at end</th><th>lowest headroom</th></tr>")
        for f in data.fits:
            low = "–" if f.min_headroom != f.min_headroom else \
                f"{f.min_headroom:.2f}× at {_clock(f.min_headroom_at)}"
            out.append(f"<tr><td>{esc(f.campaign)}</td><td>{esc(f.host)}</td><td>{esc(f.metric)}</td>"
                       f"<td class=num>{_num(f.lag, 's', 0)}</td><td class=num>{_num(f.slope, '', 4)}</td>"
                       f"<td class=num>{_num(f.r2)}</td><td class=num>{_num(f.headroom, '×')}</td>"
                       f"<td class=num>{low}</td></tr>")
        out.append("</table>")
        curves = {f"{f.host} {f.metric}": np.array(f.headroom_series) for f in data.fits
                  if f.metric == "cpu.percent" and any(h == h for h in f.headroom_series)}
        if curves:
            ts = np.array(next(f.headroom_ts for f in data.fits if f"{f.host} {f.metric}" in curves))
            capped = {k: np.minimum(v, 10.0) for k, v in curves.items()}
            out.append(line_chart("CPU headroom (× current traffic, capped at 10)", ts, capped, data.alerts,
                                  data.start, data.end, limit=1.0, match=[]))
    else:
        out.append("<p>No campaign load models (the config names no campaign with hosts).</p>")
    out.append(f"<h2>Alerts ({len(data.alerts)} events)</h2>")
    if data.alerts:
        out.append("<table><tr><th>time</th><th>event</th><th>severity</th><th>rule</th><th>series</th>"
                   "<th>value</th><th>cause</th><th>explanation</th></tr>")
        for a in data.alerts:
            sev = esc(str(a.get("severity")))
            value = a.get("value")
            out.append(f"<tr><td>{_clock(float(a['_ts']))}</td><td>{esc(str(a.get('event')))}</td>"  # type: ignore[arg-type]
                       f"<td class='sev {sev}'>{sev}</td><td>{esc(str(a.get('rule')))}</td>"
                       f"<td>{esc(str(a.get('series')))}</td>"
                       f"<td class=num>{'–' if value is None else _fmt(float(value))}</td>"  # type: ignore[arg-type]
                       f"<td>{esc(str(a.get('cause') or ''))}</td><td>{esc(str(a.get('explanation')))}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>No alerts in this range.</p>")
    out.append(f"<p class='meta'>Replaying the recording with its own config fires {data.replay_alerts} alert "
               f"events in this range (recorded: {len(data.alerts)}).</p></body></html>")
    return "\n".join(out)
