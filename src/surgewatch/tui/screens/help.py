"""The help screen: every key the dashboard understands."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("q", "quit"),
    ("?", "show or hide this help"),
    ("p", "pause or resume screen updates (collection and alerting go on)"),
    ("ctrl+p", "command palette"),
]


class HelpScreen(ModalScreen[None]):
    """A modal list of keys; any of esc, q or ? closes it."""

    BINDINGS: ClassVar = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: auto; max-width: 76; height: auto; border: round $accent; padding: 0 1;
                            background: $surface; }
    """

    def compose(self) -> ComposeResult:
        lines = "\n".join(f"{key:>8}  {what}" for key, what in KEYS)
        with Vertical():
            yield Static("[b]surgewatch keys[/b]\n\n" + lines + "\n\n[dim]esc closes[/dim]")

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(result)
