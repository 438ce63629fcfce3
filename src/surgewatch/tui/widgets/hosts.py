"""The host grid: health, CPU, memory, load, network, a CPU sparkline, campaigns served and headroom."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text

from ...describe import format_value
from ...snapshot import HostView
from ...units import format_bytes, format_duration
from ..text import cell, literal, name_cell, sparkline
from .panel import ListPanel, Styler, fallback_styler

HEALTH_GLYPHS = {"ok": "●", "warn": "▲", "crit": "✖", "stale": "○"}
ASCII_GLYPHS = {"ok": "o", "warn": "!", "crit": "X", "stale": "-"}


def level(value: float, warn: float, crit: float) -> str:
    """ok / warn / crit for a value against two levels ("muted" when unknown)."""
    if value != value:
        return "muted"
    return "crit" if value >= crit else "warn" if value >= warn else "ok"


def health(h: HostView) -> str:
    """The host's worst state: stale, crit, warn or ok."""
    if h.stale:
        return "stale"
    m = h.metrics
    levels = {level(m.get("cpu.percent", math.nan), 70, 90), level(m.get("mem.percent", math.nan), 80, 90)}
    if h.headroom == h.headroom and h.headroom < 1.2:
        levels.add("warn")
    return "crit" if "crit" in levels else "warn" if "warn" in levels else "ok"


def headroom_text(h: HostView) -> str:
    """`1.4x 12m` (headroom over the campaign-driven load, time to saturation), or `–`."""
    if h.headroom != h.headroom:
        return "–"
    when = format_duration(h.seconds_to_limit) if math.isfinite(h.seconds_to_limit) else "ok"
    return f"{h.headroom:.1f}x {when}"


def host_lines(hosts: Sequence[HostView], width: int, ascii_only: bool = False,
               sty: Styler = fallback_styler, cursor: int | None = None) -> Text:
    """The host table sized to `width`: narrow terminals drop the campaign column and shorten the sparkline."""
    wide = width >= 110
    name_w = 18 if wide else 14
    camp_w = 16 if wide else 0
    fixed = 2 + name_w + 1 + 5 + 5 + 6 + 12 + 10 + (camp_w + 1 if camp_w else 0)
    spark_w = max(0, min(60, width - fixed - 1))
    glyphs = ASCII_GLYPHS if ascii_only else HEALTH_GLYPHS
    out = Text(no_wrap=True, overflow="crop")
    head = [Text("  "), cell("HOST", name_w), cell("CPU", 4, right=True), cell("MEM", 4, right=True),
            cell("LOAD", 5, right=True), cell("NET rx/tx", 11, right=True), cell("HEADROOM", 9, right=True)]
    if camp_w:
        head.append(cell("CAMPAIGN", camp_w))
    if spark_w >= 6:
        head.append(Text("CPU".ljust(spark_w)))
    out.append_text(Text.assemble(*head, style=sty("head")))
    if not hosts:
        out.append("\n  no hosts yet (waiting for the first poll, or none match the filter)", style=sty("muted"))
    for i, h in enumerate(hosts):
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
               cell(f"{format_bytes(rx)}/{format_bytes(tx)}" if rx == rx else "–", 11, right=True),
               cell(headroom_text(h), 9, sty("warn") if state == "warn" and h.headroom < 1.2 else "", right=True)]
        if camp_w:
            row.append(cell(", ".join(h.campaigns) or "–", camp_w, sty("traffic") if h.campaigns else sty("muted")))
        if h.stale:
            row.append(Text(literal(f"stale: {h.error or 'no data'}", max(8, spark_w)), style=sty("crit")))
        elif spark_w >= 6:
            row.append(Text(sparkline(h.spark.get("cpu.percent", ()), spark_w, 0.0, 100.0, ascii_only),
                            style=sty(level(cpu, 70, 90))))
        line = Text.assemble(*row)
        if cursor == i:
            line.stylize(sty("cursor"), 1)
        out.append_text(line)
    return out


class HostGrid(ListPanel):
    """The host grid on the overview (select a row, enter opens the host)."""
