"""Numpy ring buffers: one row per series, one column per tick, plus a coarse tier for long history.

Each ring is a twentieth wider than its capacity: columns are written once, left to right, and when the
buffer is full the last `capacity - 1` columns move back to its start (every twentieth of capacity ticks),
so any window of up to `capacity` columns is a contiguous, zero-copy view. Both tiers keep float32 (7
significant digits; at a 15 s tick 10,000 series hold an hour at tick resolution and six hours of per-minute
means in 24 MiB, 35 MiB in float64 with a tenth of slack); the latest value of each series is kept exactly
(float64) beside them.

Rows live in an address-space reservation (an anonymous mapping) about twice the rows in use: the rows
beyond those in use are never written, so they cost no memory, and new series within it take rows without
copying the ring (a fleet whose answers land over several ticks neither doubles its rings nor copies tens
of megabytes at once). Only past the reservation is a larger one mapped and the rows copied.

Once the store holds a fleet (FLEET_ROWS series), glibc's malloc is told to keep mapping large blocks
(`hold_mmap_threshold`): series-sized arrays (the analysis' windows, the detector's state when it grows) then
come and go as mappings, instead of being carved out of the heap, where, once freed, they leave holes the process
keeps (a daemon watching 1,000 hosts for a day held 20-40 MB more without it, see fleet_bench.py --day).
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import mmap
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("surgewatch.store")

DEFAULT_MAX_SERIES = 20_000
SLACK = 0.05  # spare columns per ring, as a fraction of its capacity: memory vs. how often columns move back
GROW_DOUBLING_UNTIL = 1024  # per-row arrays grow by doubling up to here, then by a quarter
VALUES = np.float32  # what both tiers hold (see the module's docstring)
FLEET_ROWS = 2_000  # from this many series on, malloc keeps mapping large blocks (hold_mmap_threshold)
MMAP_THRESHOLD = 128 * 1024  # glibc's initial threshold: blocks this large and larger are mappings
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
TRIM_EVERY_TICKS = 40  # evictions give the heap's free pages back at most this often (trim_heap)
_held = False


def hold_mmap_threshold() -> bool:
    """Fix glibc malloc's mmap threshold at MMAP_THRESHOLD (once per process; False where there is no glibc).

    glibc starts at 128 KiB but raises the threshold to the size of each mapped block freed (up to 32 MiB), so
    a process that frees one series-sized array carves every later one, up to that size, from the heap; freed
    in another order than allocated, they leave holes the heap never gives back. A fixed threshold also stops
    that raising (mallopt(3)). A block of 128 KiB or more then costs a mapping and its page faults (~2 ms for a
    20 MB array), a few per tick at most.
    """
    global _held
    if _held:
        return True
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # only here: a fleet-sized process (the small end never maps it)

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    _held = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))  # 0: not glibc's (musl's does nothing)
    return _held


def trim_heap() -> bool:
    """Give the malloc heap's free pages back to the system (glibc's malloc_trim(0); False where there is none).

    Python's larger objects and numpy's smaller arrays live in the heap; what a fleet's polls and refits free
    leaves holes the heap keeps (6 MB of a 1,000-host daemon's 34 MB heap after an hour of churn, though the
    next refits touch most of it again: 1 MB less heap at the hourly samples of fleet_day.py). Costs about a
    millisecond: the engine calls it after evicting series, at most every TRIM_EVERY_TICKS, once the store holds
    a fleet (where `hold_mmap_threshold` has loaded ctypes)."""
    if not _held:
        return False
    import ctypes

    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):
        return False


def grown_size(current: int, needed: int, limit: int | None = None) -> int:
    """How many rows to allocate for `needed` when `current` are there: doubling while small, then +25 %."""
    step = 2 * current if current < GROW_DOUBLING_UNTIL else current + current // 4
    if limit is not None:
        step = min(step, limit)
    return max(needed, step)


def untouched_zeros(shape: int | tuple[int, ...], dtype: type[np.generic] | np.dtype[Any]) -> np.ndarray:
    """A zero array in a fresh anonymous mapping of small pages: each 4 KiB page costs memory only once written.

    `np.zeros` of 4 MiB or more asks the kernel for transparent huge pages (numpy's madvise): a 2 MiB page is
    resident whole as soon as any byte of it is written, so an array used a little at a time (a daily profile
    visited bin by bin, rows kept spare for series to come) is resident far ahead of its use, spare rows
    included. Here the mapping is marked MADV_NOHUGEPAGE where the system has it. Empty shapes get `np.zeros`."""
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    count = 1
    for d in dims:
        count *= d
    dt = np.dtype(dtype)
    if count == 0:
        return np.zeros(dims, dtype=dt)
    size = count * dt.itemsize
    if hasattr(mmap, "MAP_PRIVATE"):  # POSIX: private (as malloc's), not shared with a forked child
        buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    else:
        buf = mmap.mmap(-1, size)
    no_huge = getattr(mmap, "MADV_NOHUGEPAGE", None)
    if no_huge is not None:
        with contextlib.suppress(OSError):  # a kernel without transparent huge pages: small pages already
            buf.madvise(no_huge)
    return np.frombuffer(buf, dtype=dt, count=count).reshape(dims)


def reserve_rows(rows: int, width: int, dtype: type[np.floating]) -> np.ndarray:
    """A rows × width array in a fresh anonymous mapping: zero pages that cost no memory until written."""
    return untouched_zeros((rows, width), dtype)


class Ring:
    """A fixed-capacity ring of columns (ticks) × rows (series), readable as zero-copy windows.

    `data` is the rows in use (every one written: NaN where nothing arrived); they sit at the start of a larger
    reservation (`reserved` rows) whose other rows are never touched until a new series takes them."""

    def __init__(self, capacity: int, rows: int = 16, dtype: type[np.floating] = VALUES) -> None:
        self.capacity = max(2, int(capacity))
        self.width = self.capacity + max(1, int(self.capacity * SLACK))
        self.max_rows: int | None = None  # growth stops here (the store's max_series)
        self._buf = reserve_rows(max(1, rows), self.width, dtype)
        self.data = self._buf[:rows]
        self.data.fill(np.nan)
        self.ts = np.full(self.width, np.nan)
        self.count = 0  # columns ever appended
        self.end = 0  # the buffer column after the last one written

    @property
    def rows(self) -> int:
        return self.data.shape[0]

    @property
    def reserved(self) -> int:
        """Rows that fit without copying the ring (only those in use are resident)."""
        return self._buf.shape[0]

    def grow(self, rows: int) -> None:
        """Make room for at least `rows` series (new rows empty): within the reservation in place, past it by
        mapping one twice the size (at most max_rows, never fewer than asked) and copying the rows in use."""
        have = self.rows
        if rows <= have:
            return
        if rows > self.reserved:
            size = max(rows, 2 * rows if self.max_rows is None else min(2 * rows, self.max_rows))
            buf = reserve_rows(size, self.width, self._buf.dtype.type)
            buf[:have] = self.data
            self._buf = buf
        self.data = self._buf[:rows]
        self.data[have:] = np.nan

    def append(self, ts: float, column: np.ndarray) -> None:
        """Append one column; `column` has one value per row in use (NaN where nothing arrived)."""
        n = column.shape[0]
        if n > self.rows:
            self.grow(n)
        if self.end == self.width:  # full: the newest capacity - 1 columns move to the start
            keep = self.capacity - 1
            shift = self.end - keep
            for a in range(0, keep, shift):  # in pieces that do not overlap: numpy would copy overlapping ones
                b = min(a + shift, keep)
                self.data[:, a:b] = self.data[:, a + shift:b + shift]
            self.ts[:keep] = self.ts[shift:self.end]
            self.end = keep
        j = self.end
        self.data[:n, j] = column
        if n < self.rows:
            self.data[n:, j] = np.nan
        self.ts[j] = ts
        self.end += 1
        self.count += 1

    def clear_rows(self, rows: np.ndarray) -> None:
        """Forget every column of some rows (they are free for another series)."""
        rows = rows[rows < self.rows]
        self.data[rows] = np.nan

    def last_ts(self) -> float:
        """The timestamp of the last column appended (NaN before the first)."""
        return float(self.ts[self.end - 1]) if self.count else float("nan")

    def shift_ts(self, delta: float) -> None:
        """Move every stored timestamp by `delta` seconds (the wall clock was stepped; see clock.py)."""
        self.ts += delta

    def window(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The last n columns (fewer if not yet filled) as views: (ts[n], data[rows, n])."""
        n = max(0, min(n, self.count, self.capacity))
        return self.ts[self.end - n:self.end], self.data[:, self.end - n:self.end]


@dataclass(frozen=True, slots=True)
class Window:
    """A read-only window over some series: timestamps, values [series, time] and the series names."""

    ts: np.ndarray
    values: np.ndarray
    names: Sequence[str]

    def row(self, name: str) -> np.ndarray:
        return self.values[list(self.names).index(name)]


class SeriesStore:
    """All series in memory: a fine ring at tick resolution and a coarse ring of per-step means.

    Memory stays bounded under series churn: `evict_idle` frees the rows of series not seen for a while
    (their name becomes "" and a later new series reuses the row), and at most `max_series` rows exist;
    a new series beyond that is dropped (`rows()` gives -1 for it) with one warning.
    """

    def __init__(self, tick: float, history: float, fine_span: float = 3600.0, coarse_step: float = 60.0,
                 max_series: int = DEFAULT_MAX_SERIES) -> None:
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
        self.version = 0  # bumps when a series is added or evicted, so cached glob matches can be refreshed
        self.max_series = DEFAULT_MAX_SERIES
        self.set_max_series(max_series)
        self.seen_tick = np.zeros(16, dtype=np.int64)  # fine.count when each row last arrived in a tick
        self.dropped = 0  # new series refused because max_series rows were in use
        self._free: list[int] = []  # rows of evicted series, reused lowest first
        self.reused: list[int] = []  # freed rows taken by new series (the engine resets analysis state on them)
        self._warned_back = False

    def __len__(self) -> int:
        """Rows in use or free (the length of every per-row array); `live` counts the series."""
        return len(self.names)

    @property
    def live(self) -> int:
        return len(self.index)

    def row(self, name: str) -> int:
        """The row of a series, adding it on first sight (reusing a freed row); -1 when max_series is reached."""
        r = self.index.get(name)
        if r is None:
            if self._free:
                r = heapq.heappop(self._free)
                self.names[r] = name
                self.reused.append(r)
            elif len(self.names) >= self.max_series:
                if not self.dropped:
                    log.warning("store: %d series held, the max_series cap; new series are dropped until "
                                "idle ones are evicted (raise [monitor] max_series to keep more)", self.max_series)
                self.dropped += 1
                return -1
            else:
                r = len(self.names)
                self.names.append(name)
                if r == FLEET_ROWS:
                    hold_mmap_threshold()
                if r >= self.last_value.shape[0]:
                    grow = grown_size(self.last_value.shape[0], r + 1, self.max_series)
                    self.last_value = _grown(self.last_value, grow, np.nan)
                    self.last_ts = _grown(self.last_ts, grow, np.nan)
                    self.seen_tick = _grown(self.seen_tick, grow, 0)
            self.index[name] = r
            self.seen_tick[r] = self.fine.count
            self.version += 1
        return r

    def set_max_series(self, max_series: int) -> None:
        """Change the cap (a reloaded config); held series stay, a new refusal warns again."""
        self.max_series = max(1, int(max_series))
        self.fine.max_rows = self.coarse.max_rows = self.max_series
        self.dropped = 0

    def rows(self, names: Iterable[str]) -> np.ndarray:
        """The row of each name (added on first sight); -1 for a new series refused by the cap."""
        names = names if isinstance(names, list) else list(names)
        get = self.index.get
        rows = np.array([get(n, -1) for n in names], dtype=np.intp)  # known series: one dict lookup each
        for k in np.flatnonzero(rows < 0).tolist():
            rows[k] = self.row(names[k])
        return rows

    def evict_idle(self, max_idle_ticks: int | np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Free the rows of series that arrived in none of the last `max_idle_ticks` ticks (one, or per row).

        Ticks, not seconds: a wall-clock step or a suspend does not make every series look idle at once.
        Returns the freed rows and their names (callers forget per-row state with them)."""
        n = len(self.names)
        idle = np.flatnonzero((self.fine.count - self.seen_tick[:n]) > max_idle_ticks)
        if not idle.shape[0]:
            return idle, []
        names = [self.names[r] for r in idle.tolist()]
        keep = [k for k, name in enumerate(names) if name]
        if not keep:
            return idle[:0], []
        rows = idle[keep]
        names = [names[k] for k in keep]
        for r, name in zip(rows.tolist(), names, strict=True):
            del self.index[name]
            self.names[r] = ""
            heapq.heappush(self._free, r)
        self.fine.clear_rows(rows)
        self.coarse.clear_rows(rows)
        self.last_value[rows] = np.nan
        self.last_ts[rows] = np.nan
        self.version += 1
        return rows, names

    def shift_time(self, delta: float) -> None:
        """Move every held timestamp by `delta` seconds, so ages stay right across a wall-clock step."""
        self.fine.shift_ts(delta)
        self.coarse.shift_ts(delta)
        self.last_ts += delta

    def append(self, ts: float, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Append one tick: `values[k]` for series `rows[k]`, NaN for every other series. Returns the column.

        A timestamp before the previous tick's is clamped to it (the ring's time axis never goes back)."""
        prev = self.fine.last_ts()
        if ts < prev:
            if not self._warned_back:
                log.warning("store: a tick's time went back by %.3gs; such ticks are stored at the previous "
                            "tick's time (warned once)", prev - ts)
                self._warned_back = True
            ts = prev
        if rows.shape[0] and rows.min() < 0:  # series refused by the cap
            keep = rows >= 0
            rows, values = rows[keep], values[keep]
        column = np.full(len(self.names), np.nan)
        column[rows] = values
        self.seen_tick[rows] = self.fine.count + 1
        self.fine.append(ts, column)
        valid = ~np.isnan(column)
        n = column.shape[0]
        self.last_value[:n][valid] = column[valid]
        self.last_ts[:n][valid] = ts
        if self.fine.count % self._per_coarse == 0:
            _, block = self.fine.window(self._per_coarse)
            self.coarse.append(ts, _means(block[:n]))
        return column

    def backfill(self, ts: Sequence[float], values: Mapping[str, Sequence[float] | np.ndarray]) -> None:
        """Append past ticks in order (used before live polling starts, e.g. the demo's history)."""
        rows = self.rows(values.keys())
        matrix = np.array([np.asarray(v, dtype=np.float64) for v in values.values()], dtype=np.float64)
        if self._fill_empty(np.asarray(ts, dtype=np.float64), rows, matrix):
            return
        for k, t in enumerate(ts):
            self.append(float(t), rows, matrix[:, k])

    def _fill_empty(self, ts: np.ndarray, rows: np.ndarray, matrix: np.ndarray) -> bool:
        """`backfill` into an empty store in one go (what appending column by column gives, at a dashboard's
        start-up without a thousand appends); False, doing nothing, where that is not the simple case."""
        fine, n = self.fine, ts.shape[0]
        if fine.count or not 0 < n <= fine.capacity or not rows.shape[0] or rows.min() < 0 \
                or matrix.shape != (rows.shape[0], n) or (np.diff(ts) < 0).any():
            return False
        size = len(self.names)
        block = np.full((size, n), np.nan)
        block[rows] = matrix
        fine.grow(size)
        fine.data[:size, :n] = block  # an empty ring is written from its first column (see Ring.append)
        held = fine.data[:size, :n]  # the coarse means are of what the fine tier holds, as append takes them
        fine.ts[:n] = ts
        fine.count = fine.end = n
        self.seen_tick[rows] = n
        valid = ~np.isnan(block)
        last = n - 1 - np.argmax(valid[:, ::-1], axis=1)
        seen = valid.any(axis=1)
        self.last_value[:size][seen] = block[seen, last[seen]]
        self.last_ts[:size][seen] = ts[last[seen]]
        per = self._per_coarse
        for end in range(per, n + 1, per):  # a coarse column per `per` fine ones, as append makes them
            self.coarse.append(float(ts[end - 1]), _means(held[:, end - per:end]))
        return True

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


def _means(block: np.ndarray) -> np.ndarray:
    """Each row's mean over its non-missing values (NaN where none), summed in float64."""
    with np.errstate(invalid="ignore"):
        counts = np.sum(~np.isnan(block), axis=1)
        sums = np.nansum(block, axis=1, dtype=np.float64)
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _grown(a: np.ndarray, size: int, fill: float) -> np.ndarray:
    return np.concatenate([a, np.full(size - a.shape[0], fill, dtype=a.dtype)])
