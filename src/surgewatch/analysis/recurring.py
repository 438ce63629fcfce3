"""Recurring load: bursts that come back on their own period (cron every 5/15/60 min, nightly, weekly) are normal.

Every host row's *bursts* are tracked whatever the detector scores: a burst starts when the value leaves its
expected value upwards by at least the practical floor and 3 sigmas, and ends when it falls back below half
the floor or 1.5 sigmas. Only burst starts cost Python work (rare); the per-tick part is a few vector
operations. At a burst start at time t the row's earlier starts (kept for up to 22 days, at most 512) are
searched for a period P with starts of a similar size (within a factor `larger`) near t - P, t - 2P and t - 3P
(within 1 % of P or 1.5 ticks): a burst that has come three times before on the same schedule is `recurring`
("recurring every 15m, as at 10:15 and 10:30", the last two). Three, not two, and of a similar size: on a busy
host (a 15-minute job and an hourly one) looser rules find coincidences. A burst on such a schedule but more
than `larger` times the size of the earlier runs is not recurring: it stays an anomaly ("..., but 2.4x its
usual size"). Periods from `min_period` up to a
week; the shortest matching period wins. Per-row state is an array plus a dict keyed by row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..units import format_duration
from .rowstats import median_of

KEEP_SECONDS = 22 * 86400.0  # a weekly job needs its last three runs
MAX_STARTS = 512


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A burst that recurs: its period, the two earlier starts on schedule and their usual size."""

    period: float
    earlier: tuple[float, float]  # the start 2 periods ago, 1 period ago
    usual: float  # the larger size of those two bursts
    size: float  # this burst's size
    ordinary: bool  # False: far larger than usual, so still an anomaly

    def text(self) -> str:
        """The explanation in words."""
        at = " and ".join(_clock(t, self.period) for t in self.earlier)
        head = f"recurring every {_period_text(self.period)}, as at {at}"
        return head if self.ordinary else f"{head}, but {self.size / max(self.usual, 1e-12):.1f}x its usual size"


def _period_text(p: float) -> str:
    for unit, name in ((7 * 86400, "w"), (86400, "d"), (3600, "h"), (60, "m")):
        if p >= 0.98 * unit and abs(p / unit - round(p / unit)) * unit <= max(0.02 * p, 1.0):
            return f"{round(p / unit)}{name}"
    return format_duration(p)


def _clock(ts: float, period: float) -> str:
    t = time.localtime(ts)
    if period >= 0.98 * 86400:
        return time.strftime("%a %H:%M", t)
    return time.strftime("%H:%M:%S" if period < 300 else "%H:%M", t)


class RecurringBursts:
    """Burst starts per row and the recurrence verdict of each row's current burst."""

    def __init__(self, tick: float, min_period: float = 60.0, larger: float = 2.0, repeats: int = 3) -> None:
        self.tick = tick
        self.repeats = max(2, repeats)
        self.min_period = max(min_period, 3 * tick)
        self.larger = larger
        self.active = np.zeros(0, dtype=bool)  # inside a burst
        self.size = np.zeros(0)  # the size a burst (re)started with
        self.starts: dict[int, list[tuple[float, float]]] = {}  # row -> [(ts, size)], oldest first
        self.verdict: dict[int, Recurrence | None] = {}  # row -> verdict of its current burst

    def forget_rows(self, rows: np.ndarray) -> None:
        """Forget rows: evicted series, whose rows a new series may take (it starts with no bursts)."""
        self.active[rows[rows < self.active.shape[0]]] = False
        self.size[rows[rows < self.size.shape[0]]] = 0.0
        for r in rows.tolist():
            self.starts.pop(r, None)
            self.verdict.pop(r, None)

    def step(self, ts: float, size: np.ndarray, z: np.ndarray, floor: np.ndarray, watch: np.ndarray) -> None:
        """Advance every row one tick: `size` in floor units, `z` in sigmas, only rows where `watch`."""
        rows = size.shape[0]
        if rows > self.active.shape[0]:
            extra = rows - self.active.shape[0]
            self.active = np.concatenate([self.active, np.zeros(extra, dtype=bool)])
            self.size = np.concatenate([self.size, np.zeros(extra)])
        active = self.active[:rows]
        with np.errstate(invalid="ignore"):
            up = watch & (size >= floor) & (z >= 3.0)
            down = ~watch | ~(size >= 0.5 * floor) | ~(z >= 1.5)
            # a burst that grows far beyond the size it started with is a new one on top (an hourly job
            # starting during a 15-minute one, an incident during a cron run): judged on its own schedule
            grown = active & up & (size > self.larger * self.size[:rows])
        gone = active & down & np.isfinite(size)
        begin = (up & ~active) | grown
        if gone.any():
            for r in np.flatnonzero(gone).tolist():
                self.verdict.pop(r, None)
            active[gone] = False
        if begin.any():
            active[begin] = True
            self.size[:rows][begin] = size[begin]
            for r in np.flatnonzero(begin).tolist():
                self.verdict[r] = self._start(r, ts, float(size[r]))

    def _start(self, row: int, ts: float, size: float) -> Recurrence | None:
        log = self.starts.setdefault(row, [])
        while log and (ts - log[0][0] > KEEP_SECONDS or len(log) >= MAX_STARTS):
            log.pop(0)
        found = None
        if len(log) >= self.repeats:
            times = np.array([t for t, _ in log])
            sizes = np.array([s for _, s in log])
            like = (sizes * self.larger >= size) & (sizes <= size * self.larger)  # bursts of this size
            found = self._match(ts, times, sizes, like, size, True)
            if found is None:  # the same schedule, but every earlier run far smaller: still an anomaly
                found = self._match(ts, times, sizes, sizes * self.larger < size, size, False)
        log.append((ts, size))
        return found

    def _match(self, ts: float, times: np.ndarray, sizes: np.ndarray, usable: np.ndarray, size: float,
               ordinary: bool) -> Recurrence | None:
        """The shortest period P with usable earlier starts near ts - P, ts - 2P, ..., ts - repeats·P."""
        t_ok, s_ok = times[usable], sizes[usable]
        if t_ok.shape[0] < self.repeats:
            return None
        for j in range(t_ok.shape[0] - 1, -1, -1):  # nearest earlier start first: the shortest period
            period = ts - float(t_ok[j])
            if period < self.min_period:
                continue
            if period > 7 * 86400 + 3600:
                break
            tol = max(0.01 * period, 1.5 * self.tick)
            hits = [int(np.argmin(np.abs(t_ok - (ts - m * period)))) for m in range(2, self.repeats + 1)]
            if all(abs(t_ok[k] - (ts - m * period)) <= tol for m, k in enumerate(hits, start=2)):
                matched = s_ok[[j, *hits]]
                if not ordinary and matched.max() > self.larger * matched.min():
                    continue  # a far larger burst needs a consistent schedule of smaller ones behind it
                return Recurrence(period, (float(t_ok[hits[0]]), float(t_ok[j])), float(median_of(matched)), size,
                                  ordinary)
        return None
