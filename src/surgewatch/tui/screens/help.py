"""The help screen: every key the dashboard understands."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("1 … 5", "overview · campaign · host · alerts · sources"),
    ("tab", "next panel"),
    ("↑↓ / j k", "move the selection (scroll on detail screens)"),
    ("←→ / h l", "previous / next campaign or host on detail screens"),
    ("enter", "open the selected campaign or host; silence the selected alert"),
    ("esc", "back to the overview / close / clear the filter"),
    ("backspace", "the same as esc on the screens, without esc's 100 ms wait (ESCDELAY)"),
    ("/", "filter hosts and campaigns: a name part or a glob (web-04*); enter on one match opens it"),
    ("o", "host order: worst first · anomaly score · headroom · CPU · name"),
    ("g", "host rows grouped by host group · by campaign · not grouped; enter folds a group"),
    ("pgup pgdn", "a page of hosts up / down (home, end: first, last)"),
    ("+ / -", "zoom the time window in / out (5 min … whole history)"),
    ("p", "pause or resume screen updates (collection and alerting go on)"),
    ("a", "acknowledge the selected (or newest firing) alert"),
    ("s", "silence the selected (or newest firing) alert: duration, comment"),
    ("x", "remove the selected silence (alerts screen)"),
    ("t", "next theme (dark, light, high-contrast, monochrome, your own)"),
    ("c", "chart style: braille, block, ASCII"),
    ("ctrl+p", "command palette: every action by name"),
    ("?", "show or hide this help"),
    ("q", "quit"),
]


def help_text() -> Text:
    out = Text("surgewatch keys\n\n", style="bold")
    for key, what in KEYS:
        out.append(f"{key:>9}  ", style="bold")
        out.append(what + "\n")
    out.append("\nmouse: click a row to select it, click again to open it; the wheel scrolls.\n"
               "your own theme: ~/.config/surgewatch/themes/NAME.tcss, or SURGEWATCH_THEME=NAME|PATH\n"
               "charts: SURGEWATCH_CHARTS=braille|block|ascii; slow links: --low-bandwidth\nesc closes",
               style="dim")
    return out


class HelpScreen(ModalScreen[None]):
    """A modal list of keys; esc, q or ? closes it."""

    BINDINGS: ClassVar = [Binding("escape,q,question_mark", "close", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; max-width: 100%; height: auto; max-height: 100%;
                                  border: round $accent; padding: 0 1; background: $surface; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(help_text())

    def action_close(self) -> None:
        self.dismiss(None)
