"""Light text panels: render a stored Rich Text, refresh only when it changed, themed by component classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.widget import Widget

# Semantic styles every panel can ask for; the theme files style them as `.sw--NAME`.
STYLE_NAMES = ("ok", "warn", "crit", "muted", "accent", "traffic", "head", "badge", "band", "marker",
               "cursor", "paused", "acked", "explained", "unexplained")
COMPONENTS = {f"sw--{n}" for n in STYLE_NAMES}

# Used when there is no widget to ask (pure renderers in tests, before mount).
FALLBACK: dict[str, str] = {
    "ok": "green", "warn": "yellow", "crit": "bold red", "muted": "dim", "accent": "cyan",
    "traffic": "magenta", "head": "bold", "badge": "bold black on yellow", "band": "on grey23",
    "marker": "yellow", "cursor": "reverse", "paused": "reverse bold yellow", "acked": "dim",
    "explained": "green", "unexplained": "bold red",
}
Styler = Callable[[str], Style]


def fallback_styler(name: str) -> Style:
    """Plain Rich styles for a semantic name (no theme)."""
    return Style.parse(FALLBACK.get(name, ""))


class Palette(Widget):
    """An invisible widget that carries the semantic styles for a whole screen (one per screen keeps CSS cheap)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = COMPONENTS
    DEFAULT_CSS = "Palette { display: none; }"

    def sty(self, name: str) -> Style:
        """The theme's style for a semantic name."""
        try:
            return self.get_component_rich_style(f"sw--{name}", partial=True)
        except Exception:  # not mounted yet
            return fallback_styler(name)


class TextPanel(Widget):
    """A widget that shows one Rich Text and re-renders only when that text actually changed."""

    DEFAULT_CSS = "TextPanel { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = Text()
        self._key: object = None
        self._lines = 1

    def sty(self, name: str) -> Style:
        """The theme's style for a semantic name."""
        palette = getattr(self.screen, "palette", None) if self.is_attached else None
        return palette.sty(name) if isinstance(palette, Palette) else fallback_styler(name)

    def show(self, text: Text) -> bool:
        """Show `text`; True if anything changed (and a redraw was asked for)."""
        key = (text.plain, tuple(text.spans), text.style)
        if key == self._key:
            return False
        self._key = key
        self._text = text
        lines = text.plain.count("\n") + 1
        relayout = lines != self._lines
        self._lines = lines
        self.refresh(layout=relayout)
        return True

    def invalidate(self) -> None:
        """Forget the cached text (the theme changed: the next show must redraw)."""
        self._key = None

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self._lines

    def render(self) -> Text:
        return self._text


class ListPanel(TextPanel, can_focus=True):
    """A text panel whose rows (after `header` lines) can be selected with keys or the mouse."""

    BINDINGS: ClassVar = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("enter", "choose", "Open", show=False),
    ]

    class Chosen(Message):
        """A row was opened (enter, or a click on the selected row)."""

        def __init__(self, panel: ListPanel, key: str) -> None:
            super().__init__()
            self.panel = panel
            self.key = key

    header = 1

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.keys: list[str] = []
        self.cursor = 0
        self.on_move: Callable[[], None] | None = None

    def set_keys(self, keys: list[str]) -> None:
        """The selectable rows' keys in display order (keeps the cursor on the same key when it can)."""
        current = self.selected
        self.keys = keys
        if current in keys:
            self.cursor = keys.index(current)
        self.cursor = max(0, min(self.cursor, len(keys) - 1))

    @property
    def selected(self) -> str | None:
        return self.keys[self.cursor] if 0 <= self.cursor < len(self.keys) else None

    def action_move(self, step: int) -> None:
        if self.keys:
            self.cursor = max(0, min(len(self.keys) - 1, self.cursor + step))
            if self.on_move:
                self.on_move()

    def action_choose(self) -> None:
        if self.selected is not None:
            self.post_message(self.Chosen(self, self.selected))

    def on_click(self, event: events.Click) -> None:
        row = event.y - self.header
        if 0 <= row < len(self.keys):
            if row == self.cursor or event.chain > 1:
                self.post_message(self.Chosen(self, self.keys[row]))
            self.cursor = row
            if self.on_move:
                self.on_move()

    def on_focus(self) -> None:
        if self.on_move:
            self.on_move()

    def on_blur(self) -> None:
        if self.on_move:
            self.on_move()
