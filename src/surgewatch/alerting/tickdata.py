"""What every rule reads in one tick, computed once and shared: values by glob, scores, causes, forecasts."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..analysis.analyzer import AnalysisResult, HostForecast
from ..analysis.forecast import HORIZON
from ..model import Cause

_CAUSE_CODE = {Cause.CAMPAIGN: 1, Cause.UNEXPLAINED: 2}


class TickData:
    """One tick's inputs for the rules, with lazily computed derived arrays (each at most once per tick)."""

    def __init__(self, n: int, values: np.ndarray, analysis: AnalysisResult | None,
                 stale: np.ndarray | None) -> None:
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
        self._packed: PackedForecasts | None = None

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
            s = np.full(self.n, np.nan)
            if self.analysis is not None:
                m = min(self.n, self.analysis.score.shape[0])
                s[:m] = self.analysis.score[:m]
            self._score = s
        return self._score

    def causes(self) -> np.ndarray:
        """0 = no cause known, 1 = campaign, 2 = unexplained, by row."""
        if self._causes is None:
            c = np.zeros(self.n, dtype=np.int8)
            if self.analysis is not None and self.analysis.cause:
                items = [(r, _CAUSE_CODE.get(cause, 0)) for r, (cause, _c) in self.analysis.cause.items()
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
            out = np.full(self.n, np.nan)
            if self.analysis is not None and self.analysis.forecasts:
                if self._packed is None:  # once per tick, whatever number of levels the rules ask about
                    self._packed = PackedForecasts(self.analysis.forecasts)
                self._packed.seconds_to(level, out)
            self._forecasts[level] = out
        return out


class PackedForecasts:
    """The analysis' per-row forecasts as arrays, so a level is answered for every row in a few vector ops.

    Same answers as HostForecast.seconds_to; single-driver models in closed form, others row by row."""

    def __init__(self, forecasts: Mapping[int, HostForecast]) -> None:
        single = [(row, f) for row, f in forecasts.items() if f.coefs.shape[0] == 1]
        self.multi = [(row, f) for row, f in forecasts.items() if f.coefs.shape[0] != 1] \
            if len(single) != len(forecasts) else []
        k = len(single)
        fs = [f for _row, f in single]
        self.rows = np.fromiter((row for row, _f in single), dtype=np.intp, count=k)
        self.intercept = np.fromiter((f.intercept for f in fs), dtype=np.float64, count=k)
        self.value_now = np.fromiter((f.value_now for f in fs), dtype=np.float64, count=k)
        self.usable = np.fromiter((f.usable for f in fs), dtype=bool, count=k)
        if k:
            self.contrib = np.concatenate([f.coefs for f in fs]) * np.concatenate([f.x_now for f in fs])
            self.growth = np.concatenate([f.growth for f in fs]).astype(np.float64)
        else:
            self.contrib = self.growth = np.zeros(0)

    def seconds_to(self, level: float, out: np.ndarray) -> None:
        """Write the seconds to `level` into out[row] for every row with a forecast (rows < len(out))."""
        n = out.shape[0]
        keep = self.rows < n
        c, g, b = self.contrib, self.growth, self.intercept
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            t = np.log((level - b) / c) / g
            t = np.where(t <= HORIZON, t, math.inf)
            t = np.where((g > 0) & (c > 0), t, math.inf)
            t = np.where(b + c >= level, 0.0, t)
            t = np.where(np.isnan(c) | np.isnan(g), math.nan, t)
            t = np.where(self.usable, t, math.nan)
            t = np.where(self.value_now >= level, 0.0, t)
        out[self.rows[keep]] = t[keep]
        for row, f in self.multi:
            if row < n:
                out[row] = f.seconds_to(level)
