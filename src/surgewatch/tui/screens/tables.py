"""Alerts and Sources screens: firing, pending, silenced and history with ack/silence; every source's health."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll

from ...snapshot import AlertView, SourceView
from ...units import format_duration
from ..text import cell, literal
from ..widgets.alerts import alert_line, clock, event_line, is_silenced
from ..widgets.footer import KeyFooter
from ..widgets.panel import ListPanel, Styler, TextPanel
from ..widgets.status import StatusLine
from .base import DashScreen


def ordered_alerts(alerts: Sequence[AlertView]) -> list[AlertView]:
    """Firing, then pending, then silenced; newest first within each."""
    rank = {"firing": 0, "pending": 1}
    return sorted(alerts, key=lambda a: (2 if is_silenced(a) else rank.get(a.state, 1), -a.since))


def active_lines(alerts: Sequence[AlertView], width: int, sty: Styler, cursor: int | None) -> Text:
    out = Text("ACTIVE  (a acknowledge · s silence)", style=sty("head"), no_wrap=True, overflow="crop")
    if not alerts:
        out.append("\nnothing pending or firing", style=sty("ok"))
    for i, a in enumerate(alerts):
        out.append("\n")
        line = Text.assemble(("▶ " if i == cursor else "  ", sty("accent")), alert_line(a, width - 2, sty))
        if i == cursor:
            line.stylize(sty("cursor"))
        out.append_text(line)
    return out


def silence_lines(silences: Sequence[Any], now: float, width: int, sty: Styler, cursor: int | None) -> Text:
    out = Text("SILENCES  (x removes)", style=sty("head"), no_wrap=True, overflow="crop")
    if not silences:
        out.append("\nnone", style=sty("muted"))
    for i, s in enumerate(silences):
        until = float(getattr(s, "until", 0.0) or 0.0)
        text = (f"{literal(getattr(s, 'rule', '*'), 20)} {literal(getattr(s, 'series', '*'), 30)} "
                f"for {format_duration(until - now)}  {literal(getattr(s, 'comment', ''), max(8, width - 70))}")
        line = Text.assemble(("▶ " if i == cursor else "  ", sty("accent")), text)
        if i == cursor:
            line.stylize(sty("cursor"))
        out.append("\n")
        out.append_text(line)
    return out


class AlertsScreen(DashScreen):
    """Screen 4: active alerts (select one to ack or silence), silences and the event history."""

    BINDINGS: ClassVar = [
        Binding("escape", "app.show('overview')", "Back"),
        Binding("backspace", "app.show('overview')", "Back", show=False),  # no ESCDELAY wait (README)
        Binding("x", "remove_silence", "Unsilence"),
    ]
    DEFAULT_CSS = """
    AlertsScreen #alert-body { height: 1fr; padding: 0 1; }
    AlertsScreen ListPanel, AlertsScreen #history { margin-bottom: 1; }
    """

    def compose(self) -> ComposeResult:
        self.active = ListPanel(id="active")
        self.silenced = ListPanel(id="silences")
        self.history = TextPanel(id="history")
        self.active.on_move = self.redraw
        self.silenced.on_move = self.redraw
        with VerticalScroll(id="alert-body"):
            yield self.active
            yield self.silenced
            yield self.history
        yield StatusLine(id="status")
        yield KeyFooter()
        yield self.palette

    def on_mount(self) -> None:
        self.active.focus()

    def selected_alert(self) -> AlertView | None:
        snap = self.dash.snapshot
        key = self.active.selected
        if snap is None or key is None:
            return None
        return next((a for a in snap.alerts if a.fingerprint == key), None)

    def redraw(self) -> None:
        app = self.dash
        snap = app.snapshot
        width = self.size.width - 2
        sty = self.active.sty
        if snap is not None:
            alerts = ordered_alerts(snap.alerts)
            self.active.set_keys([a.fingerprint for a in alerts])
            self.active.show(active_lines(alerts, width, sty, self.active.cursor if self.active.has_focus else None))
            silences = app.silences()
            self.silenced.set_keys([str(getattr(s, "id", i)) for i, s in enumerate(silences)])
            self.silenced.show(silence_lines(silences, snap.ts, width, sty,
                                             self.silenced.cursor if self.silenced.has_focus else None))
            hist = Text("HISTORY  (newest first)", style=sty("head"), no_wrap=True, overflow="crop")
            if not snap.events:
                hist.append("\nno events yet", style=sty("muted"))
            for e in reversed(snap.events):
                hist.append("\n")
                hist.append_text(event_line(e, width, sty))
            self.history.show(hist)
        super().redraw()

    def on_list_panel_chosen(self, message: ListPanel.Chosen) -> None:
        if message.panel is self.active:
            self.dash.action_silence()

    def action_remove_silence(self) -> None:
        key = self.silenced.selected
        if key is not None:
            self.dash.remove_silence(key)


def source_lines(sources: Sequence[SourceView], now: float, width: int, sty: Styler) -> Text:
    """Every source: state, last success, poll latency, polls/failures and the last error."""
    out = Text(no_wrap=True, overflow="ellipsis")
    name_w = 28 if width >= 100 else 22
    out.append_text(Text.assemble(cell("SOURCE", name_w), cell("STATE", 6), cell("LAST OK", 9, right=True),
                                  cell("LATENCY", 7, right=True), cell("FAILS", 7, right=True), "LAST ERROR",
                                  style=sty("head")))
    for s in sources:
        state, st = ("stale", "crit") if s.stale else (("ok", "ok") if s.ok else ("error", "warn"))
        if s.last_success is None and not s.error:
            state, st = "wait", "muted"
        age = "never" if s.last_success is None else format_duration(now - s.last_success) + " ago"
        lat = "–" if s.last_latency is None else f"{s.last_latency * 1000:.0f}ms"
        name = literal(s.name) + (" DEMO" if s.demo else "") + (" TLS-UNVERIFIED" if s.insecure_tls else "")
        out.append("\n")
        out.append_text(Text.assemble(cell(name, name_w), cell(state, 6, sty(st)), cell(age, 9, right=True),
                                      cell(lat, 7, right=True), cell(f"{s.failures}/{s.polls}", 7, right=True)))
        out.append(literal(s.error or "", max(8, width - name_w - 42)), style=sty("crit"))
    if not sources:
        out.append("\nno sources configured", style=sty("muted"))
    insecure = [s.name for s in sources if s.insecure_tls]
    if insecure:
        out.append(f"\n\nWARNING tls_verify = false: certificates are NOT verified for {', '.join(insecure)}",
                   style=sty("crit"))
    out.append(f"\n\nas of {clock(now)}", style=sty("muted"))
    return out


class SourcesScreen(DashScreen):
    """Screen 5: every source with its state, last success, last error and poll latency."""

    BINDINGS: ClassVar = [Binding("escape", "app.show('overview')", "Back"),
                          Binding("backspace", "app.show('overview')", "Back", show=False)]
    DEFAULT_CSS = "SourcesScreen #src-body { height: 1fr; padding: 0 1; }"

    def compose(self) -> ComposeResult:
        self.table = TextPanel(id="sources")
        with VerticalScroll(id="src-body", can_focus=True):
            yield self.table
        yield StatusLine(id="status")
        yield KeyFooter()
        yield self.palette

    def redraw(self) -> None:
        snap = self.dash.snapshot
        if snap is not None:
            self.table.show(source_lines(snap.sources, snap.ts, self.size.width - 2, self.table.sty))
        super().redraw()


