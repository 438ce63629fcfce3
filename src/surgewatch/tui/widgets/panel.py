"""A light panel: a Static that re-renders only when its text actually changed."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class Panel(Static):
    """Static with change detection, so an unchanged panel costs nothing per tick."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._last: str | None = None

    def show(self, text: Text) -> None:
        key = text.markup if text.spans else text.plain
        if key != self._last:
            self._last = key
            self.update(text)
