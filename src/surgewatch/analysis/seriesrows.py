"""Each store row's series name split once, kept in step with the names as series come and go.

A fleet with churn gains or loses a host every few ticks. What analysis derives from the names (each row's parts,
which rows are hosts, the significance table, then the analyzer's topology and the group layout) is updated for
the rows whose names changed instead of being rebuilt from ten thousand names: `sync` finds those rows by comparing
the names with the last ones it saw, and `changes_since` tells each reader what changed since it last looked (a
reader too far behind builds from all names). The analyzer and its group models share one, so the names are split
and the significance table is built once per change. Pure Python and numpy, no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from operator import ne

import numpy as np

from ..model import split_series
from .significance import CORE_METRIC, LOAD, Floors, Significance, metric_kind, physical_range

Parts = tuple[str, str, str]
LOG_SYNCS = 16  # syncs whose changes are kept for readers that have not looked since


@dataclass(frozen=True, slots=True)
class RowChange:
    """A row whose series name changed: a new row (`old` None), a freed one (a new name "") or one taken again."""

    row: int
    old: Parts | None
    new: Parts


class SeriesRows:
    """The names by row, their parts, a host mask and the significance table, updated where names changed."""

    def __init__(self, floors: Floors) -> None:
        self.floors = floors
        self.incremental = True  # off: every change starts from all names (the same results, at more cost)
        self.names: list[str] = []
        self.parts: list[Parts] = []
        self.host = np.zeros(0, dtype=bool)  # the row is a host's series
        self.sig = Significance.build([], floors)
        self.version = 0  # counts syncs that changed a name
        self._since = 0  # the oldest version `changes_since` can answer from
        self._log: deque[tuple[int, list[RowChange]]] = deque(maxlen=LOG_SYNCS)
        self._cores: dict[str, int] = {}  # who -> its cpu.coreN.percent rows
        self._load_rows: dict[str, set[int]] = {}  # who -> its load.* rows (their cores follow the count)
        self._metric: dict[str, tuple[int, tuple[float, float], bool]] = {}

    def sync(self, names: Sequence[str]) -> None:
        """Take the names now; rows whose name differs from the last sync's are the changes."""
        cur = names if isinstance(names, list) else list(names)
        old = self.names
        n, m = len(cur), len(old)
        if n == m and cur == old:
            return
        if not m or n < m or not self.incremental:  # first sight, rows dropped (a store never drops rows)
            self._rebuild(cur)
            return
        changed = list(compress(range(m), map(ne, cur, old)))  # in C: a fleet has ten thousand names
        if len(changed) > n // 4:  # most names changed: from scratch is quicker
            self._rebuild(cur)
            return
        changed.extend(range(m, n))
        self.names = list(cur)
        self.parts.extend(split_series(cur[r]) for r in range(m, n))
        changes = []
        for r in changed:
            new = split_series(cur[r])
            changes.append(RowChange(r, self.parts[r] if r < m else None, new))
            self.parts[r] = new
        self._apply(changes, n, m)
        self.version += 1
        self._log.append((self.version, changes))

    def changes_since(self, version: int) -> list[RowChange] | None:
        """The changes after `version` (a reader's last look), in order; None when they are no longer kept."""
        if version == self.version:
            return []
        if version < self._since or not self._log or version < self._log[0][0] - 1:
            return None
        return [c for v, changes in self._log if v > version for c in changes]

    def _rebuild(self, names: list[str]) -> None:
        self.names = list(names)
        self.parts = [split_series(x) for x in names]
        self.sig = Significance.build(names, self.floors)
        self.host = np.array([p[0] == "host" for p in self.parts], dtype=bool)
        self._cores, self._load_rows = {}, {}
        for r, (_kind, who, metric) in enumerate(self.parts):
            self._count(r, who, metric, 1)
        self.version += 1
        self._since = self.version
        self._log.clear()

    def _info(self, metric: str) -> tuple[int, tuple[float, float], bool]:
        got = self._metric.get(metric)
        if got is None:
            got = self._metric[metric] = (metric_kind(metric), physical_range(metric),
                                          CORE_METRIC.match(metric) is not None)
        return got

    def _count(self, row: int, who: str, metric: str, sign: int) -> bool:
        """Count a row in (sign 1) or out (-1) of its host's cores and load rows; True if the cores changed."""
        kind, _range, core = self._info(metric)
        if kind == LOAD:
            rows = self._load_rows.setdefault(who, set())
            if sign > 0:
                rows.add(row)
            else:
                rows.discard(row)
                if not rows:
                    del self._load_rows[who]
        if core:
            left = self._cores.get(who, 0) + sign
            if left:
                self._cores[who] = left
            else:
                self._cores.pop(who, None)
        return core

    def _apply(self, changes: list[RowChange], n: int, m: int) -> None:
        """The host mask and the significance table for the changed rows (new arrays: results keep theirs)."""
        sig = self.sig
        kind = np.zeros(n, dtype=np.int8)
        cores = np.ones(n, dtype=np.float64)
        lowest, highest = np.zeros(n), np.zeros(n)
        host = np.zeros(n, dtype=bool)
        for a, b in ((kind, sig.kind), (cores, sig.cores), (lowest, sig.lowest), (highest, sig.highest),
                     (host, self.host)):
            a[:m] = b[:m]
        recount: set[int] = set()
        moved: set[str] = set()  # hosts whose core count changed: their load rows follow
        for c in changes:
            if c.old is not None and self._count(c.row, c.old[1], c.old[2], -1):
                moved.add(c.old[1])
            _k, who, metric = c.new
            if self._count(c.row, who, metric, 1):
                moved.add(who)
            k, (lo, hi), _core = self._info(metric)
            kind[c.row], lowest[c.row], highest[c.row] = k, lo, hi
            host[c.row] = c.new[0] == "host"
            recount.add(c.row)
        for who in moved:
            recount.update(self._load_rows.get(who, ()))
        for r in recount:
            cores[r] = max(self._cores.get(self.parts[r][1], 1), 1) if kind[r] == LOAD else 1
        table = np.array([self.floors.points, self.floors.load, self.floors.relative])
        self.sig = Significance(kind, cores, table[kind] if kind.size else np.zeros(0), lowest, highest)
        self.host = host
