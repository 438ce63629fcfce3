"""The status line: sources up or stale (with the first error), last tick, paused, window and filter."""

from __future__ import annotations

import time

from rich.text import Text

from ...snapshot import Snapshot
from ..text import literal
from .panel import Styler, TextPanel, fallback_styler


def status_text(snap: Snapshot | None, paused: bool, width: int, window: str = "", filter_text: str = "",
                sty: Styler = fallback_styler) -> Text:
    """One line, cut at `width`: the most important facts first."""
    out = Text(no_wrap=True, overflow="ellipsis")
    if paused:
        out.append(" PAUSED ", style=sty("paused"))
        out.append(" ")
    if snap is None:
        out.append("starting…", style=sty("muted"))
        return out
    stale = [s for s in snap.sources if s.stale]
    out.append(f"sources {len(snap.sources) - len(stale)}/{len(snap.sources)} up",
               style=sty("crit") if stale else sty("ok"))
    if stale:
        out.append(f", {len(stale)} stale", style=sty("crit"))
    out.append(f" · tick {time.strftime('%H:%M:%S', time.localtime(snap.ts))}", style=sty("muted"))
    if window:
        out.append(f" · {window}", style=sty("muted"))
    if filter_text:
        out.append(" · filter ", style=sty("muted"))
        out.append(literal(filter_text, 20), style=sty("accent"))
    if stale:
        s = stale[0]
        room = max(10, width - len(out.plain) - len(s.name) - 6)
        out.append(f" · {literal(s.name, 24)}: ", style=sty("crit"))
        out.append(literal(s.error or "no data", room), style=sty("crit"))
    return out


class StatusLine(TextPanel):
    """One line at the bottom of every screen."""

    DEFAULT_CSS = "StatusLine { height: 1; }"
