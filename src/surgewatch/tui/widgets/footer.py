"""The key footer: Textual's Footer, rebuilt only when the keys it shows change (not on every focus move)."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer


def shown_keys(screen: Screen[Any]) -> tuple[object, ...]:
    """What a footer draws for `screen`: each shown binding with its state, and the palette key's."""
    palette = screen.app.COMMAND_PALETTE_BINDING
    return tuple((b.key, b.description, b.action, b.group, enabled, tooltip)
                 for key, (_node, b, enabled, tooltip) in screen.active_bindings.items() if b.show or key == palette)


class KeyFooter(Footer):
    """A compact footer that skips rebuilding its keys when a focus change leaves them as they are."""

    def __init__(self) -> None:
        super().__init__(compact=True)
        self._drawn: tuple[object, ...] | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        keys = shown_keys(screen)
        current = self.is_attached and screen is self.screen
        if current and self._bindings_ready and keys == self._drawn:
            return
        super().bindings_changed(screen)
        if current and screen.app.app_focus:  # the footer rebuilds itself (after the next refresh)
            self._drawn = keys
