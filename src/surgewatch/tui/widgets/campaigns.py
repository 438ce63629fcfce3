"""The campaign strip: visitors now, lift against plan, trend arrow, time since launch, sparkline."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text

from ...analysis import LIFTED
from ...snapshot import CampaignView
from ...units import format_duration, format_number
from ..text import baseline_range, cell, name_cell, sparkline
from .panel import ListPanel, Styler, fallback_styler

_ASCII_ARROWS = {"↑": "^", "↗": "/", "↓": "v", "↘": "\\", "→": "-", "·": "."}


def trend_arrow(growth_per_s: float, ascii_only: bool = False) -> str:
    """↑ ↗ → ↘ ↓ from the traffic's exponential growth rate (per minute thresholds)."""
    if math.isnan(growth_per_s):
        arrow = "·"
    else:
        per_min = growth_per_s * 60
        arrow = ("↑" if per_min > 0.10 else "↗" if per_min > 0.02 else "↓" if per_min < -0.10
                 else "↘" if per_min < -0.02 else "→")
    return _ASCII_ARROWS[arrow] if ascii_only else arrow


def live_text(c: CampaignView, now: float) -> str:
    """Time since launch, `in 5m` before it, `ended` after it, `–` when the config gives no start."""
    if c.start is None:
        return "–"
    if c.start > now:
        return "in " + format_duration(c.start - now)
    if c.end is not None and now >= c.end:
        return "ended"
    return format_duration(now - c.start)


def campaign_lines(campaigns: Sequence[CampaignView], width: int, now: float, ascii_only: bool = False,
                   sty: Styler = fallback_styler, cursor: int | None = None, relative: bool = False) -> Text:
    """The campaign table sized to `width` columns; row `cursor` highlighted. `relative`: sparklines scaled
    from the campaign's baseline (flat stays flat, a lift climbs) instead of from zero."""
    name_w = 22 if width >= 100 else 15
    fixed = 2 + name_w + 1 + 9 + 7 + 6 + 3 + 9
    spark_w = max(0, min(60, width - fixed - 2))
    out = Text(no_wrap=True, overflow="crop")
    head = [Text("  "), cell("CAMPAIGN", name_w), cell("VISITORS", 8, right=True), cell("LIFT", 6, right=True),
            cell("PLAN", 5, right=True), cell("", 2), cell("LIVE", 8, right=True)]
    if spark_w >= 8:
        head.append(Text(" " + "traffic".ljust(spark_w)))
    out.append_text(Text.assemble(*head, style=sty("head")))
    if not campaigns:
        out.append("\n  no campaigns (none configured, or none match the filter)", style=sty("muted"))
    for i, c in enumerate(campaigns):
        lifted = not math.isnan(c.lift) and c.lift >= LIFTED
        behind = lifted and c.expected_lift is not None and c.lift < 0.5 * c.expected_lift
        lift_style = sty("traffic") + sty("head") if lifted else sty("muted")
        row = [Text("\n"), Text("▶ " if cursor == i else "  ", style=sty("accent")),
               name_cell(c.name, name_w, sty("head") if lifted else "", c.demo, sty("badge")),
               cell(format_number(c.visitors) if not math.isnan(c.visitors) else "–", 8, right=True),
               cell(f"{c.lift:.1f}x" if not math.isnan(c.lift) else "–", 6, lift_style, right=True),
               cell(f"{c.expected_lift:.1f}x" if c.expected_lift else "–", 5,
                    sty("warn") if behind else sty("muted"), right=True),
               cell(trend_arrow(c.growth_per_s, ascii_only), 2), cell(live_text(c, now), 8, right=True)]
        if spark_w >= 8:
            lo, hi = baseline_range(c.spark[-spark_w:], c.baseline) if relative else (0.0, None)
            row.append(Text(" " + sparkline(c.spark, spark_w, lo, hi, ascii_only).ljust(spark_w),
                            style=sty("traffic")))
        line = Text.assemble(*row)
        if cursor == i:
            line.stylize(sty("cursor"), 1)
        out.append_text(line)
    return out


class CampaignStrip(ListPanel):
    """The campaign strip on the overview (select a row, enter opens the campaign)."""


def append_lift_and_live(out: Text, c: CampaignView, now: float, sty: Styler) -> None:
    """A campaign header's tail, shared by the detail screen and the wall: lift against plan, time since launch."""
    lift = f"{c.lift:.1f}x" if not math.isnan(c.lift) else "–"
    plan = f"{c.expected_lift:.1f}x" if c.expected_lift else "–"
    out.append(f"  lift {lift} (plan {plan})", style=sty("traffic"))
    if c.expected_visitors is not None:
        out.append(f"  expected {format_number(c.expected_visitors)} visitors", style=sty("muted"))
    out.append(f"  live {live_text(c, now)}", style=sty("muted"))
    if c.feed:
        out.append(f"  from feed {c.feed}", style=sty("muted"))

