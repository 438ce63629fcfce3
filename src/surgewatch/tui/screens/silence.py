"""The silence dialog: rule and series globs, a duration and a comment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from ...units import parse_duration


@dataclass(frozen=True, slots=True)
class SilenceRequest:
    """What the user asked for: silence `rule_glob` × `series_glob` for `seconds`, with a comment."""

    rule_glob: str
    series_glob: str
    seconds: float
    comment: str


class SilenceDialog(ModalScreen[SilenceRequest | None]):
    """A small form; enter in the last field or the Silence button submits, esc cancels."""

    BINDINGS: ClassVar = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    SilenceDialog { align: center middle; }
    SilenceDialog > Vertical { width: 70; max-width: 100%; height: auto; border: round $accent; padding: 0 1;
                               background: $surface; }
    SilenceDialog .row { height: 1; margin-bottom: 1; }
    SilenceDialog .row Label { width: 10; }
    SilenceDialog .row Input { width: 1fr; }
    SilenceDialog #error { color: $error; height: auto; }
    SilenceDialog #buttons { height: auto; align-horizontal: right; }
    SilenceDialog Button { min-width: 10; }
    """

    def __init__(self, rule_glob: str = "*", series_glob: str = "*", duration: str = "1h") -> None:
        super().__init__()
        self.defaults = (rule_glob, series_glob, duration)

    def compose(self) -> ComposeResult:
        rule, ser, dur = self.defaults
        with Vertical():
            yield Label("[b]Silence alerts[/b]  (enter: next field · esc: cancel)\n")
            fields = (("rule", rule, "rule glob", "rule"), ("series", ser, "series glob", "series"),
                      ("for", dur, "duration: 30m, 2h, 1d", "duration"), ("comment", "", "who, why", "comment"))
            for label, value, hint, name in fields:
                with Horizontal(classes="row"):
                    yield Label(label)
                    yield Input(value, placeholder=hint, id=name, compact=True)
            yield Label("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Label("  ")
                yield Button("Silence", variant="primary", id="ok", compact=True)

    def on_mount(self) -> None:
        self.query_one("#duration", Input).focus()

    def _value(self, name: str) -> str:
        return self.query_one(f"#{name}", Input).value.strip()

    def submit(self) -> None:
        try:
            seconds = parse_duration(self._value("duration"))
        except Exception as exc:
            self.query_one("#error", Label).update(f"duration: {exc}")
            return
        if seconds <= 0:
            self.query_one("#error", Label).update("duration must be more than 0")
            return
        self.dismiss(SilenceRequest(self._value("rule") or "*", self._value("series") or "*", seconds,
                                    self._value("comment")))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "comment":
            self.submit()
        else:
            self.focus_next()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
