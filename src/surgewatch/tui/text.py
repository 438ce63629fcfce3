"""Text helpers for the dashboard: literal (never markup) strings from endpoints, sparklines, colours by level."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.style import StyleType
from rich.text import Text

from ..textsafe import strip_controls

BLOCKS = "▁▂▃▄▅▆▇█"
ASCII_BLOCKS = "_.-=+*#@"


def literal(text: object, limit: int | None = None) -> str:
    """Text from an endpoint made inert: escapes and control characters removed, capped at a word if one is near."""
    s = strip_controls(text).replace("\n", " ").replace("\t", " ")
    if limit is not None and len(s) > limit:
        cut = max(0, limit - 1)
        space = s.rfind(" ", 0, cut + 1)
        if space >= max(1, cut - 12):
            cut = space
        s = s[:cut].rstrip() + "…"
    return s


def sparkline(values: Sequence[float], width: int, lo: float | None = None, hi: float | None = None,
              ascii_only: bool = False) -> str:
    """The last `width` values as block characters (or ASCII), scaled to lo..hi (default: their range)."""
    chars = ASCII_BLOCKS if ascii_only else BLOCKS
    vals = list(values[-width:])
    last = math.nan
    for i, v in enumerate(vals):  # a missed poll is not news: carry the last value over interior gaps
        if math.isnan(v):
            vals[i] = last
        else:
            last = v
    finite = [v for v in vals if not math.isnan(v)]
    if not finite:
        return " " * min(width, len(vals))
    a = min(finite) if lo is None else lo
    b = max(finite) if hi is None else hi
    span = b - a
    out = []
    for v in vals:
        if math.isnan(v):
            out.append(" ")
        elif span <= 0:
            out.append(chars[0])
        else:
            k = int((min(max(v, a), b) - a) / span * (len(chars) - 1) + 0.5)
            out.append(chars[k])
    return "".join(out)


def baseline_range(values: Sequence[float], baseline: float, floor: float = 0.8,
                   min_lift: float = 2.0) -> tuple[float, float]:
    """A sparkline's lo..hi relative to a baseline: the baseline sits near the bottom and the top is at least
    `min_lift` times it, so a flat series draws flat and low and a lift climbs (rather than a solid bar)."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return 0.0, 1.0
    if math.isnan(baseline) or baseline <= 0:
        baseline = sorted(finite)[len(finite) // 2]  # no baseline yet: the median stands in
    if baseline <= 0:
        return 0.0, max(max(finite), 1.0)
    return baseline * floor, max(max(finite), baseline * min_lift)


def level_style(value: float, warn: float, crit: float) -> str:
    """A style name for a value against warning and critical levels."""
    if math.isnan(value):
        return "dim"
    if value >= crit:
        return "bold red"
    if value >= warn:
        return "yellow"
    return "green"


def cell(text: str, width: int, style: StyleType = "", right: bool = False) -> Text:
    """A fixed-width cell: padded or truncated (with …), never wrapping into the next column."""
    s = literal(text)
    if len(s) > width:
        s = s[: max(0, width - 1)] + "…" if width > 1 else s[:width]
    s = s.rjust(width) if right else s.ljust(width)
    return Text(s + " ", style=style)


def name_cell(name: str, width: int, style: StyleType = "", demo: bool = False,
              badge_style: StyleType = "bold black on yellow") -> Text:
    """A name column with an optional DEMO badge that is never cut: the name gives way first."""
    badge = " DEMO" if demo else ""
    room = max(1, width - len(badge))
    s = literal(name)
    if len(s) > room:
        s = s[: max(0, room - 1)] + "…"
    out = Text(s, style=style)
    if badge:
        out.append(badge, style=badge_style)
    out.append(" " * (width - len(s) - len(badge) + 1))
    return out
