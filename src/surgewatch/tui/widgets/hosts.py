"""The host grid: health, CPU, memory, load, network, a CPU sparkline, campaigns served and headroom."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding

from ...describe import format_value
from ...snapshot import HostView
from ...units import format_bytes, format_duration
from ..text import cell, literal, name_cell, sparkline
from .panel import ListPanel, Styler, fallback_styler

SORTS = ("worst", "anomaly", "headroom", "cpu", "name")  # `o` cycles through them; the first is the default
SORT_LABELS = {"worst": "worst", "anomaly": "anomaly", "headroom": "headroom", "cpu": "CPU", "name": "name"}

HEALTH_GLYPHS = {"ok": "●", "warn": "▲", "crit": "✖", "stale": "○"}
ASCII_GLYPHS = {"ok": "o", "warn": "!", "crit": "X", "stale": "-"}
GROUP_KEY = "\x00group:"  # row keys of group headers (a host name never holds a control character)
NO_HOSTS = "no hosts yet (waiting for the first poll)"


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A group's header row in the host grid: how many hosts match, the worst of them, the median CPU."""

    name: str
    count: int
    worst: HostView | None
    median_cpu: float
    problems: int  # hosts in crit, warn or stale
    collapsed: bool

    @property
    def key(self) -> str:
        return GROUP_KEY + self.name


Row = HostView | GroupRow


def level(value: float, warn: float, crit: float) -> str:
    """ok / warn / crit for a value against two levels ("muted" when unknown)."""
    if math.isnan(value):
        return "muted"
    return "crit" if value >= crit else "warn" if value >= warn else "ok"


def health(h: HostView) -> str:
    """The host's worst state: stale, crit, warn or ok."""
    if h.stale:
        return "stale"
    m = h.metrics
    levels = {level(m.get("cpu.percent", math.nan), 70, 90), level(m.get("mem.percent", math.nan), 80, 90)}
    if not math.isnan(h.headroom) and h.headroom < 1.2:
        levels.add("warn")
    return "crit" if "crit" in levels else "warn" if "warn" in levels else "ok"


def headroom_text(h: HostView) -> str:
    """`1.4x 12m` (headroom over the campaign-driven load, time to saturation), or `–`."""
    if math.isnan(h.headroom):
        return "–"
    when = format_duration(h.seconds_to_limit) if math.isfinite(h.seconds_to_limit) else "ok"
    return f"{h.headroom:.1f}x {when}"


def row_key(row: Row) -> str:
    """The key a grid row is selected by: the host's name, or the group header's key."""
    return row.key if isinstance(row, GroupRow) else row.name


def group_line(g: GroupRow, width: int, ascii_only: bool, sty: Styler) -> Text:
    """`▾ pool-3  100 hosts · 4 not ok · worst web-0417 CPU 91% · median CPU 45%` (cropped to `width`)."""
    glyph = (">" if g.collapsed else "v") if ascii_only else ("▸" if g.collapsed else "▾")
    out = Text(no_wrap=True, overflow="crop")
    out.append(f"{glyph} ", style=sty("accent"))
    out.append(literal(g.name, 24), style=sty("head"))
    out.append(f"  {g.count} host{'s' if g.count != 1 else ''}", style=sty("muted"))
    if g.problems:
        out.append(" · ", style=sty("muted"))
        out.append(f"{g.problems} not ok", style=sty("warn"))
    if g.worst is not None:
        cpu = g.worst.metrics.get("cpu.percent", math.nan)
        out.append(" · worst ", style=sty("muted"))
        out.append(literal(g.worst.name, 18))
        out.append(f" {format_value('cpu.percent', cpu)}", style=sty(level(cpu, 70, 90)))
    out.append(f" · median CPU {format_value('cpu.percent', g.median_cpu)}", style=sty("muted"))
    out.truncate(width, overflow="crop")
    return out


def host_lines(hosts: Sequence[Row], width: int, ascii_only: bool = False,
               sty: Styler = fallback_styler, cursor: int | None = None, *, order: str = "",
               empty: str = NO_HOSTS, cache: dict[int, Text] | None = None) -> Text:
    """The host table sized to `width`: narrow terminals drop the campaign column and shorten the sparkline.
    Group header rows (GroupRow) span the table; `order` names a sort other than the default in the header;
    `empty` is the line shown when there is no row. `cache`: lines already made for these same row objects at
    this width and style, by `id` (the caller empties it when any of those change): moving the cursor through
    a fleet then makes only the rows it has not shown yet."""
    wide = width >= 110
    name_w = 18 if wide else 14
    camp_w = 16 if wide else 0
    fixed = 2 + name_w + 1 + 5 + 5 + 6 + 12 + 10 + (camp_w + 1 if camp_w else 0)
    spark_w = max(0, min(60, width - fixed - 1))
    styles: dict[str, Style] = {}

    def st(name: str) -> Style:  # a theme's style is looked up once per table, not once per cell
        found = styles.get(name)
        if found is None:
            found = styles[name] = sty(name)
        return found

    out = Text(no_wrap=True, overflow="crop")
    arrow = "v" if ascii_only else "↓"
    head = [Text("  "), cell(f"HOST {arrow}{order}" if order else "HOST", name_w),
            cell("CPU", 4, right=True), cell("MEM", 4, right=True),
            cell("LOAD", 5, right=True), cell("NET rx/tx", 11, right=True), cell("HEADROOM", 9, right=True)]
    if camp_w:
        head.append(cell("CAMPAIGN", camp_w))
    if spark_w >= 6:
        head.append(Text("CPU".ljust(spark_w)))
    out.append_text(Text.assemble(*head, style=st("head")))
    if not hosts:
        out.append(f"\n  {empty}", style=st("muted"))
    for i, h in enumerate(hosts):
        line = cache.get(id(h)) if cache is not None else None
        if line is None:
            line = (group_row_line(h, width, ascii_only, st) if isinstance(h, GroupRow)
                    else host_row_line(h, name_w, camp_w, spark_w, ascii_only, st))
            if cache is not None:
                cache[id(h)] = line
        if cursor == i:
            line = line.copy()
            line.stylize(st("cursor"), 1)
        out.append_text(line)
    return out


def group_row_line(g: GroupRow, width: int, ascii_only: bool, sty: Styler) -> Text:
    """A group header's line in the table (starting with its line break)."""
    line = Text("\n")
    line.append_text(group_line(g, width, ascii_only, sty))
    return line


def host_row_line(h: HostView, name_w: int, camp_w: int, spark_w: int, ascii_only: bool, sty: Styler) -> Text:
    """A host's line in the table (starting with its line break)."""
    glyphs = ASCII_GLYPHS if ascii_only else HEALTH_GLYPHS
    m = h.metrics
    cpu, mem = m.get("cpu.percent", math.nan), m.get("mem.percent", math.nan)
    rx, tx = m.get("net.rx_bps", math.nan), m.get("net.tx_bps", math.nan)
    state = health(h)
    state_style = sty("muted") if state == "stale" else sty(state)
    row = [Text("\n"), Text(glyphs[state] + " ", style=state_style),
           name_cell(h.name, name_w, sty("muted") if h.stale else "", h.demo, sty("badge")),
           cell(format_value("cpu.percent", cpu), 4, sty(level(cpu, 70, 90)), right=True),
           cell(format_value("mem.percent", mem), 4, sty(level(mem, 80, 90)), right=True),
           cell(format_value("load.1", m.get("load.1", math.nan)), 5, right=True),
           cell(f"{format_bytes(rx)}/{format_bytes(tx)}" if not math.isnan(rx) else "–", 11, right=True),
           cell(headroom_text(h), 9, sty("warn") if state == "warn" and h.headroom < 1.2 else "", right=True)]
    if camp_w:
        row.append(cell(", ".join(h.campaigns) or "–", camp_w, sty("traffic") if h.campaigns else sty("muted")))
    if h.stale:
        row.append(Text(literal(f"stale: {h.error or 'no data'}", max(8, spark_w)), style=sty("crit")))
    elif spark_w >= 6:
        row.append(Text(sparkline(h.spark.get("cpu.percent", ()), spark_w, 0.0, 100.0, ascii_only),
                        style=sty(level(cpu, 70, 90))))
    return Text.assemble(*row)


class HostGrid(ListPanel):
    """The host grid on the overview (select a row, enter opens the host or folds a group); `o` changes the
    order, `g` the grouping, page keys move a screenful (the screen draws only the rows that fit)."""

    BINDINGS: ClassVar = [
        Binding("o", "next_order", "Order", show=False),
        Binding("g", "next_grouping", "Group", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(-1)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.order = SORTS[0]
        self.grouping = "none"
        self.groupings: list[str] = ["none"]  # what the shown hosts can be grouped by (set on each redraw)
        self.collapsed: set[str] = set()
        self.page = 10  # rows shown (set on each redraw)

    def action_next_order(self) -> None:
        self.order = SORTS[(SORTS.index(self.order) + 1) % len(SORTS)]
        self.cursor, self.keys = 0, []  # the top of the new order (the grid's header names it)
        self._moved()

    def action_next_grouping(self) -> None:
        if len(self.groupings) < 2:
            self.notify("no host groups or campaigns to group hosts by", timeout=3)
            return
        i = self.groupings.index(self.grouping) if self.grouping in self.groupings else 0
        self.grouping = self.groupings[(i + 1) % len(self.groupings)]
        self.collapsed.clear()
        self.cursor, self.keys = 0, []
        self._moved()

    def toggle_group(self, name: str) -> None:
        """Fold or unfold one group's host rows."""
        self.collapsed.symmetric_difference_update({name})
        self._moved()

    def action_page(self, step: int) -> None:
        self.action_move(step * max(1, self.page - 1))

    def action_edge(self, step: int) -> None:
        self.action_move(step * len(self.keys))

    def _moved(self) -> None:
        if self.on_move:
            self.on_move()
