"""Streaming anomaly detectors, vectorised across series: one `update()` advances every series one tick.

Every detector returns a DetectorOutput: per-series arrays of a calibrated score in [0, 1] (rules fire at a
threshold), the signed deviation `z` in robust sigmas (for explanations), and the expected value with its band.
Detectors are causal: the value at a tick is judged only against what came before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .rowstats import distinct

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class DetectorOutput:
    """One tick's verdict for every series (NaN where a series has too little history or no value)."""

    score: np.ndarray
    z: np.ndarray
    expected: np.ndarray
    low: np.ndarray
    high: np.ndarray


def track_quantile(q: np.ndarray, exceed: np.ndarray, up: float, down: float) -> None:
    """A running high quantile's multiplicative step, in place: `q` times `up` where `exceed`, `down` elsewhere.

    Exceedances are rare (the quantile is high), so they are raised by index after one product over all. A
    detector's [stat, series] state is a view of the rows in use of a wider buffer: each row is contiguous,
    not the whole, and is raised the same way (in the quantile's dtype, as the contiguous case).
    """
    if q.flags.c_contiguous and exceed.flags.c_contiguous:
        hit = np.flatnonzero(exceed)
        flat = q.reshape(-1)  # a view of a contiguous array
        raised = flat[hit] * up
        q *= down
        flat[hit] = raised
    elif q.ndim == 2 and q.strides[1] == q.itemsize and exceed.flags.c_contiguous:
        at = np.nonzero(exceed)
        raised = q[at] * up
        q *= down
        q[at] = raised
    else:
        q *= np.where(exceed, up, down)


class StreamingDetector(Protocol):
    """A detector that sees one value per series per tick; rows may be added between ticks."""

    name: str

    def update(self, values: np.ndarray) -> DetectorOutput:
        """Judge this tick's values (NaN = no sample) against the past, then learn from them."""
        ...


def z_to_score(z: np.ndarray, onset: float = 3.0, scale: float = 2.5) -> np.ndarray:
    """Map |z| to [0, 1]: 0 up to `onset` sigmas, then 1 - exp(-(|z| - onset) / scale)."""
    with np.errstate(invalid="ignore"):
        excess = np.maximum(np.abs(z) - onset, 0.0)
        return np.where(np.isnan(z), np.nan, 1.0 - np.exp(-excess / scale))


def _row_median(sorted_rows: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Median of each row of an ascending-sorted array whose first n[i] entries are valid (NaNs last)."""
    lo = np.clip((n - 1) // 2, 0, None)
    hi = np.clip(n // 2, 0, None)
    a = np.take_along_axis(sorted_rows, lo[:, None], axis=1)[:, 0]
    b = np.take_along_axis(sorted_rows, hi[:, None], axis=1)[:, 0]
    return np.where(n > 0, (a + b) / 2.0, np.nan)


def robust_stats(window: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row median, MAD-based sigma and valid count of a [series, time] window with NaN gaps.

    Rows are grouped by their number of valid values (one group in the steady state, a few while windows
    fill); each group's middle ranks are found by selection (linear time) instead of a sort.
    """
    gaps = np.isnan(window)
    n = window.shape[1] - np.count_nonzero(gaps, axis=1)
    med = np.full(window.shape[0], np.nan)
    sigma = med.copy()
    counts = distinct(n)
    if counts.shape[0] > 8:  # ragged gaps everywhere: one sort beats many small selections
        s = np.sort(window, axis=1)
        med = _row_median(s, n)
        dev = np.sort(np.abs(window - med[:, None]), axis=1)
        return med, MAD_TO_SIGMA * _row_median(dev, n), n
    for k in counts.tolist():
        if k == 0:
            continue
        rows = n == k
        sub = window[rows] if k == window.shape[1] else np.where(gaps[rows], np.inf, window[rows])
        m = _middle(np.partition(sub, k // 2, axis=1), k)
        dev = np.subtract(sub, m[:, None])
        np.abs(dev, out=dev)  # gaps stay +inf, above every valid deviation
        dev.partition(k // 2, axis=1)
        med[rows], sigma[rows] = m, MAD_TO_SIGMA * _middle(dev, k)
    return med, sigma, n


def _middle(p: np.ndarray, k: int) -> np.ndarray:
    """Each row's median of its k smallest values, `p` partitioned at k // 2 (even k: the two middle ones)."""
    upper = p[:, k // 2]
    return upper if k % 2 else (p[:, : k // 2].max(axis=1) + upper) / 2.0


class RollingRobustZ:
    """Causal rolling robust z-score: each value against the median and MAD of the previous `window` values.

    With `refresh` > 1 a full window's median and MAD are recomputed every `refresh` ticks per series (staggered
    across series, so each tick pays for a share of them): statistics of hundreds of samples barely move in a
    few ticks. Series with fewer than `min_points` values are refreshed on every tick.
    """

    name = "robust-z"

    def __init__(self, window: int = 450, min_points: int = 20, band: float = 3.0,
                 rel_floor: float = 0.01, onset: float = 3.0, scale: float = 2.5, refresh: int = 1) -> None:
        self.window = window
        self.min_points = min_points
        self.band = band
        self.rel_floor = rel_floor
        self.onset = onset
        self.scale = scale
        self.refresh = max(1, int(refresh))
        self._buf = np.full((0, window), np.nan)
        self._pos = 0
        self._ticks = 0
        self._med = np.zeros(0)
        self._sigma = np.zeros(0)
        self._n = np.zeros(0, dtype=np.int64)

    def _ensure_rows(self, rows: int) -> None:
        if rows > self._buf.shape[0]:
            size = max(rows, 2 * self._buf.shape[0])
            old = self._buf.shape[0]
            grown = np.full((size, self.window), np.nan)
            grown[:old] = self._buf
            self._buf = grown
            self._med = np.concatenate([self._med, np.full(size - old, np.nan)])
            self._sigma = np.concatenate([self._sigma, np.full(size - old, np.nan)])
            self._n = np.concatenate([self._n, np.zeros(size - old, dtype=np.int64)])

    def _verdict(self, med: np.ndarray, sigma: np.ndarray, n: np.ndarray, values: np.ndarray) -> DetectorOutput:
        floor = np.maximum(self.rel_floor * np.abs(med), 1e-9)
        sigma = np.maximum(sigma, floor)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (values - med) / sigma
        enough = n >= self.min_points
        z = np.where(enough, z, np.nan)
        return DetectorOutput(
            score=z_to_score(z, self.onset, self.scale),
            z=z,
            expected=np.where(enough, med, np.nan),
            low=np.where(enough, med - self.band * sigma, np.nan),
            high=np.where(enough, med + self.band * sigma, np.nan),
        )

    def update(self, values: np.ndarray) -> DetectorOutput:
        rows = values.shape[0]
        self._ensure_rows(rows)
        if self.refresh == 1:
            due: slice | np.ndarray = slice(0, rows)
        else:  # each series on its turn, and every tick while its history is short
            turn = (np.arange(rows) + self._ticks) % self.refresh == 0
            due = np.flatnonzero(turn | (self._n[:rows] < self.min_points))
        self._med[due], self._sigma[due], self._n[due] = robust_stats(self._buf[due])
        out = self._verdict(self._med[:rows], self._sigma[:rows], self._n[:rows], values)
        self._buf[:rows, self._pos] = values
        self._buf[rows:, self._pos] = np.nan
        self._pos = (self._pos + 1) % self.window
        self._ticks += 1
        return out

    def forget_rows(self, rows: np.ndarray) -> None:
        """Forget rows: evicted series, whose rows a new series may take (it starts with no history)."""
        rows = rows[rows < self._buf.shape[0]]
        self._buf[rows] = np.nan
        self._med[rows] = np.nan
        self._sigma[rows] = np.nan
        self._n[rows] = 0

    def warm(self, history: np.ndarray) -> None:
        """Load past values ([series, time], oldest first) without scoring them."""
        rows = history.shape[0]
        self._ensure_rows(rows)
        take = history[:, -self.window:]
        for k in range(take.shape[1]):
            self._buf[:rows, self._pos] = take[:, k]
            self._pos = (self._pos + 1) % self.window
        self._med[:rows], self._sigma[:rows], self._n[:rows] = robust_stats(self._buf[:rows])


DETECTORS: dict[str, type] = {"robust-z": RollingRobustZ}

