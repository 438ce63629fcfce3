"""The post-mortem page behind `surgewatch report`: self-contained HTML with inline SVG, no external assets.

The page shows the campaign timeline, traffic and host-load charts with the recorded alerts and deploy
annotations marked, the load models (lag, slope, fit) and capacity headroom that analysis fits when the
recording is replayed through it, the deploy annotations and the alert list. Everything is computed here;
the HTML needs no script or network.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import jinja2
import numpy as np

from ..model import Annotation

if TYPE_CHECKING:
    from ..analysis.preflight import Preflight
    from ..config import CampaignConfig
    from ..engine import Engine

WIDTH, PAD_L, PAD_R, PAD_T, PAD_B = 960, 64, 16, 14, 26
PALETTE = ("#2563eb", "#d97706", "#059669", "#9333ea", "#dc2626", "#0891b2", "#65a30d", "#db2777")
SEVERITY_COLOUR = {"critical": "#dc2626", "warning": "#d97706", "info": "#2563eb"}
MAX_POINTS = 480
DEPLOY_COLOUR = "#7c3aed"


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
class PlanCheck:
    """A campaign's plan for one host metric against what happened (plan --json's vocabulary: peak, peak_at,
    limit, verdict). `source`: "pre-flight" (the engine's last plan before launch) or "post hoc" (planned after
    the replay from the models learned over the whole recording, when no plan existed before launch)."""

    campaign: str
    series: str
    planned: float
    planned_at: float
    limit: float
    verdict: str
    source: str
    actual: float = math.nan
    actual_at: float = math.nan

    @property
    def error(self) -> float:
        """Planned minus actual peak, in the metric's unit (positive: the plan was too high)."""
        return self.planned - self.actual


@dataclass
class IncidentCost:
    """An unexplained alert during a campaign that reports conversions, in marketing's own numbers."""

    campaign: str
    series: str  # the alert's series
    start: float
    end: float
    rate_inside: float  # conversions per visitor while the alert fired
    rate_outside: float  # … during the rest of the campaign
    visitors_touched: float  # distinct visitors estimated to have come while it fired

    @property
    def lost(self) -> float:
        """Conversions the campaign would have had at its outside rate, minus those it had (≥ 0 means lost)."""
        return (self.rate_outside - self.rate_inside) * self.visitors_touched


REALTIME_WINDOW = 300.0  # analytics "visitors now" counts the last 5 minutes (see analysis/plan.py)


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
    annotations: list[Annotation] = field(default_factory=list)  # deploys whose window overlaps the range
    plans: list[PlanCheck] = field(default_factory=list)  # planned vs actual peaks of campaigns with a size
    costs: list[IncidentCost] = field(default_factory=list)  # unexplained alerts during converting campaigns


def gather(path: str, start: float | None = None, end: float | None = None) -> ReportData:
    """Read the recording and replay it through analysis (no sinks) to collect lag and headroom."""
    from ..sources.sanity import absurd
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
        planned: dict[tuple[str, str], Preflight] = {}  # the last pre-flight plan before each launch
        seen = {c.name: c for c in config.campaigns}  # the config's campaigns and every feed campaign played
        while not driver.finished:
            driver.step()
            k += 1
            for fc in driver.feed_campaigns:
                seen.setdefault(fc.name, fc)
            for e in driver.engine.preflights:
                planned[(e.campaign, e.series)] = e
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
                    if not math.isnan(h) and not (f.min_headroom <= h):
                        f.min_headroom, f.min_headroom_at = h, driver.position
                    if k % every == 0:
                        f.headroom_ts.append(driver.position)
                        f.headroom_series.append(h)
        every_campaign = list(seen.values())
        post_hoc = _post_hoc(driver.engine, every_campaign, planned, driver.end)
        asyncio.run(driver.close(0.0))
        first, last = float(driver.start), driver.end
        alerts = [e.doc | {"_ts": e.ts} for e in rec.events("alert", first, last)]
        campaigns = [e.doc | {"_ts": e.ts} for e in rec.events("campaign", first, last)]
        scheduled = [(c.name, c.start, c.end) for c in every_campaign]
        annotations = [a for a in rec.annotations(None, last) if a.end >= first]
        label, tick = rec.config_label, rec.tick_seconds
    ts, series = read_series(path, first, last)
    for name, v in series.items():  # a value a live poll would reject today is no reading on a chart either
        v[absurd((name,), v[None, :])[0]] = np.nan
    checks = [PlanCheck(e.campaign, e.series, e.peak, e.peak_at, e.limit, e.verdict, "pre-flight")
              for e in planned.values()] + post_hoc
    ends = {c.name: (c.start, c.end) for c in every_campaign}
    for check in checks:
        check.actual, check.actual_at = _actual_peak(ts, series.get(check.series),
                                                     *ends.get(check.campaign, (None, None)))
    costs = incident_costs(ts, series, alerts, scheduled, last)
    return ReportData(path, first, last, tick, label, ts, series, alerts, campaigns, scheduled,
                      sorted(fits.values(), key=lambda f: (f.campaign, f.host, f.metric)), len(replayed),
                      annotations, sorted(checks, key=lambda c: (c.campaign, c.series)), costs)


def incident_costs(ts: np.ndarray, series: dict[str, np.ndarray], alerts: Sequence[dict[str, object]],
                   campaigns: Sequence[tuple[str, float | None, float | None]], last: float,
                   window: float = REALTIME_WINDOW) -> list[IncidentCost]:
    """For each unexplained alert that fired during a campaign whose source reports conversions: the campaign's
    conversion rate inside the alert vs outside it, and the visitors it touched (the mean visitors-now count
    while it fired × (its length + the counting window) / the window, assuming visits shorter than the window)."""
    spans: list[tuple[str, float, float]] = []
    opened: dict[object, tuple[str, float]] = {}
    for a in sorted(alerts, key=lambda a: float(a.get("_ts") or 0.0)):  # type: ignore[arg-type]
        fp, t = a.get("fingerprint"), _finite(a.get("_ts"))
        if t is None:
            continue
        if a.get("event") == "firing" and a.get("cause") == "unexplained":
            opened[fp] = (str(a.get("series")), t)
        elif a.get("event") == "resolved" and fp in opened:
            name, t0 = opened.pop(fp)
            spans.append((name, t0, t))
    spans += [(name, t0, last) for name, t0 in opened.values()]
    out = []
    for camp, c0, c1 in campaigns:
        visitors, conversions = series.get(f"campaign:{camp}/visitors"), series.get(f"campaign:{camp}/conversions")
        if visitors is None or conversions is None or c0 is None:
            continue
        during = (ts >= c0) & (ts <= (c1 if c1 is not None else last))
        for name, t0, t1 in spans:
            inside = during & (ts >= t0) & (ts <= t1)
            outside = during & ~inside
            if not inside.any() or not outside.any():
                continue
            out.append(IncidentCost(camp, name, t0, t1, _rate(conversions, visitors, inside),
                                    _rate(conversions, visitors, outside),
                                    float(np.nanmean(visitors[inside])) * (t1 - t0 + window) / window))
    return out


def _rate(conversions: np.ndarray, visitors: np.ndarray, mask: np.ndarray) -> float:
    v = float(np.nansum(visitors[mask]))
    return float(np.nansum(conversions[mask])) / v if v > 0 else math.nan


def _post_hoc(engine: Engine, campaigns: Sequence[CampaignConfig], planned: dict[tuple[str, str], Preflight],
              end: float) -> list[PlanCheck]:
    """Plans for campaigns with an expected size that launched in the recording with no plan before launch,
    from the models the replay learned by its end (said as "post hoc")."""
    have = {c for c, _s in planned}
    todo = [c for c in campaigns if c.name not in have and c.start is not None and c.start <= end
            and (c.expected_lift or c.expected_visitors is not None)]
    if not todo:
        return []
    entries = engine.plan_campaigns(todo)
    return [PlanCheck(e.campaign, e.series, e.peak, e.peak_at, e.limit, e.verdict, "post hoc") for e in entries]


def _actual_peak(ts: np.ndarray, values: np.ndarray | None, start: float | None,
                 end: float | None) -> tuple[float, float]:
    """The largest value of a host series from the campaign's start to its end (or the recording's)."""
    if values is None or start is None or ts.size == 0:
        return math.nan, math.nan
    inside = (ts >= start) & (ts <= (end if end is not None else ts[-1]))
    v = np.where(inside & ~np.isnan(values), values, -np.inf)
    if not np.isfinite(v).any():
        return math.nan, math.nan
    i = int(np.argmax(v))
    return float(values[i]), float(ts[i])


# -- SVG ------------------------------------------------------------------------------------------


def _clock(ts: float) -> str:
    return _strftime(ts, "%H:%M:%S")


def _stamp(ts: float) -> str:
    return _strftime(ts, "%Y-%m-%d %H:%M:%S UTC")


def _strftime(ts: float, fmt: str) -> str:
    """A UTC clock time, or "?" for a time no calendar holds (a damaged recording's inf or 1e308)."""
    try:
        return datetime.fromtimestamp(ts, tz=UTC).strftime(fmt)
    except (OverflowError, ValueError, OSError):
        return "?"


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
        lo, hi = max(-1e300, min(lo, 1e300)), max(-1e300, min(hi, 1e300))  # inf or 1.75e308 would overflow
        self.lo, self.hi = lo, hi if hi - lo > 0 else lo + max(1.0, abs(lo))
        self.h = height

    def x(self, t: float) -> float:
        return PAD_L + (t - self.t0) / (self.t1 - self.t0) * (WIDTH - PAD_L - PAD_R)

    def y(self, v: float) -> float:
        return PAD_T + (1 - (v - self.lo) / (self.hi - self.lo)) * (self.h - PAD_T - PAD_B)


TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _time_axis(ax: _Axes) -> list[Tick]:
    """Grid lines and labels at round clock times (every 10 s ... every day), at most seven."""
    step = next((s for s in TIME_STEPS if (ax.t1 - ax.t0) / s <= 7), TIME_STEPS[-1])
    out = []
    t = math.ceil(ax.t0 / step) * step
    while t <= ax.t1:
        out.append(Tick(f"{ax.x(t):.1f}", _clock(t) if step < 60 else _clock(t)[:5]))
        t += step
    return out


@dataclass
class Tick:
    """One grid line of a chart: its coordinate (as written in the SVG) and its label."""

    at: str
    label: str


@dataclass
class Mark:
    """One alert drawn on a chart: a firing line (`kind` "line") or a shaded firing span ("span"); or a deploy
    annotation ("deploy"): a dotted line tagged D."""

    kind: str
    x: str
    width: str
    colour: str
    title: str = ""


@dataclass
class Line:
    """One series of a line chart: its legend name, colour and the polylines between gaps."""

    name: str
    colour: str
    segments: list[str]


@dataclass
class Chart:
    """An inline SVG line chart as the template draws it; every text in it is escaped by the template."""

    title: str
    height: int
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    marks: list[Mark]
    lines: list[Line]
    limit: Tick | None = None


@dataclass
class TimelineRow:
    """One campaign's strip on the timeline: its scheduled window and the surges analysis saw."""

    name: str
    label_y: int
    y: int
    scheduled: Mark | None
    surges: list[Mark]


@dataclass
class Timeline:
    """The campaign timeline strip as the template draws it."""

    height: int
    x_ticks: list[Tick]
    rows: list[TimelineRow]
    alerts_y: int
    alerts: list[Mark]
    deploys: list[Mark] = field(default_factory=list)


def _alert_marks(ax: _Axes, alerts: Sequence[dict[str, object]], match: Sequence[str] | None) -> list[Mark]:
    """Shaded firing spans and a line at each firing, coloured by severity, for alerts on `match` series."""
    out = []
    firing: dict[str, float] = {}
    for a in alerts:
        if match is not None and a.get("series") not in match:
            continue
        fp, ts = str(a.get("fingerprint")), _finite(a.get("_ts"))
        if ts is None:
            continue
        colour = SEVERITY_COLOUR.get(str(a.get("severity")), "#6b7280")
        if a.get("event") == "firing":
            firing[fp] = ts
            out.append(Mark("line", f"{ax.x(ts):.1f}", "0", colour,
                            f"{_clock(ts)} {a.get('rule')} firing: {a.get('summary')}"))
        elif fp in firing:
            out.append(_span(ax, firing.pop(fp), ts, colour))
    for t0 in firing.values():
        out.append(_span(ax, t0, ax.t1, "#dc2626"))
    return out


def _deploy_marks(ax: _Axes, annotations: Sequence[Annotation], hosts: Sequence[str] | None) -> list[Mark]:
    """A D-tagged dotted line at each deploy annotation that concerns one of `hosts` (None: any)."""
    return [Mark("deploy", f"{ax.x(a.ts):.1f}", "0", DEPLOY_COLOUR,
                 f"{_clock(a.ts)} {a.text}" + (f" on {a.host}" if a.host else ""))
            for a in annotations
            if ax.t0 <= a.ts <= ax.t1 and (hosts is None or any(a.applies_to(h) for h in hosts))]


def _span(ax: _Axes, a: float, b: float, colour: str, title: str = "") -> Mark:
    x0, x1 = ax.x(a), ax.x(b)
    return Mark("span", f"{x0:.1f}", f"{max(1.0, x1 - x0):.1f}", colour, title)


def _finite(v: object) -> float | None:
    """`v` as a finite float, or None for what a damaged recording may hold (text, inf, NaN, null)."""
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def line_chart(title: str, ts: np.ndarray, lines: dict[str, np.ndarray], alerts: Sequence[dict[str, object]],
               t0: float, t1: float, *, height: int = 200, limit: float | None = None,
               match: Sequence[str] | None = None, annotations: Sequence[Annotation] = (),
               hosts: Sequence[str] | None = None) -> Chart:
    """One line chart with a time axis, a value axis, a legend and the alerts marked."""
    cleaned = {n: np.where(np.isfinite(v), v, np.nan) for n, v in lines.items()}
    values = [v[~np.isnan(v)] for v in cleaned.values()]
    finite = np.concatenate(values) if values else np.zeros(0)
    lo = min(0.0, float(finite.min())) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    if limit is not None:
        hi = max(hi, limit)
    hi = hi * 1.05 if hi > 0 else hi + 1
    ax = _Axes(t0, t1, lo, hi, height)
    y_ticks = [Tick(f"{ax.y(level):.1f}", _fmt(level)) for level in _nice_ticks(ax.lo, ax.hi)]
    drawn = []
    for i, (name, v) in enumerate(cleaned.items()):
        pt, pv = _downsample(ts, v)
        segs: list[str] = []
        cur: list[str] = []
        for a, b in zip(pt.tolist(), pv.tolist(), strict=True):
            if math.isnan(b):
                if cur:
                    segs.append(" ".join(cur))
                cur = []
            else:
                cur.append(f"{ax.x(a):.1f},{ax.y(b):.1f}")
        if cur:
            segs.append(" ".join(cur))
        drawn.append(Line(name, PALETTE[i % len(PALETTE)], segs))
    lim = None if limit is None else Tick(f"{ax.y(limit):.1f}", f"limit {_fmt(limit)}")
    marks = _alert_marks(ax, alerts, match) + _deploy_marks(ax, annotations, hosts)
    return Chart(title, height, y_ticks, _time_axis(ax), marks, drawn, lim)


def timeline(data: ReportData) -> Timeline:
    """The campaign timeline: scheduled windows, detected surges and every alert firing on one strip."""
    names = [n for n, _s, _e in data.scheduled] or ["(no campaigns)"]
    row_h, height = 38, PAD_T + PAD_B + 38 * len(names) + 26
    ax = _Axes(data.start, data.end, 0, 1, height)
    rows = []
    for i, (name, s, e) in enumerate(data.scheduled):
        y = PAD_T + i * row_h + 16  # the campaign's name above its strip: names can be long
        scheduled = None
        if s is not None or e is not None:
            a, b = max(s or data.start, data.start), min(e or data.end, data.end)
            if b > a:
                scheduled = Mark("scheduled", f"{ax.x(a):.1f}", f"{ax.x(b) - ax.x(a):.1f}", "#6b7280", "scheduled")
        surges: list[Mark] = []
        began: float | None = None
        for ev in data.campaigns:
            t = _finite(ev.get("_ts"))
            if ev.get("campaign") != name or t is None:
                continue
            if ev.get("event") == "surge-start":
                began = t
            elif began is not None:
                surges.append(_surge(ax, began, t))
                began = None
        if began is not None:
            surges.append(_surge(ax, began, data.end))
        rows.append(TimelineRow(name, PAD_T + i * row_h + 11, y, scheduled, surges))
    y = PAD_T + len(data.scheduled) * row_h + 4
    marks = []
    for al in data.alerts:
        t = _finite(al.get("_ts"))
        if al.get("event") != "firing" or t is None:
            continue
        colour = SEVERITY_COLOUR.get(str(al.get("severity")), "#6b7280")
        title = f"{_clock(t)} {al.get('rule')}: {al.get('summary')}"
        marks.append(Mark("alert", f"{ax.x(t) - 2:.1f}", "4", colour, title))
    return Timeline(height, _time_axis(ax), rows, y, marks, _deploy_marks(ax, data.annotations, None))


def _surge(ax: _Axes, a: float, b: float) -> Mark:
    return Mark("surge", f"{ax.x(a):.1f}", f"{max(2.0, ax.x(b) - ax.x(a)):.1f}", "#2563eb",
                f"surge {_clock(a)}–{_clock(b)}")


# -- page ------------------------------------------------------------------------------------------


def _num(v: float, unit: str = "", digits: int = 2) -> str:
    return "–" if not math.isfinite(v) else f"{v:.{digits}f}{unit}"


def _alert_row(a: dict[str, object]) -> dict[str, str]:
    """One row of the alert table as plain text (the template escapes it)."""
    ts, value = _finite(a.get("_ts")), a.get("value")
    v = _finite(value)
    shown = "–" if value is None else (_fmt(v) if v is not None else str(value))
    return {"time": "–" if ts is None else _clock(ts), "event": str(a.get("event")),
            "severity": str(a.get("severity")), "rule": str(a.get("rule")), "series": str(a.get("series")),
            "value": shown, "cause": str(a.get("cause") or ""), "explanation": str(a.get("explanation"))}


def _annotation_row(a: Annotation, alerts: Sequence[dict[str, object]]) -> dict[str, str]:
    """One row of the deploy annotation table, with how many firing alerts named it as their likely cause."""
    named = sum(1 for al in alerts if al.get("event") == "firing" and al.get("cause") == "unexplained"
                and f"after {a.text}" in str(al.get("explanation") or ""))
    return {"time": _clock(a.ts), "host": a.host or "every host", "window": _num(a.duration / 60, " min", 0),
            "text": a.text, "named": str(named)}


@functools.cache
def _template() -> jinja2.Template:
    """The page template shipped in the package, autoescaping every value it is given."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("surgewatch.recording", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    return env.get_template("report.html.j2")


def render(data: ReportData) -> str:
    """The whole page as one HTML string (templates/report.html.j2; every value autoescaped)."""
    s = data.series
    traffic = {n: v for n, v in s.items() if n.startswith(("traffic:", "campaign:")) and n.endswith("/visitors")}
    hosts = sorted({n.split(":", 1)[1].split("/", 1)[0] for n in s if n.startswith("host:")})
    host_charts = []
    for h in hosts:
        cpu = {f"{m}": s[f"host:{h}/{m}"] for m in ("cpu.percent", "mem.percent") if f"host:{h}/{m}" in s}
        if cpu:
            host_charts.append(line_chart(f"{h}: CPU and memory %", data.ts, cpu, data.alerts, data.start,
                                          data.end, limit=90.0, match=[f"host:{h}/{m}" for m in cpu],
                                          annotations=data.annotations, hosts=[h]))
    fits = []
    for f in data.fits:
        low = "–" if not math.isfinite(f.min_headroom) else f"{f.min_headroom:.2f}× at {_clock(f.min_headroom_at)}"
        fits.append({"campaign": f.campaign, "host": f.host, "metric": f.metric, "lag": _num(f.lag, "s", 0),
                     "slope": _num(f.slope, "", 4), "r2": _num(f.r2), "headroom": _num(f.headroom, "×"),
                     "low": low})
    headroom = None
    curves = {f"{f.host} {f.metric}": np.array(f.headroom_series) for f in data.fits
              if f.metric == "cpu.percent" and any(math.isfinite(h) for h in f.headroom_series)}
    if curves:
        ts = np.array(next(f.headroom_ts for f in data.fits if f"{f.host} {f.metric}" in curves))
        capped = {k: np.minimum(v, 10.0) for k, v in curves.items()}
        headroom = line_chart("CPU headroom (× current traffic, capped at 10)", ts, capped, data.alerts,
                              data.start, data.end, limit=1.0, match=[])
    plans = [{"campaign": c.campaign, "series": c.series, "planned": _fmt(c.planned),
              "planned_at": _clock(c.planned_at), "actual": _fmt(c.actual),
              "actual_at": _clock(c.actual_at) if math.isfinite(c.actual_at) else "–",
              "error": f"{c.error:+.1f}" if math.isfinite(c.error) else "–", "limit": _fmt(c.limit),
              "verdict": c.verdict, "source": c.source} for c in data.plans]
    costs = [{"campaign": c.campaign, "series": c.series, "when": f"{_clock(c.start)}–{_clock(c.end)}",
              "inside": f"{c.rate_inside:.1%}" if math.isfinite(c.rate_inside) else "–",
              "outside": f"{c.rate_outside:.1%}" if math.isfinite(c.rate_outside) else "–",
              "touched": f"{c.visitors_touched:,.0f}",
              "lost": f"{c.lost:,.0f}" if math.isfinite(c.lost) else "–"} for c in data.costs]
    return _template().render(
        plans=plans, costs=costs,
        width=WIDTH, pad_l=PAD_L, pad_r=PAD_R, pad_t=PAD_T, pad_b=PAD_B,
        start=_stamp(data.start), end=_stamp(data.end), ticks=data.ts.size, tick=f"{data.tick:g}",
        series=len(s), fired=sum(1 for a in data.alerts if a.get("event") == "firing"), path=data.path,
        config_label=data.config_label, timeline=timeline(data),
        traffic=line_chart("Visitors", data.ts, traffic, data.alerts, data.start, data.end, match=list(traffic),
                           annotations=data.annotations) if traffic else None,
        host_charts=host_charts, fits=fits, headroom=headroom, alerts=[_alert_row(a) for a in data.alerts],
        annotations=[_annotation_row(a, data.alerts) for a in data.annotations],
        replay_alerts=data.replay_alerts)
