"""What every rule reads in one tick, computed once and shared: values by glob, scores, causes, forecasts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis.analyzer import AnalysisResult
from ..model import Cause, CauseCode

if TYPE_CHECKING:
    from ..analysis.preflight import Preflight  # plans arrive only with scheduled campaigns

_CODES = {c: c.code.value for c in Cause}  # plain ints for the array (see CauseCode)


class TickData:
    """One tick's inputs for the rules, with lazily computed derived arrays (each at most once per tick)."""

    def __init__(self, n: int, values: np.ndarray, analysis: AnalysisResult | None,
                 stale: np.ndarray | None, reuse: dict[float, np.ndarray] | None = None) -> None:
        self.n = n
        self.values = values
        gone = np.isnan(values)
        if stale is not None:
            gone |= stale[:n]
        self.gone = gone
        self.analysis = analysis
        self._gathered: dict[str, np.ndarray] = {}
        self._by_glob: dict[tuple[str | float, str], np.ndarray] = {}
        self._score: np.ndarray | None = None
        self._causes: np.ndarray | None = None
        self._forecasts: dict[float, np.ndarray] = {}
        self._reuse = reuse  # forecasts by level from an earlier tick, when the caller deems them fresh enough
        self.now = float("nan")
        self.names: Sequence[str] = ()
        self.preflights: Mapping[str, Sequence[Preflight]] = {}  # by host series: scheduled campaigns' plans

    def preflight(self, level: float, within: float, rows: np.ndarray) -> np.ndarray:
        """Whether a campaign starting within `within` seconds is planned to take each row to `level` or more."""
        out = np.zeros(rows.shape[0], dtype=bool)
        if not self.preflights:
            return out
        for i, r in enumerate(rows.tolist()):
            entries = self.preflights.get(self.names[r]) if r < len(self.names) else None
            if entries:
                out[i] = any(e.peak >= level and 0 < e.start - self.now <= within for e in entries)
        return out

    def preflight_entry(self, level: float, row: int) -> Preflight | None:
        """The soonest scheduled campaign planned to take this row to `level` or more."""
        entries = self.preflights.get(self.names[row]) if row < len(self.names) else None
        due = [e for e in entries or () if e.peak >= level and e.start > self.now]
        return min(due, key=lambda e: e.start) if due else None

    def values_of(self, glob: str, rows: np.ndarray) -> np.ndarray:
        """values[rows], shared by the rules with the same series glob (and so the same rows)."""
        v = self._gathered.get(glob)
        if v is None or v.shape[0] != rows.shape[0]:
            v = self._gathered[glob] = self.values[rows]
        return v

    def gathered(self, what: str | float, glob: str, rows: np.ndarray) -> np.ndarray:
        """score ("score"), cause code ("cause") or seconds to a level (a float) at `rows`, shared by glob."""
        key = (what, glob)
        v = self._by_glob.get(key)
        if v is None or v.shape[0] != rows.shape[0]:
            full = self.score() if what == "score" else self.causes() if what == "cause" else \
                self.forecast(float(what))
            v = self._by_glob[key] = full[rows]
        return v

    def score(self) -> np.ndarray:
        """Anomaly score by row (NaN where unknown), padded to the store's size."""
        if self._score is None:
            a = self.analysis
            if a is not None and a.score.shape[0] >= self.n:
                self._score = a.score[:self.n]  # a view: nothing here writes to it
            else:
                s = np.full(self.n, np.nan)
                if a is not None:
                    m = min(self.n, a.score.shape[0])
                    s[:m] = a.score[:m]
                self._score = s
        return self._score

    def significant(self, rows: np.ndarray, floor: float | None) -> np.ndarray:
        """Whether each row's departure from its expected level reaches `floor` (the analysis' per-row
        [monitor] floor when None), in the row's unit; True where analysis gives no size (nothing to judge)."""
        a = self.analysis
        if a is None or a.size.shape[0] == 0:
            return np.ones(rows.shape[0], dtype=bool)
        m = a.size.shape[0]
        inside = rows < m
        r = np.where(inside, rows, 0)
        size = np.abs(a.size[r])
        lim = a.floor[r] if floor is None else np.full(rows.shape[0], floor)
        with np.errstate(invalid="ignore"):
            ok = (size >= lim) | (lim <= 0)
        return np.where(inside, ok, True)

    def causes(self) -> np.ndarray:
        """Each row's CauseCode (NONE where no cause is known)."""
        if self._causes is None:
            c = np.full(self.n, CauseCode.NONE.value, dtype=np.int8)
            if self.analysis is not None and self.analysis.cause:
                items = [(r, _CODES[cause]) for r, (cause, _c) in self.analysis.cause.items()
                         if r < self.n]
                if items:
                    rows, codes = zip(*items, strict=True)
                    c[list(rows)] = codes
            self._causes = c
        return self._causes

    def forecast(self, level: float) -> np.ndarray:
        """Seconds until each series reaches `level` per its load model (0 there, inf never, NaN unknown)."""
        out = self._forecasts.get(level)
        if out is None:
            out = self._reuse.get(level) if self._reuse is not None else None
            if out is None or out.shape[0] != self.n:
                out = np.full(self.n, np.nan)
                if self.analysis is not None:
                    rows = forecast_rows(self.analysis)
                    rows = rows[rows < self.n]
                    if rows.shape[0]:
                        out[rows] = self.analysis.seconds_to_level(rows, level)
            self._forecasts[level] = out
        return out

    @property
    def forecasts(self) -> dict[float, np.ndarray]:
        """The forecasts computed this tick, by level."""
        return self._forecasts


def forecast_rows(analysis: AnalysisResult) -> np.ndarray:
    """The store rows the analysis has a forecast for."""
    table: Any = analysis.forecasts
    if not table:
        return np.zeros(0, dtype=np.intp)
    keys = table.pos.keys() if hasattr(table, "pos") else table.keys()
    return np.fromiter(keys, dtype=np.intp)
