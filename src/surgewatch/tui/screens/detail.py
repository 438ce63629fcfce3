"""Campaign and host detail screens: charts on one time axis with markers, expected bands and load models."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll

from ...describe import format_value, metric_label
from ...model import Annotation, series
from ...snapshot import CampaignView, GroupView, HostView, PairView
from ...units import format_duration, format_number
from ..charts import Marker
from ..text import literal
from ..widgets.campaigns import append_lift_and_live, trend_arrow
from ..widgets.chart import Chart, ChartData
from ..widgets.footer import KeyFooter
from ..widgets.hosts import headroom_text, health
from ..widgets.panel import Styler, TextPanel
from ..widgets.status import StatusLine
from .base import DashScreen

METRIC_ORDER = ("cpu.percent", "mem.percent", "load.1", "load.5", "load.15", "net.rx_bps", "net.tx_bps")


def model_text(p: PairView) -> str:
    """`cpu = 5.0 + 0.020·visitors (r² 0.91)` or `no model yet`."""
    if math.isnan(p.slope):
        return "no model yet"
    return f"{metric_label(p.metric)} = {p.intercept:.3g} + {p.slope:.3g}·visitors (r² {p.r2:.2f})"


def forecast_text(headroom: float, seconds_to_limit: float) -> str:
    if math.isnan(headroom):
        return "headroom unknown"
    when = f"limit in {format_duration(seconds_to_limit)}" if math.isfinite(seconds_to_limit) else "not rising"
    return f"headroom {headroom:.1f}x, {when}"


def annotation_markers(annotations: tuple[Annotation, ...], hosts: tuple[str, ...], sty: Styler) -> list[Marker]:
    """A `D` marker at each deploy annotation that concerns one of `hosts` (or every host)."""
    return [Marker(a.ts, "D", sty("marker")) for a in annotations
            if a.host is None or any(a.applies_to(h) for h in hosts)]


def latest_annotation(annotations: tuple[Annotation, ...], hosts: tuple[str, ...], t0: float,
                      now: float) -> Text:
    """`  D deploy v2.3 on web-2, 40s ago` for the newest annotation on the charts, or nothing."""
    shown = [a for a in annotations if t0 <= a.ts <= now and (a.host is None or any(a.applies_to(h) for h in hosts))]
    if not shown:
        return Text("")
    a = shown[-1]
    where = f" on {a.host}" if a.host else ""
    return Text(f"  D {literal(a.text, 60)}{where}, {format_duration(now - a.ts)} ago", no_wrap=True)


def campaign_header(c: CampaignView, now: float, sty: Styler, ascii_only: bool) -> Text:
    """Name, DEMO badge, visitors, lift against plan, trend and time since launch."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(literal(c.name, 40), style=sty("head"))
    if c.demo:
        out.append(" ")
        out.append("DEMO", style=sty("badge"))
    out.append(f"  visitors {format_number(c.visitors)} {trend_arrow(c.growth_per_s, ascii_only)}")
    append_lift_and_live(out, c, now, sty)
    return out


def pair_lines(pairs: tuple[PairView, ...], width: int, sty: Styler) -> Text:
    """The fitted load models: host, metric, lag, model, expected now, headroom and forecast."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append("LOAD MODELS", style=sty("head"))
    if not pairs:
        out.append("\nno hosts configured for this campaign", style=sty("muted"))
    for p in pairs:
        out.append("\n")
        out.append(literal(p.host, 18), style=sty("head"))
        lag = format_duration(p.lag_seconds) if not math.isnan(p.lag_seconds) else "?"
        out.append(f" {metric_label(p.metric)}  lag {lag}  ")
        out.append(model_text(p))
        if width < 130:
            out.append("\n    ")
        if not math.isnan(p.expected_now):
            out.append(f"  expect {format_value(p.metric, p.expected_now)}", style=sty("muted"))
        out.append("  " + forecast_text(p.headroom, p.seconds_to_limit),
                   style=sty("warn") if not math.isnan(p.headroom) and p.headroom < 1.2 else "")
    return out


def group_lines(groups: tuple[GroupView, ...], sty: Styler) -> Text:
    """One line per host group the campaign lands on: its shared model, headroom, and hosts above the group."""
    out = Text(no_wrap=True, overflow="ellipsis")
    for g in groups:
        if out.plain:
            out.append("\n")
        out.append("group ", style=sty("muted"))
        out.append(literal(g.group, 18), style=sty("head"))
        out.append(f" ({g.hosts} hosts) {metric_label(g.metric)} {format_value(g.metric, g.median_now)}")
        if not math.isnan(g.slope):
            lag = format_duration(g.lag_seconds) if not math.isnan(g.lag_seconds) else "?"
            restored = ", saved" if g.restored else ""
            out.append(f"  lag {lag}  {g.intercept:.3g} + {g.slope:.3g}·visitors (r² {g.r2:.2f}{restored})  ")
        else:
            out.append("  no group model yet  ", style=sty("muted"))
        out.append(forecast_text(g.headroom, g.seconds_to_limit),
                   style=sty("warn") if not math.isnan(g.headroom) and g.headroom < 1.2 else "")
        if g.departing:
            out.append("  above group: " + ", ".join(literal(h, 18) for h in g.departing[:3])
                       + (f" +{len(g.departing) - 3}" if len(g.departing) > 3 else ""), style=sty("crit"))
    return out


class ChartScreen(DashScreen):
    """Shared parts of the detail screens: a scrolling column of charts kept in step with the data."""

    info_first = False  # the text panel above the charts (host: top processes) or below them (campaign: models)
    _charts_later = False  # during the first drawing: the charts come a frame later (first_redraw)

    BINDINGS: ClassVar = [
        Binding("escape", "app.show('overview')", "Back"),
        Binding("backspace", "app.show('overview')", "Back", show=False),  # no ESCDELAY wait (README)
        Binding("left,h", "step(-1)", "Prev", show=False),
        Binding("right,l", "step(1)", "Next", show=False),
        Binding("up,k", "scroll(-1)", "Up", show=False),
        Binding("down,j", "scroll(1)", "Down", show=False),
    ]
    DEFAULT_CSS = """
    ChartScreen #body { height: 1fr; }
    ChartScreen #head { padding: 0 1; }
    ChartScreen #info { padding: 0 1; margin-top: 1; }
    HostScreen #info { margin-top: 0; margin-bottom: 1; }
    ChartScreen Chart { height: 7; padding: 0 1; }
    ChartScreen.-tight Chart { height: 6; }
    """

    def compose(self) -> ComposeResult:
        self.head = TextPanel(id="head")
        self.info = TextPanel(id="info")
        self.body = VerticalScroll(id="body", can_focus=True)
        self.charts: dict[str, Chart] = {}
        yield self.head
        with self.body:
            yield self.info
        yield StatusLine(id="status")
        yield KeyFooter()
        yield self.palette

    def on_mount(self) -> None:
        self.body.focus()

    def first_redraw(self) -> None:
        """Header, text and status line at once, the charts (mounting them is the slow part) once that frame is
        painted: the key that opened the screen shows its answer sooner."""
        self._charts_later = True
        try:
            self.redraw()
        finally:
            self._charts_later = False
        self.call_after_refresh(self._redraw_if_mounted)

    def sync_charts(self, names: list[str]) -> list[Chart]:
        """One Chart per name, in order. The charts shown are kept and take the new names (another host's
        metrics): only the difference in number is mounted or removed (mounting is most of a screen change)."""
        if self._charts_later:
            return []
        if list(self.charts) != names and self.body.is_mounted:
            kept = list(self.charts.values())[: len(names)]
            for chart in list(self.charts.values())[len(names):]:
                chart.remove()
            new = [Chart() for _ in range(len(names) - len(kept))]
            if new and kept:
                self.body.mount_all(new, after=kept[-1])
            elif new:
                self.body.mount_all(new, **({"after": self.info} if self.info_first else {"before": self.info}))
            self.charts = dict(zip(names, kept + new, strict=True))
            self.body.scroll_home(animate=False)
        return list(self.charts.values())

    def action_scroll(self, step: int) -> None:
        self.body.scroll_relative(y=step * 3, animate=False)

    def action_step(self, step: int) -> None:
        raise NotImplementedError

    def redraw(self) -> None:
        self.set_class(self.size.height < 30, "-tight")
        super().redraw()


class CampaignScreen(ChartScreen):
    """Screen 2: a campaign's traffic and each of its hosts' load on one time axis, with the load models."""

    def action_step(self, step: int) -> None:
        self.dash.step_campaign(step)

    def redraw(self) -> None:
        app = self.dash
        snap = app.snapshot
        sty = self.head.sty
        c = app.current_campaign()
        if snap is None or c is None:
            self.head.show(Text("no campaign to show (none configured, or none match the filter)", style=sty("muted")))
            self.sync_charts([])
            self.info.show(Text(""))
            super().redraw()
            return
        self.head.show(campaign_header(c, snap.ts, sty, app.ascii_only))
        traffic = series("campaign", c.name, "visitors")
        loads = [series("host", h, "cpu.percent") for h in c.hosts]
        t0, t1 = app.time_range()
        win = app.series_window([traffic, *loads])
        markers = [Marker(t, tag, sty("marker")) for t, tag in (
            (c.start, "S"), (c.end, "E")) if t is not None]
        markers += [Marker(e.ts, "!", sty("crit")) for e in snap.events
                    if e.event == "firing" and (e.campaign == c.name or any(f"host:{h}/" in e.series for h in c.hosts))]
        markers += annotation_markers(snap.annotations, c.hosts, sty)
        pairs = {(p.host, p.metric): p for p in c.pairs}
        charts = self.sync_charts([traffic, *loads])
        for chart, name in zip(charts, [traffic, *loads], strict=False):
            values = win.row(name) if name in win.names else win.ts * math.nan
            now_v = snap.values.get(name, math.nan)
            if name == traffic:
                upcoming = c.forecast is not None and c.start is not None and c.start > snap.ts
                legend = (f"  {c.forecast}", sty("warn")) if upcoming else ("  S start  E end  ! alert  D deploy",
                                                                             sty("muted"))
                title = Text.assemble(("traffic ", sty("head")), (f"{format_number(now_v)} visitors", ""), legend,
                                      latest_annotation(snap.annotations, c.hosts, t0, snap.ts),
                                      no_wrap=True, overflow="ellipsis")
                fmt: Callable[[float], str] = format_number
            else:
                host = name.split(":", 1)[1].split("/", 1)[0]
                p = pairs.get((host, "cpu.percent"))
                title = Text.assemble((literal(host, 24), sty("head")), f" CPU {format_value('cpu.percent', now_v)}",
                                      no_wrap=True, overflow="ellipsis")
                if p is not None:
                    title.append(f"  lag {format_duration(p.lag_seconds)}  " + forecast_text(
                        p.headroom, p.seconds_to_limit), style=sty("muted"))
                fmt = _pct
            chart.set_data(ChartData(title, win.ts, values, t0, t1, snap.ts, None, markers,
                                     0.0 if name != traffic else None, 100.0 if name != traffic else None, fmt,
                                     key=(snap.tick, t0, t1, name)), app.chart_mode)
        info = pair_lines(c.pairs, self.size.width - 2, sty)
        if c.groups:  # hosts behind one balancer share a model: the group line comes first
            info = Text.assemble(group_lines(c.groups, sty), "\n", info, no_wrap=True, overflow="ellipsis")
        self.info.show(info)
        super().redraw()


def _pct(v: float) -> str:
    return f"{v:.0f}%"


class HostScreen(ChartScreen):
    """Screen 3: every metric of a host with the detector's expected band, top processes and its campaigns."""

    info_first = True

    def action_step(self, step: int) -> None:
        self.dash.step_host(step)

    def redraw(self) -> None:
        app = self.dash
        snap = app.snapshot
        sty = self.head.sty
        h = app.current_host()
        if snap is None or h is None:
            self.head.show(Text("no host to show (none yet, or none match the filter)", style=sty("muted")))
            self.sync_charts([])
            self.info.show(Text(""))
            super().redraw()
            return
        self.head.show(host_header(h, sty))
        metrics = sorted(h.metrics, key=lambda m: (METRIC_ORDER.index(m) if m in METRIC_ORDER else 99, m))
        names = [series("host", h.name, m) for m in metrics]
        t0, t1 = app.time_range()
        win = app.series_window(names)
        markers = [Marker(e.ts, "!", sty("crit")) for e in snap.events
                   if e.event == "firing" and e.series.startswith(f"host:{h.name}/")]
        markers += annotation_markers(snap.annotations, (h.name,), sty)
        deploy_note = latest_annotation(snap.annotations, (h.name,), t0, snap.ts)
        for chart, name, metric in zip(self.sync_charts(names), names, metrics, strict=False):
            values = win.row(name) if name in win.names else win.ts * math.nan
            band = app.band(name, t0)
            title = Text.assemble((metric_label(metric) + " ", sty("head")),
                                  (format_value(metric, h.metrics.get(metric, math.nan)), ""),
                                  no_wrap=True, overflow="ellipsis")
            if band is not None and band[1].size and not math.isnan(band[1][-1]):
                title.append(f"  expected {format_value(metric, float(band[1][-1]))}–"
                             f"{format_value(metric, float(band[2][-1]))}", style=sty("muted"))
            score = h.scores.get(metric)
            if score is not None and score >= 0.5:
                title.append(f"  anomaly {score:.2f}", style=sty("warn"))
            if name == names[0] and deploy_note.plain:
                title.append_text(deploy_note)
            pct = metric.endswith("percent")
            chart.set_data(ChartData(title, win.ts, values, t0, t1, snap.ts, band, markers,
                                     0.0 if pct else None, 100.0 if pct else None,
                                     partial(format_value, metric), key=(snap.tick, t0, t1, name)),
                           app.chart_mode)
        info = host_info(h, sty, 5 if self.size.height < 30 else 10)
        self.info.display = bool(info.plain)
        self.info.show(info)
        super().redraw()


def host_header(h: HostView, sty: Styler) -> Text:
    """Name, DEMO badge, health, headroom and the campaigns landing on the host."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(literal(h.name, 40), style=sty("head"))
    if h.demo:
        out.append(" ")
        out.append("DEMO", style=sty("badge"))
    state = health(h)
    out.append(f"  {state}", style=sty("muted") if state == "stale" else sty(state))
    out.append(f"  campaigns: {literal(', '.join(h.campaigns) or 'none', 40)}",
               style=sty("traffic") if h.campaigns else sty("muted"))
    if not math.isnan(h.headroom):
        out.append(f"  headroom {headroom_text(h)}")
    if h.stale or h.error:
        out.append(f"\nerror: {literal(h.error or 'no data', 200)}", style=sty("crit"))
    return out


def host_info(h: HostView, sty: Styler, rows: int = 10) -> Text:
    """Top processes (the local host only; nothing for others)."""
    out = Text(no_wrap=True, overflow="ellipsis")
    if not h.top_processes:
        return out
    out.append(f"{'PID':>7}  {'CPU':>6}  {'MEM':>5}  TOP PROCESSES", style=sty("head"))
    for p in h.top_processes[:rows]:
        cpu, mem = float(p.get("cpu", math.nan)), float(p.get("mem", math.nan))
        out.append(f"\n{p.get('pid', ''):>7}  {cpu:5.1f}%  {mem:4.1f}%  ")
        out.append(literal(p.get("name", "?"), 40))
    return out
