"""The alert feed: active alerts first, then recent events, newest first; explained/unexplained marked."""

from __future__ import annotations

import time
from collections.abc import Collection

from rich.text import Text

from ...model import AlertEvent, Cause
from ...snapshot import AlertView
from ..text import literal
from .panel import Panel

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def _cause_tag(cause: Cause | None) -> tuple[str, str]:
    if cause == Cause.CAMPAIGN:
        return "explained  ", "green"
    if cause == Cause.UNEXPLAINED:
        return "UNEXPLAINED", "bold red"
    return "           ", ""


def alert_lines(alerts: tuple[AlertView, ...], events: tuple[AlertEvent, ...], width: int, rows: int,
                acked: Collection[str] = ()) -> Text:
    """Up to `rows` lines: pending/firing alerts, then the latest firing/resolved events."""
    out = Text()
    out.append("ALERTS", style="bold")
    firing = sum(1 for a in alerts if a.state == "firing")
    out.append(f"   {firing} firing, {len(alerts) - firing} pending", style="dim")
    lines = 0
    for a in sorted(alerts, key=lambda a: a.since, reverse=True):
        if lines >= rows:
            break
        tag, tag_style = _cause_tag(a.cause)
        dim = a.fingerprint in acked
        sev = a.severity.upper()[:4]
        line = Text.assemble(
            "\n", (f"{a.state.upper():8}", "bold" if a.state == "firing" else "dim"),
            (f"{sev:5}", SEVERITY_STYLE.get(a.severity, "")), (tag + " ", tag_style),
            (literal(f"{a.rule}: {a.summary}", max(10, width - 27)), ""))
        if dim:
            line.stylize("dim")
            line.append(" (ack)", style="dim")
        out.append_text(line)
        lines += 1
    for e in reversed(events):
        if lines >= rows:
            break
        tag, tag_style = _cause_tag(e.cause if e.event == "firing" else None)
        clock = time.strftime("%H:%M:%S", time.localtime(e.ts))
        style = "" if e.event == "firing" else "dim"
        sev = str(e.severity).upper()[:4]
        out.append_text(Text.assemble(
            "\n", (f"{clock} ", "dim"), (f"{e.event:9}", style), (f"{sev:5}", SEVERITY_STYLE.get(str(e.severity), "")),
            (tag + " ", tag_style if e.event == "firing" else "dim"),
            (literal(e.summary, max(10, width - 37)), style)))
        lines += 1
    if lines == 0:
        out.append("\nno alerts", style="dim green")
    return out


class AlertFeed(Panel):
    """The alert feed on the overview."""

    DEFAULT_CSS = "AlertFeed { height: 1fr; }"
