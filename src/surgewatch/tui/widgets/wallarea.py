"""The overview's chart area at wall sizes; the charts themselves (widgets/wall.py) load when first drawn, so
the 80x24 quick look does not pay for them at start-up."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text

from .panel import TextPanel

if TYPE_CHECKING:
    from .wall import PlotCache, WallPanel

WALL_MIN = (120, 36)  # terminal columns, rows from which the overview gives its free space to charts
TWO_COLUMNS = (200, 60)  # ... and from which the campaign panels go in two columns


def is_wall(width: int, height: int) -> bool:
    return width >= WALL_MIN[0] and height >= WALL_MIN[1]


def columns_for(width: int, height: int) -> int:
    return 2 if width >= TWO_COLUMNS[0] and height >= TWO_COLUMNS[1] else 1


class WallPanels(TextPanel):
    """The overview's chart area at wall sizes: drawn at the widget's own size, only when its data moved."""

    DEFAULT_CSS = "WallPanels { height: 1fr; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.panels: list[WallPanel] = []
        self.args: tuple[int, float, float, float, str, str | None] = (1, 0.0, 1.0, 1.0, "braille", None)
        self._data_key: object = None
        self._drawn: object = None
        self._plots: PlotCache | None = None

    def set_panels(self, build: Callable[[], list[WallPanel]], columns: int, t0: float, t1: float, now: float,
                   mode: str, focus: str | None, key: object) -> None:
        """Show the panels `build` makes when `key` (which says what they show), the layout or the size changed;
        their plots are kept until the time axis moves a column."""
        data_key = (key, columns, mode, focus)
        if (data_key, self.size) == self._drawn:
            return
        self.panels = build()
        self.args = (columns, t0, t1, now, mode, focus)
        self._data_key = data_key
        self.refresh()

    def invalidate(self) -> None:
        super().invalidate()
        self._drawn = None
        self._plots = None

    def render(self) -> Text:
        from .wall import PlotCache, render_wall

        self._drawn = (self._data_key, self.size)
        self._plots = self._plots or PlotCache()
        columns, t0, t1, now, mode, focus = self.args
        return render_wall(self.panels, self.size.width, self.size.height, columns, t0, t1, now, mode,
                           self.sty, focus, self._plots)
