"""Which source reports each store row, and what follows from it per row: when the row is stale, after how many
idle ticks it is evicted, and which hosts the rows belong to. Kept in step with the store's names.

A fleet with churn gains or loses a host every few ticks, and the store then holds ten thousand names. Rebuilding
these per-row arrays and the host list from all names at every change cost a fleet tick ~10 ms; `update` instead
finds the rows whose names changed since it last looked (compared in C), and recomputes those rows only (and rows
whose source was not known yet). What the sources report is looked at the same way: only names a source reports
that the map does not hold yet are added. `reset()` (a reload: new sources, new intervals, a new evict_after)
makes the next update start from all names. The results are the same as a rebuild from all names, which tests
compare tick by tick. Pure Python and numpy, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from operator import ne
from typing import Protocol

import numpy as np

from .model import split_series

EVICT_INTERVALS = 10  # without [monitor] evict_after, a series unseen for 10 of its intervals is forgotten


class SourceHealth(Protocol):
    """What this module reads of a source's health (collector.SourceHealth)."""

    name: str
    interval: float
    series: set[str]


@dataclass(frozen=True, slots=True)
class Timing:
    """The engine's tick and eviction settings the per-row values follow from."""

    tick_seconds: float
    evict_after: float | None  # [monitor] evict_after (seconds), None: EVICT_INTERVALS of the row's period


class RowSources:
    """Per store row: its source (index into the health mapping, -1 unknown), stale-after seconds and eviction
    ticks; per name: its source's name; per host: how many rows it has and one of them."""

    def __init__(self) -> None:
        self.series_source: dict[str, str] = {}
        self.row_source = np.zeros(0, dtype=np.intp)
        self.stale_after = np.zeros(0)
        self.evict_ticks = np.zeros(0, dtype=np.int64)
        self.version = 0  # counts updates that changed anything above
        self._names: list[str] = []
        self._seen = (-1, -1)  # (store version, series the sources report) at the last update
        self._layout: tuple[object, ...] | None = None  # sources, their intervals and the timing last used
        self._host_rows: dict[str, int] = {}  # host -> rows held
        self._host_row: dict[str, int] = {}  # host -> one of its rows

    def reset(self) -> None:
        """Start from all names at the next update (new sources or timing: every row's values may change)."""
        self.series_source = {}
        self._seen = (-1, -1)
        self._layout = None

    def forget(self, names: Sequence[str]) -> None:
        """Evicted series: no longer in the name → source map (their rows change name at the next update)."""
        for name in names:
            self.series_source.pop(name, None)

    def update(self, names: Sequence[str], store_version: int, health: Mapping[str, SourceHealth],
               timing: Timing) -> bool:
        """Bring everything up to the store's names and the sources' series; True if anything changed."""
        seen = (store_version, sum(len(h.series) for h in health.values()))
        layout = (tuple(health), tuple(h.interval for h in health.values()), timing)
        if seen == self._seen and layout == self._layout:
            return False
        known = self.series_source
        for h in health.values():  # names first reported now (the last source in order to report one has it)
            for s in h.series - known.keys() if known else h.series:
                known[s] = h.name
        cur = names if isinstance(names, list) else list(names)
        old, n, m = self._names, len(cur), len(self._names)
        full = layout != self._layout or n < m
        self._layout, self._seen, self._names = layout, seen, list(cur)
        if full:
            self._grow(n, 0)
            self._host_rows, self._host_row = {}, {}
            self._set_rows(list(range(n)), cur, health, timing)
            self._count_hosts([], range(n), cur, old)
            self.version += 1
            return True
        changed = list(compress(range(m), map(ne, cur, old)))  # in C: a fleet holds ten thousand names
        unknown = np.flatnonzero(self.row_source[:m] < 0).tolist()  # rows whose source was not known yet
        if not changed and not unknown and n == m:
            return False
        self._grow(n, m)
        self._set_rows(sorted({*changed, *unknown}) + list(range(m, n)), cur, health, timing)
        self._count_hosts(changed, [*changed, *range(m, n)], cur, old)
        self.version += 1
        return True

    def hosts(self) -> Mapping[str, int]:
        """Each host the rows hold, with one of its rows."""
        return self._host_row

    def _grow(self, n: int, keep: int) -> None:
        for attr, fill in (("row_source", -1), ("stale_after", 0.0), ("evict_ticks", 0)):
            arr = getattr(self, attr)
            if keep == n == arr.shape[0]:
                continue
            out = np.full(n, fill, dtype=arr.dtype)
            out[:keep] = arr[:keep]
            setattr(self, attr, out)

    def _set_rows(self, rows: list[int], names: list[str], health: Mapping[str, SourceHealth],
                  timing: Timing) -> None:
        """Each row's source, stale-after and eviction ticks (what a rebuild from all names gives them)."""
        if not rows:
            return
        tick, evict_after = timing.tick_seconds, timing.evict_after
        position = {name: k for k, name in enumerate(health)}
        get = self.series_source.get
        srcs = [get(names[r]) for r in rows]
        period = np.array([max(health[s].interval, tick) if s is not None else tick for s in srcs], dtype=np.float64)
        stale = 3 * period + 1.0
        idle = np.full(len(rows), evict_after) if evict_after else EVICT_INTERVALS * period
        idle = np.maximum(idle, stale + tick)  # never before a series is stale
        at = np.array(rows, dtype=np.intp)
        self.stale_after[at] = stale
        self.row_source[at] = [position[s] if s is not None else -1 for s in srcs]
        self.evict_ticks[at] = np.ceil(idle / tick).astype(np.int64)

    def _count_hosts(self, left: Sequence[int], came: Sequence[int] | range, names: list[str],
                     old: list[str]) -> None:
        """Hosts' row counts: `left` rows lost their old name's host, `came` rows hold their new name's host."""
        counts, one = self._host_rows, self._host_row
        orphans: set[str] = set()
        for r in left:  # old names may be evicted ones: split here, not through split_series' cache
            kind, _, rest = old[r].partition(":")
            if kind != "host":
                continue
            who = rest.partition("/")[0]
            c = counts[who] - 1
            if c:
                counts[who] = c
                if one.get(who) == r:
                    del one[who]
                    orphans.add(who)
            else:
                del counts[who]
                one.pop(who, None)
        for r in came:
            kind, who, _metric = split_series(names[r])
            if kind != "host":
                continue
            counts[who] = counts.get(who, 0) + 1
            if who not in one:
                one[who] = r
        orphans.difference_update(one)
        if orphans:  # a host lost the row kept for it but still has others (rare): find one
            for r, name in enumerate(names):
                kind, who, _metric = split_series(name)
                if who in orphans and kind == "host":
                    one[who] = r
                    orphans.discard(who)
                    if not orphans:
                        break
