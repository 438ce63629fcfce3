"""The detector's expected band per series as this session saw it, kept only for series a screen can draw.

The engine gives the band of the latest tick only; charts draw it over time, so the dashboard keeps its own
history. Keeping it for every series doubled the dashboard's memory at fleet scale (two rings as large as the
store's: ~230 MB at 1,000 hosts × 10 metrics), so beyond `every_below` series only the series screens ask for
are kept (the most recently asked `slots`), each from the tick it was first asked for on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..store import Ring

EVERY_BELOW = 1024  # series: below this every band is kept from the first tick (~24 MB at a 1 h ring)
SLOTS = 128  # series kept beyond that: a host screen's metrics and a wall's panels, with room to spare


class BandHistory:
    """(low, high) rings of the bands of a bounded set of series, looked up by series name."""

    def __init__(self, capacity: int, every_below: int = EVERY_BELOW, slots: int = SLOTS) -> None:
        self.capacity = capacity
        self.every_below = every_below
        self.slots = slots
        self._every = True  # keeping every series (the store is small)
        self._reset()

    def _reset(self) -> None:
        self._low = Ring(self.capacity)
        self._high = Ring(self.capacity)
        self._slot: dict[str, int] = {}  # series name → ring row, least recently asked first

    @property
    def nbytes(self) -> int:
        return int(self._low.data.nbytes + self._high.data.nbytes)

    def record(self, ts: float, low: np.ndarray, high: np.ndarray, names: Sequence[str],
               row_of: Callable[[str], int | None]) -> None:
        """Keep one tick's band (`low`/`high` per store row; `names`: each row's series, "" for a freed row;
        `row_of`: a series' row, None when it is not held)."""
        every = len(names) < self.every_below
        if self._every and not every:
            self._reset()  # the store grew past the limit: from now on only what screens ask for
        self._every = every
        if every:
            for name in names:
                if name and name not in self._slot:
                    self._use(name)
        if not self._slot:
            return
        rows = np.full(max(self._slot.values()) + 1, -1, dtype=np.intp)
        for name, slot in self._slot.items():
            row = row_of(name)
            rows[slot] = -1 if row is None else row
        ok = (rows >= 0) & (rows < min(low.shape[0], high.shape[0]))
        safe = np.where(ok, rows, 0)
        self._low.append(ts, np.where(ok, low[safe], np.nan) if low.size else rows * np.nan)
        self._high.append(ts, np.where(ok, high[safe], np.nan) if high.size else rows * np.nan)

    def band(self, name: str, t0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(ts, low, high) of `name` since `t0`; asking starts keeping it (None until a tick has been kept)."""
        slot = self._use(name)
        n = min(self._low.count, self._low.capacity)
        if n == 0 or slot >= self._low.rows:
            return None
        ts, low = self._low.window(n)
        _, high = self._high.window(n)
        keep = ts >= t0
        return ts[keep], low[slot][keep], high[slot][keep]

    def _use(self, name: str) -> int:
        """`name`'s ring row, marked most recently asked; a new name takes a free row, or the least recently
        asked series' row (its history forgotten) when the limit is reached."""
        slot = self._slot.pop(name, None)
        if slot is None:
            limit = self.every_below if self._every else self.slots
            if len(self._slot) < limit:
                slot = len(self._slot)
            else:
                slot = self._slot.pop(next(iter(self._slot)))
                self._low.clear_rows(np.array([slot]))
                self._high.clear_rows(np.array([slot]))
        self._slot[name] = slot
        return slot
