"""The campaign strip: visitors now, lift over baseline against plan, trend arrow, time since launch, sparkline."""

from __future__ import annotations

import math
import time

from rich.text import Text

from ...snapshot import CampaignView
from ...units import format_duration, format_number
from ..text import cell, name_cell, sparkline
from .panel import Panel


def trend_arrow(growth_per_s: float) -> str:
    """↑ ↗ → ↘ ↓ from the traffic's exponential growth rate (per minute thresholds)."""
    if growth_per_s != growth_per_s:
        return "·"
    per_min = growth_per_s * 60
    if per_min > 0.10:
        return "↑"
    if per_min > 0.02:
        return "↗"
    if per_min < -0.10:
        return "↓"
    if per_min < -0.02:
        return "↘"
    return "→"


def campaign_lines(campaigns: tuple[CampaignView, ...], width: int, now: float | None = None,
                   ascii_only: bool = False) -> Text:
    """The campaign table as text sized to `width` columns."""
    now = time.time() if now is None else now
    name_w = 22 if width >= 100 else 16
    spark_w = max(0, min(40, width - name_w - 38 - 2))
    out = Text()
    head = [cell("CAMPAIGN", name_w), cell("VISITORS", 9, right=True), cell("LIFT", 6, right=True),
            cell("PLAN", 6, right=True), cell("", 3), cell("LIVE", 8, right=True)]
    if spark_w >= 8:
        head.append(Text("  " + "traffic".ljust(spark_w)))
    out.append_text(Text.assemble(*head, style="bold"))
    if not campaigns:
        out.append("\nno campaigns configured", style="dim")
    for c in campaigns:
        lifted = c.lift == c.lift and c.lift >= 1.5
        lift_style = "bold magenta" if lifted else ""
        planned = f"{c.expected_lift:.1f}x" if c.expected_lift else "–"
        if c.start is not None and c.start <= now and (c.end is None or now < c.end):
            live = format_duration(now - c.start)
        elif c.start is not None and c.start > now:
            live = "in " + format_duration(c.start - now)
        else:
            live = "–"
        arrow = trend_arrow(c.growth_per_s)
        if ascii_only:
            arrow = {"↑": "^", "↗": "/", "↓": "v", "↘": "\\", "→": "-"}.get(arrow, arrow)
        row = [Text("\n"), name_cell(c.name, name_w, "bold" if lifted else "", c.demo),
               cell(format_number(c.visitors) if not math.isnan(c.visitors) else "–", 9, right=True),
               cell(f"{c.lift:.1f}x" if c.lift == c.lift else "–", 6, lift_style, right=True),
               cell(planned, 6, "dim", right=True), cell(f" {arrow}", 3), cell(live, 8, right=True)]
        if spark_w >= 8:
            row.append(Text("  "))
            row.append(Text(sparkline(c.spark, spark_w, 0.0, None, ascii_only).ljust(spark_w), style="magenta"))
        out.append_text(Text.assemble(*row))
    return out


class CampaignPanel(Panel):
    """The campaign strip on the overview."""

    DEFAULT_CSS = "CampaignPanel { height: auto; }"
