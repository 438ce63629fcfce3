"""The host grid: health colour, CPU, memory, load, network, a CPU sparkline, campaigns and headroom."""

from __future__ import annotations

import math

from rich.text import Text

from ...describe import format_value
from ...snapshot import HostView
from ...units import format_bytes, format_duration
from ..text import cell, level_style, literal, name_cell, sparkline
from .panel import Panel


def host_lines(hosts: tuple[HostView, ...], width: int, ascii_only: bool = False) -> Text:
    """The host table as text sized to `width` columns (narrow terminals drop the right-hand columns)."""
    name_w = 18 if width >= 100 else 14
    spark_w = max(0, min(40, width - name_w - 36 - (19 if width >= 110 else 0) - 2))
    out = Text()
    head = [cell("HOST", name_w), cell("CPU", 5, right=True), cell("MEM", 5, right=True),
            cell("LOAD", 6, right=True), cell("NET rx/tx", 14, right=True)]
    if spark_w >= 8:
        head.append(Text("  " + "CPU trend".ljust(spark_w)))
    if width >= 110:
        head.append(cell(" HEADROOM", 18))
    out.append_text(Text.assemble(*head, style="bold"))
    if not hosts:
        out.append("\nwaiting for the first poll…", style="dim")
    for h in hosts:
        m = h.metrics
        cpu, mem = m.get("cpu.percent", math.nan), m.get("mem.percent", math.nan)
        load = m.get("load.1", math.nan)
        rx, tx = m.get("net.rx_bps", math.nan), m.get("net.tx_bps", math.nan)
        name_style = "dim strike" if h.stale else ("bold red" if cpu >= 90 else "")
        row = [Text("\n"), name_cell(h.name, name_w, name_style, h.demo),
               cell(format_value("cpu.percent", cpu), 5, level_style(cpu, 70, 90), right=True),
               cell(format_value("mem.percent", mem), 5, level_style(mem, 80, 90), right=True),
               cell(format_value("load.1", load), 6, right=True),
               cell(f"{format_bytes(rx)}/{format_bytes(tx)}" if rx == rx else "–", 14, right=True)]
        if spark_w >= 8:
            row.append(Text("  "))
            row.append(Text(sparkline(h.spark.get("cpu.percent", ()), spark_w, 0.0, 100.0, ascii_only).ljust(spark_w),
                            style=level_style(cpu, 70, 90)))
        if width >= 110:
            if h.headroom == h.headroom:
                when = format_duration(h.seconds_to_limit) if math.isfinite(h.seconds_to_limit) else "steady"
                row.append(cell(f" {h.headroom:.1f}x · {when}", 18, "red" if h.headroom < 1.2 else ""))
            else:
                row.append(cell(" –", 18, "dim"))
        if h.stale and h.error:
            row.append(Text(f"  stale: {literal(h.error, 60)}", style="red"))
        out.append_text(Text.assemble(*row))
    return out


class HostsPanel(Panel):
    """The hosts table on the overview."""

    DEFAULT_CSS = "HostsPanel { height: auto; }"
