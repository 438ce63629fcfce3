"""The status line: sources up or stale (with the first error), last tick, paused."""

from __future__ import annotations

import time

from rich.text import Text

from ...snapshot import Snapshot
from ..text import literal
from .panel import Panel


def status_text(snap: Snapshot | None, paused: bool, width: int) -> Text:
    if snap is None:
        return Text("starting…", style="dim")
    up = sum(1 for s in snap.sources if not s.stale)
    stale = [s for s in snap.sources if s.stale]
    out = Text(" ")
    if paused:
        out.append(" PAUSED ", style="reverse bold yellow")
        out.append(" ")
    out.append(f"sources {up}/{len(snap.sources)} up", style="green" if not stale else "bold red")
    out.append(f" · tick {time.strftime('%H:%M:%S', time.localtime(snap.ts))}", style="dim")
    if stale:
        s = stale[0]
        more = f" (+{len(stale) - 1} more)" if len(stale) > 1 else ""
        out.append(f" · {literal(s.name)}: {literal(s.error or 'no data', max(10, width - 50))}{more}", style="red")
    return out


class StatusLine(Panel):
    """One line at the bottom of the overview."""

    DEFAULT_CSS = "StatusLine { height: 1; background: $panel; }"
