"""The alert feed: active alerts then recent events, newest first; explained/unexplained marked, acked dimmed."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text

from ...model import AlertEvent, Cause
from ...snapshot import AlertView
from ..text import literal
from .panel import Styler, TextPanel, fallback_styler


def cause_tag(cause: Cause | None) -> tuple[str, str]:
    """A short word for the cause and its semantic style name."""
    if cause == Cause.CAMPAIGN:
        return "campaign", "explained"
    if cause == Cause.SCHEDULE:
        return "schedule", "explained"
    if cause == Cause.RECURRING:
        return "recurs", "explained"
    if cause == Cause.UNEXPLAINED:
        return "UNEXPL", "unexplained"
    return "", "muted"


def is_acked(a: AlertView) -> bool:
    return bool(getattr(a, "acked", False))


def is_silenced(a: AlertView) -> bool:
    return bool(getattr(a, "silenced", False))


def clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def alert_line(a: AlertView, width: int, sty: Styler) -> Text:
    """One active alert: state, severity, cause, rule and summary; acked or silenced ones dimmed."""
    tag, tag_style = cause_tag(a.cause)
    state = "SILENCED" if is_silenced(a) else a.state.upper()
    sev_style = {"critical": "crit", "warning": "warn"}.get(a.severity, "accent")
    line = Text.assemble(
        (f"{state:8} ", sty("head") if a.state == "firing" else sty("muted")),
        (f"{a.severity.upper()[:4]:4} ", sty(sev_style)), (f"{tag:8} ", sty(tag_style)),
        no_wrap=True, overflow="crop")
    rest = max(8, width - 23 - (6 if is_acked(a) else 0))
    line.append(literal(f"{a.rule}: {a.summary}", rest))
    if is_acked(a) or is_silenced(a):
        line.stylize(sty("acked"))
        if is_acked(a):
            line.append(" (ack)", style=sty("acked"))
    return line


def event_line(e: AlertEvent, width: int, sty: Styler) -> Text:
    """One past event: time, firing/resolved, severity, cause and summary."""
    tag, tag_style = cause_tag(e.cause if e.event == "firing" else None)
    sev = str(e.severity)
    base = sty("muted") if e.event != "firing" else ""
    return Text.assemble(
        (f"{clock(e.ts)} ", sty("muted")), (f"{e.event:8} ", base),
        (f"{sev.upper()[:4]:4} ", sty({"critical": "crit", "warning": "warn"}.get(sev, "accent"))),
        (f"{tag:8} ", sty(tag_style)), (literal(e.summary, max(8, width - 33)), base),
        no_wrap=True, overflow="crop")


def alert_lines(alerts: Sequence[AlertView], events: Sequence[AlertEvent], width: int, rows: int,
                sty: Styler = fallback_styler) -> Text:
    """Up to `rows` lines under a title: pending/firing alerts newest first, then the latest events."""
    out = Text(no_wrap=True, overflow="crop")
    firing = sum(1 for a in alerts if a.state == "firing")
    out.append("ALERTS", style=sty("head"))
    out.append(f"  {firing} firing, {len(alerts) - firing} pending", style=sty("muted"))
    lines = 0
    for a in sorted(alerts, key=lambda a: a.since, reverse=True):
        if lines >= rows:
            break
        out.append("\n")
        out.append_text(alert_line(a, width, sty))
        lines += 1
    for e in reversed(events):
        if lines >= rows:
            break
        out.append("\n")
        out.append_text(event_line(e, width, sty))
        lines += 1
    if lines == 0:
        out.append("\nno alerts", style=sty("ok"))
    return out


class AlertFeed(TextPanel):
    """The alert feed on the overview."""

    DEFAULT_CSS = "AlertFeed { height: 1fr; }"

