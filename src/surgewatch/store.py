"""Numpy ring buffers: one row per series, one column per tick, plus a coarse tier for long history.

Each ring is allocated twice as wide as its capacity and every column is written twice (at `i` and
`i + capacity`), so any window of up to `capacity` columns is a contiguous, zero-copy view.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


class Ring:
    """A fixed-capacity ring of columns (ticks) × rows (series), readable as zero-copy windows."""

    def __init__(self, capacity: int, rows: int = 16) -> None:
        self.capacity = max(2, int(capacity))
        self.data = np.full((rows, 2 * self.capacity), np.nan)
        self.ts = np.full(2 * self.capacity, np.nan)
        self.count = 0  # columns ever appended

    @property
    def rows(self) -> int:
        return self.data.shape[0]

    def grow(self, rows: int) -> None:
        """Make room for at least `rows` series (doubling, new rows empty)."""
        if rows <= self.rows:
            return
        new = max(rows, 2 * self.rows)
        data = np.full((new, 2 * self.capacity), np.nan)
        data[: self.rows] = self.data
        self.data = data

    def append(self, ts: float, column: np.ndarray) -> None:
        """Append one column; `column` has one value per row in use (NaN where nothing arrived)."""
        n = column.shape[0]
        if n > self.rows:
            self.grow(n)
        i = self.count % self.capacity
        j = i + self.capacity
        self.data[:n, i] = column
        self.data[:n, j] = column
        if n < self.rows:
            self.data[n:, i] = np.nan
            self.data[n:, j] = np.nan
        self.ts[i] = self.ts[j] = ts
        self.count += 1

    def window(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The last n columns (fewer if not yet filled) as views: (ts[n], data[rows, n])."""
        n = max(0, min(n, self.count, self.capacity))
        end = self.count % self.capacity + self.capacity if self.count >= self.capacity else self.count
        start = end - n
        return self.ts[start:end], self.data[:, start:end]


@dataclass(frozen=True, slots=True)
class Window:
    """A read-only window over some series: timestamps, values [series, time] and the series names."""

    ts: np.ndarray
    values: np.ndarray
    names: Sequence[str]

    def row(self, name: str) -> np.ndarray:
        return self.values[list(self.names).index(name)]


class SeriesStore:
    """All series in memory: a fine ring at tick resolution and a coarse ring of per-step means."""

    def __init__(self, tick: float, history: float, fine_span: float = 3600.0, coarse_step: float = 60.0) -> None:
        self.tick = tick
        self.history = history
        fine_span = min(fine_span, history)
        self.fine = Ring(int(np.ceil(fine_span / tick)) + 1)
        self.coarse_step = max(coarse_step, tick)
        self.coarse = Ring(int(np.ceil(history / self.coarse_step)) + 1)
        self._per_coarse = max(1, round(self.coarse_step / tick))
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self.last_value = np.full(16, np.nan)
        self.last_ts = np.full(16, np.nan)
        self.version = 0  # bumps when a series is added, so cached glob matches can be refreshed

    def __len__(self) -> int:
        return len(self.names)

    def row(self, name: str) -> int:
        """The row of a series, adding it on first sight."""
        r = self.index.get(name)
        if r is None:
            r = len(self.names)
            self.index[name] = r
            self.names.append(name)
            if r >= self.last_value.shape[0]:
                grow = max(r + 1, 2 * self.last_value.shape[0])
                self.last_value = np.concatenate([self.last_value, np.full(grow - self.last_value.shape[0], np.nan)])
                self.last_ts = np.concatenate([self.last_ts, np.full(grow - self.last_ts.shape[0], np.nan)])
            self.version += 1
        return r

    def rows(self, names: Iterable[str]) -> np.ndarray:
        return np.fromiter((self.row(n) for n in names), dtype=np.intp)

    def append(self, ts: float, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Append one tick: `values[k]` for series `rows[k]`, NaN for every other series. Returns the column."""
        column = np.full(len(self.names), np.nan)
        column[rows] = values
        self.fine.append(ts, column)
        valid = ~np.isnan(column)
        n = column.shape[0]
        self.last_value[:n][valid] = column[valid]
        self.last_ts[:n][valid] = ts
        if self.fine.count % self._per_coarse == 0:
            _, block = self.fine.window(self._per_coarse)
            with np.errstate(invalid="ignore"):
                counts = np.sum(~np.isnan(block[:n]), axis=1)
                sums = np.nansum(block[:n], axis=1)
                means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
            self.coarse.append(ts, means)
        return column

    def backfill(self, ts: Sequence[float], values: dict[str, Sequence[float]]) -> None:
        """Append past ticks in order (used before live polling starts, e.g. the demo's history)."""
        rows = self.rows(values.keys())
        matrix = np.array([list(v) for v in values.values()], dtype=np.float64)
        for k, t in enumerate(ts):
            self.append(float(t), rows, matrix[:, k])

    def window(self, seconds: float | None = None, names: Sequence[str] | None = None) -> Window:
        """The last `seconds` of history (None: everything) from the finest tier that covers it.

        Without `names`, values are a zero-copy view of all series; with `names`, a copy of those rows.
        """
        ring = self.fine
        if seconds is None or seconds > self.fine.capacity * self.tick:
            if self.coarse.count > 0 and (seconds is None or self.fine.count * self.tick >= seconds):
                ring = self.coarse
            n = ring.capacity if seconds is None else int(np.ceil(seconds / self.coarse_step))
        else:
            n = int(np.ceil(seconds / self.tick))
        ts, data = ring.window(n)
        if names is None:
            return Window(ts, data[: len(self.names)], self.names)
        rows = [self.index[n] for n in names if n in self.index]
        return Window(ts, data[rows], [n for n in names if n in self.index])

    def last_n(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The last n fine ticks of every series as zero-copy views (ts, values[series, n])."""
        ts, data = self.fine.window(n)
        return ts, data[: len(self.names)]

    def latest(self, name: str) -> float:
        """The last non-missing value of a series (NaN if none yet)."""
        r = self.index.get(name)
        return float("nan") if r is None else float(self.last_value[r])

    @property
    def ticks(self) -> int:
        return self.fine.count
