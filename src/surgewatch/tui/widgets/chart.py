"""A chart widget: a title line, a plot sized to the widget and a time axis; redrawn only when its data moved."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from rich.text import Text

from ..charts import ChartStyles, Marker, plot, time_axis
from .panel import TextPanel


@dataclass
class ChartData:
    """What one chart shows: a series over [t0, t1], an optional expected band, markers and a title."""

    title: Text
    ts: np.ndarray
    values: np.ndarray
    t0: float
    t1: float
    now: float
    band: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    markers: Sequence[Marker] = ()
    lo: float | None = None
    hi: float | None = None
    fmt: Callable[[float], str] | None = None
    key: object = field(default=None)


class Chart(TextPanel):
    """Draws a ChartData at the widget's size (braille, block or ASCII)."""

    DEFAULT_CSS = "Chart { height: 7; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None, axis: bool = True) -> None:
        super().__init__(id=id, classes=classes)
        self.data: ChartData | None = None
        self.mode = "braille"
        self.axis = axis
        self._drawn: object = None

    def set_data(self, data: ChartData, mode: str) -> None:
        """Show `data`; nothing is redrawn unless its key, the mode or the size changed."""
        self.data, self.mode = data, mode
        if (data.key, mode, self.size) != self._drawn:
            self.refresh()

    def invalidate(self) -> None:
        super().invalidate()
        self._drawn = None

    def render(self) -> Text:
        d = self.data
        w, h = self.size.width, self.size.height
        self._drawn = (d.key if d else None, self.mode, self.size)
        if d is None or w < 12 or h < 2:
            return Text("")
        plot_h = max(1, h - 1 - (1 if self.axis else 0))
        styles = ChartStyles(line=self.sty("accent"), band=self.sty("band"), axis=self.sty("muted"),
                             marker=self.sty("marker"))
        out = Text(no_wrap=True, overflow="crop")
        out.append_text(d.title)
        out.append("\n")
        out.append_text(plot(d.ts, d.values, w, plot_h, d.t0, d.t1, d.lo, d.hi, d.band, d.markers, self.mode,
                             styles, d.fmt))
        if self.axis:
            out.append("\n")
            out.append_text(time_axis(d.t0, d.t1, w, d.now, self.mode))
        return out
