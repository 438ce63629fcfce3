"""Probes on the overview: each probe's up/down, HTTP status and latency, wrapped between whole items."""

from __future__ import annotations

import math
from collections.abc import Mapping

from rich.text import Text

from ...model import split_series
from ..text import literal
from .panel import Styler, TextPanel, fallback_styler


def probe_values(values: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """`probe:NAME/metric` series grouped by probe name."""
    out: dict[str, dict[str, float]] = {}
    for name, v in values.items():
        if name.startswith("probe:"):
            _kind, who, metric = split_series(name)
            out.setdefault(who, {})[metric] = v
    return dict(sorted(out.items()))


def probe_lines(values: Mapping[str, float], width: int, ascii_only: bool = False,
                sty: Styler = fallback_styler) -> Text:
    """`PROBES  api ● 200 84ms · shop ✖ down …` wrapped at whole items (empty when there are no probes)."""
    probes = probe_values(values)
    out = Text(no_wrap=True, overflow="crop")
    if not probes:
        return out
    out.append("PROBES", style=sty("head"))
    col = 6
    for name, m in probes.items():
        up = m.get("up", math.nan)
        status, lat = m.get("status", math.nan), m.get("latency_ms", math.nan)
        down = not math.isnan(up) and up < 0.5
        glyph = ("X" if down else "o") if ascii_only else ("✖" if down else "●")
        detail = "down" if down else " ".join(p for p in (
            f"{status:.0f}" if not math.isnan(status) and status > 0 else "",
            f"{lat:.0f}ms" if not math.isnan(lat) else "") if p) or "–"
        label = literal(name, 24)
        item_len = 2 + len(glyph) + 1 + len(label) + 1 + len(detail)
        if col + item_len > width and col > 6:
            out.append("\n      ")
            col = 6
        out.append("  ")
        out.append(glyph, style=sty("crit") if down else sty("ok"))
        out.append(f" {label} ")
        out.append(detail, style=sty("crit") if down else sty("muted"))
        col += item_len
    return out


class ProbesPanel(TextPanel):
    """Probe results (hidden when there are none)."""
