"""The wall: a panel per active campaign with its traffic and its hosts' load on one time axis (launch and end
markers, the expected band, alert marks), headroom gauges and the alert it fires; one or two columns of them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from rich.text import Text

from ...describe import format_value
from ...model import series
from ...snapshot import AlertView, CampaignView, HostView, Snapshot
from ...units import format_number
from ..charts import Band, ChartStyles, Marker, gauge, plot, side_by_side, time_axis
from ..text import literal
from .alerts import alert_line
from .campaigns import append_lift_and_live, trend_arrow
from .hostorder import median_cpu, order_hosts, worst_group
from .hosts import ASCII_GLYPHS, HEALTH_GLYPHS, GroupRow, headroom_text, health, level
from .panel import Styler, fallback_styler

if TYPE_CHECKING:
    from ..app import SurgewatchApp

HOSTS_KEY = "hosts"  # the panel of the worst hosts outside running campaigns
PANEL_MIN_ROWS = 9
GAUGE_W = 30


@dataclass(frozen=True)
class LoadLine:
    """One host's CPU in a panel, with the detector's expected band."""

    host: HostView
    values: np.ndarray
    band: Band | None


@dataclass(frozen=True)
class WallPanel:
    """What one panel shows; `key` is `campaign:NAME`, or `hosts` for the worst-host group."""

    key: str
    campaign: CampaignView | None
    ts: np.ndarray
    traffic: np.ndarray | None
    loads: tuple[LoadLine, ...]
    markers: tuple[Marker, ...]
    alert: AlertView | None
    group: GroupRow | None = None  # the host group the worst-host panel shows (when the hosts have groups)


def active_campaigns(campaigns: Sequence[CampaignView], now: float) -> list[CampaignView]:
    """Campaigns running now: launched (or unscheduled) and not ended."""
    return [c for c in campaigns
            if not (c.start is not None and c.start > now) and not (c.end is not None and now >= c.end)]


_SEVERITY_RANK = {"critical": 0, "warning": 1}


def firing_alert(alerts: Sequence[AlertView]) -> AlertView | None:
    """The most severe firing alert nobody acknowledged or silenced (the newest among equals)."""
    live = [a for a in alerts if a.state == "firing" and not a.acked and not a.silenced]
    return min(live, key=lambda a: (_SEVERITY_RANK.get(a.severity, 2), -a.since)) if live else None


def panel_key_for(a: AlertView, campaigns: Sequence[CampaignView]) -> str:
    """The panel that shows an alert: its campaign's, the campaign of its host, else the host group."""
    kind, _, rest = a.series.partition(":")
    name = rest.split("/", 1)[0]
    for c in campaigns:
        if a.campaign == c.name or (kind == "campaign" and name == c.name) or (kind == "host" and name in c.hosts):
            return f"campaign:{c.name}"
    return HOSTS_KEY


def wall_targets(snap: Snapshot) -> list[str]:
    """What wall mode rotates through: the active campaigns, or the worst host group when none runs (the worst
    hosts of all when hosts have no groups; `build_panels` picks which)."""
    return [f"campaign:{c.name}" for c in active_campaigns(snap.campaigns, snap.ts)] or [HOSTS_KEY]


class WallRotation:
    """Wall mode's focus: the next target every `seconds` of engine time; held on a firing alert's panel."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.focus: str | None = None
        self.holding = False
        self._since = -math.inf

    def update(self, now: float, targets: Sequence[str], alert_key: str | None) -> str | None:
        """The focus after a tick at `now`."""
        if alert_key is not None:
            self.focus, self.holding, self._since = alert_key, True, now
        elif not targets:
            self.focus, self.holding = None, False
        elif self.focus not in targets:
            self.focus, self.holding, self._since = targets[0], False, now
        elif self.holding:
            self.holding, self._since = False, now  # the alert cleared: stay a full period on its panel
        elif now - self._since >= self.seconds and self.focus is not None:
            self.focus = targets[(list(targets).index(self.focus) + 1) % len(targets)]
            self._since = now
        return self.focus


def worst_hosts(hosts: Sequence[HostView], busy: set[str], limit: int = 4) -> tuple[GroupRow | None,
                                                                                  list[HostView]]:
    """Hosts outside the running campaigns, worst first: those of the worst host group when hosts have groups
    (with that group's header), else the worst of all."""
    pool = [h for h in hosts if h.name not in busy]
    found = worst_group(pool)
    if found is None:
        return None, order_hosts(pool, "worst")[:limit]
    name, members = found
    problems = sum(1 for h in members if health(h) != "ok")
    return GroupRow(name, len(members), members[0], median_cpu(members), problems, False), members[:limit]


def build_panels(app: SurgewatchApp, snap: Snapshot, sty: Styler, columns: int) -> list[WallPanel]:
    """The panels for the current snapshot: one per active campaign (filtered), plus the worst-host group
    when no campaign runs, when it holds the firing alert, or to fill the second column."""
    campaigns = active_campaigns(app.visible_campaigns(), snap.ts)
    alert = firing_alert(snap.alerts)
    alert_key = panel_key_for(alert, campaigns) if alert else None
    want_hosts = (not campaigns or alert_key == HOSTS_KEY or (columns == 2 and len(campaigns) % 2 == 1)
                  or (app.wall is not None and app.wall.focus == HOSTS_KEY))
    hosts = {h.name: h for h in app.visible_hosts()}
    groups: list[tuple[str, CampaignView | None, list[HostView]]] = [
        (f"campaign:{c.name}", c, [hosts[n] for n in c.hosts if n in hosts]) for c in campaigns]
    host_group, group = (worst_hosts(list(hosts.values()), {n for c in campaigns for n in c.hosts})
                         if want_hosts else (None, []))
    if group:
        groups.append((HOSTS_KEY, None, group))
    names = [series("campaign", c.name, "visitors") for _k, c, _h in groups if c is not None]
    names += [series("host", h.name, "cpu.percent") for _k, _c, hs in groups for h in hs]
    t0, _t1 = app.time_range()
    win = app.series_window(sorted(set(names)))
    nan_row = win.ts * math.nan

    def row(name: str) -> np.ndarray:
        return win.row(name) if name in win.names else nan_row

    panels = []
    for key, c, hs in groups:
        times = ((c.start, "S"), (c.end, "E")) if c is not None else ()
        markers = [Marker(t, tag, sty("marker")) for t, tag in times if t is not None]
        prefixes = tuple(f"host:{h.name}/" for h in hs)
        markers += [Marker(e.ts, "!", sty("crit")) for e in snap.events if e.event == "firing" and (
            (c is not None and e.campaign == c.name) or e.series.startswith(prefixes))]
        loads = tuple(LoadLine(h, row(series("host", h.name, "cpu.percent")),
                               app.band(series("host", h.name, "cpu.percent"), t0)) for h in hs)
        panels.append(WallPanel(key, c, win.ts, row(series("campaign", c.name, "visitors")) if c else None,
                                loads, tuple(markers), alert if alert_key == key else None,
                                host_group if key == HOSTS_KEY else None))
    return panels


def _traffic_top(values: np.ndarray, baseline: float) -> float | None:
    """The traffic chart's top: at least twice the baseline, so steady traffic draws mid-height, not at the top."""
    seen = values[~np.isnan(values)]
    top = float(seen.max()) if seen.size else math.nan
    if not math.isnan(baseline) and baseline > 0:
        top = max(top, 2.0 * baseline) if not math.isnan(top) else 2.0 * baseline
    return top if not math.isnan(top) else None


def _pct(v: float) -> str:
    return f"{v:.0f}%"


def panel_title(p: WallPanel, now: float, sty: Styler, ascii_only: bool, focused: bool) -> Text:
    """`▶ name DEMO  166 visitors ↑  lift 3.4x (plan 4.0x)  live 5m`, or the host group's title."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append((">" if ascii_only else "▶") + " " if focused else "  ", style=sty("accent"))
    c = p.campaign
    g = p.group
    if c is None and g is not None:
        out.append("GROUP ", style=sty("muted"))
        out.append(literal(g.name, 30), style=sty("head"))
        out.append(f"  the worst host group: {g.count} host{'s' if g.count != 1 else ''}", style=sty("muted"))
        if g.problems:
            out.append(f", {g.problems} not ok", style=sty("warn"))
        out.append(f", median CPU {format_value('cpu.percent', g.median_cpu)}; worst first, outside running "
                   "campaigns", style=sty("muted"))
        return out
    if c is None:
        out.append("HOSTS", style=sty("head"))
        out.append("  worst first, outside running campaigns", style=sty("muted"))
        return out
    out.append(literal(c.name, 40), style=sty("head"))
    if c.demo:
        out.append(" ")
        out.append("DEMO", style=sty("badge"))
    out.append(f"  {format_number(c.visitors)} visitors {trend_arrow(c.growth_per_s, ascii_only)}")
    append_lift_and_live(out, c, now, sty)
    return out


def gauges(loads: Sequence[LoadLine], width: int, mode: str, sty: Styler) -> Text:
    """Per host: health glyph and name, a CPU gauge with its value, headroom and time to the limit."""
    glyphs = ASCII_GLYPHS if mode == "ascii" else HEALTH_GLYPHS
    out = Text(no_wrap=True, overflow="crop")
    for i, ld in enumerate(loads):
        h = ld.host
        state = health(h)
        if i:
            out.append("\n")
        out.append(f"{glyphs[state]} {state.upper():5} ", style=sty("muted") if state == "stale" else sty(state))
        out.append(literal(h.name, width - 10), style=sty("head"))
        cpu = h.metrics.get("cpu.percent", math.nan)
        out.append("\nCPU ", style=sty("muted"))
        out.append(gauge(cpu / 100.0, max(4, width - 9), mode), style=sty(level(cpu, 70, 90)))
        out.append(f" {format_value('cpu.percent', cpu):>4}")
        room = headroom_text(h)
        out.append("\nheadroom ", style=sty("muted"))
        out.append(room, style=sty("warn") if not math.isnan(h.headroom) and h.headroom < 1.2 else "")
        out.append("\n")
    return out


class PlotCache:
    """Plots kept while the time axis has not moved by a column: on a wall the charts move one column every few
    seconds while the titles and gauges change every tick, and plotting is most of a panel's cost."""

    def __init__(self) -> None:
        self._column: tuple[int, int] | None = None
        self._plots: dict[object, Text] = {}

    def plot(self, key: object, t0: float, t1: float, width: int, make: Callable[[], Text]) -> Text:
        step = (t1 - t0) / max(1, 2 * width)  # braille has two dot columns per cell
        column = (int(t1 // step) if step > 0 else 0, round(t1 - t0))
        if column != self._column:
            self._column, self._plots = column, {}
        hit = self._plots.get(key)
        if hit is None:
            hit = self._plots[key] = make()
        return hit


def render_panel(p: WallPanel, width: int, height: int, t0: float, t1: float, now: float, mode: str,
                 sty: Styler, focused: bool = False, cache: PlotCache | None = None) -> Text:
    """One panel, exactly `height` lines of at most `width` cells."""
    plots = cache or PlotCache()
    ascii_only = mode == "ascii"
    out = Text(no_wrap=True, overflow="crop")
    out.append_text(panel_title(p, now, sty, ascii_only, focused))
    used = 1
    if p.alert is not None and height > 4:
        out.append("\n")
        out.append((" X " if ascii_only else " ✖ "), style=sty("crit"))
        out.append_text(alert_line(p.alert, width - 3, sty))
        used += 1
    body_h = height - used - 1  # the time axis takes the last line
    gauge_w = GAUGE_W if width >= 90 and p.loads else 0
    chart_w = width - gauge_w - (2 if gauge_w else 0)
    n_traffic = 1 if p.traffic is not None else 0
    fit = max(0, (body_h - 3 * n_traffic) // 3)  # each chart: a label line and at least two plot lines
    loads = list(p.loads[:fit])
    n = n_traffic + len(loads)
    charts = Text(no_wrap=True, overflow="crop")
    if n and body_h >= 3:
        each, extra = divmod(body_h, n)
        styles = ChartStyles(line=sty("traffic"), band=sty("band"), axis=sty("muted"), marker=sty("marker"))
        parts: list[Text] = []
        if p.traffic is not None and p.campaign is not None:
            label = Text.assemble(("traffic ", sty("head")),
                                  f"{format_number(p.campaign.visitors)} visitors",
                                  ("   S launch  E end  ! alert", sty("muted")), no_wrap=True)
            traffic, top = p.traffic, _traffic_top(p.traffic, p.campaign.baseline)
            parts += [label, plots.plot(
                (p.key, "", chart_w, each + extra - 1, mode, styles, p.markers), t0, t1, chart_w,
                lambda: plot(p.ts, traffic, chart_w, each + extra - 1, t0, t1, 0.0, top, None, p.markers, mode,
                             styles, format_number))]
        for ld in loads:
            h = ld.host
            cpu = h.metrics.get("cpu.percent", math.nan)
            label = Text.assemble((literal(h.name, 24), sty("head")),
                                  f" CPU {format_value('cpu.percent', cpu)}", no_wrap=True)
            band = ld.band
            if band is not None and band[1].size and not math.isnan(band[1][-1]):
                label.append(f"  expected {band[1][-1]:.0f}–{band[2][-1]:.0f}%", style=sty("muted"))
            rows = each - 1 + (extra if p.traffic is None and ld is loads[0] else 0)
            line = ChartStyles(line=sty(level(cpu, 70, 90)), band=sty("band"), axis=sty("muted"),
                               marker=sty("marker"))
            parts += [label, plots.plot(
                (p.key, h.name, chart_w, rows, mode, line, p.markers, band is None), t0, t1, chart_w,
                partial(plot, p.ts, ld.values, chart_w, rows, t0, t1, 0.0, 100.0, band, p.markers, mode, line,
                        _pct))]
        for i, part in enumerate(parts):
            if i:
                charts.append("\n")
            charts.append_text(part)
        if len(p.loads) > len(loads):
            charts.append(f"\n+{len(p.loads) - len(loads)} more hosts", style=sty("muted"))
    charts.append("\n")
    charts.append_text(time_axis(t0, t1, chart_w, now, mode))
    body = side_by_side([charts, gauges(p.loads, gauge_w, mode, sty)], [chart_w, gauge_w], body_h + 1) \
        if gauge_w else side_by_side([charts], [chart_w], body_h + 1)
    out.append("\n")
    out.append_text(body)
    return out


def render_wall(panels: Sequence[WallPanel], width: int, height: int, columns: int, t0: float, t1: float,
                now: float, mode: str, sty: Styler = fallback_styler, focus: str | None = None,
                cache: PlotCache | None = None) -> Text:
    """The panels in `columns` columns filling `width` x `height`; the focused panel is always among those
    shown (a line says how many more there are)."""
    if not panels or height < 4 or width < 30:
        return Text("")
    gap = 3
    col_w = (width - gap * (columns - 1)) // columns
    fit_rows = max(1, (height + 1) // (PANEL_MIN_ROWS + 1))
    rows_needed = -(-len(panels) // columns)
    shown = list(panels)
    more = 0
    if rows_needed > fit_rows:
        keep = fit_rows * columns - 1 if height > PANEL_MIN_ROWS else fit_rows * columns
        keys = [p.key for p in panels]
        start = 0
        if focus in keys:
            start = max(0, min(keys.index(focus) - keep // 2, len(panels) - keep))
        shown = list(panels[start:start + keep])
        more = len(panels) - len(shown)
        rows_needed = -(-len(shown) // columns)
    avail = height - (1 if more else 0)
    panel_h = (avail - (rows_needed - 1)) // rows_needed
    out = Text(no_wrap=True, overflow="crop")
    for r in range(rows_needed):
        if r:
            out.append("\n\n")
        row = shown[r * columns:(r + 1) * columns]
        blocks = [render_panel(p, col_w, panel_h, t0, t1, now, mode, sty, p.key == focus, cache) for p in row]
        out.append_text(side_by_side(blocks, [col_w] * len(blocks), panel_h, gap))
    if more:
        out.append(f"\n  +{more} more (screen 2 shows each campaign; ← → step through them)", style=sty("muted"))
    return out
