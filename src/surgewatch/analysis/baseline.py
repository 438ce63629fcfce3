"""A slow baseline per row: the level a host had over the last hour or so, robust to bursts.

The streaming detectors adapt within minutes (a level shift is learned, a slow leak is tracked); operators
judge a departure against what the host normally does. This keeps, per row, a Huber-clipped exponentially
weighted level with a time constant of `horizon` seconds and its mean absolute residual (clipped at `clip`
scales too, so a sustained departure is absorbed over about half an hour to an hour, not within minutes),
and gives the *practical score* of a departure that is large both in the metric's unit (`units` floors) and
against the host's own noise (`sigmas`): with q = min(|z| / sigmas, |size| / (units · floor)),
score = q⁴ / (q⁴ + 0.1), so q = 1 scores 0.91 and q = 0.8 scores 0.80. Causal (judged, then learned),
vectorised, NaN = no sample.
"""

from __future__ import annotations

import numpy as np

_SIGMA_PER_MAD = 1.2533


class SlowBaseline:
    """Per-row slow level and spread; `step` judges this tick's values against them, then learns."""

    def __init__(self, tick: float, horizon: float = 3600.0, sigmas: float = 6.0, units: float = 3.0,
                 clip: float = 3.0, min_points: int = 30) -> None:
        self.alpha = min(1.0, tick / horizon)
        self.sigmas = sigmas
        self.units = units
        self.clip = clip
        self.min_points = min_points
        self.level = np.zeros(0)
        self.scale = np.zeros(0)
        self.n = np.zeros(0)

    def _grow(self, rows: int) -> None:
        old = self.level.shape[0]
        if rows > old:
            self.level = np.concatenate([self.level, np.zeros(rows - old)])
            self.scale = np.concatenate([self.scale, np.zeros(rows - old)])
            self.n = np.concatenate([self.n, np.zeros(rows - old)])

    def forget_rows(self, rows: np.ndarray) -> None:
        """Forget rows: evicted series, whose rows a new series may take (it starts with no history)."""
        rows = rows[rows < self.level.shape[0]]
        self.level[rows] = self.scale[rows] = self.n[rows] = 0.0

    def step(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(expected level, z in sigmas) of each row before this tick (NaN until `min_points` samples)."""
        x = np.asarray(values, dtype=np.float64)
        rows = x.shape[0]
        self._grow(rows)
        level, scale, n = self.level[:rows], self.scale[:rows], self.n[:rows]
        valid = np.isfinite(x)
        ready = n >= self.min_points
        r = np.where(valid, x - level, 0.0)
        sigma = np.maximum(scale * _SIGMA_PER_MAD, 1e-9 + 1e-6 * np.abs(level))
        with np.errstate(invalid="ignore"):
            z = np.where(ready & valid, r / sigma, np.nan)
        expected = np.where(ready, level, np.nan)
        # learn: the first samples set the level as a running mean, then Huber-clipped EW updates
        rate = np.maximum(1.0 / (n + 1.0), self.alpha)
        lim = np.where(ready, self.clip * sigma, np.inf)
        level[:] = np.where(valid, level + rate * np.clip(r, -lim, lim), level)
        cap = np.where(ready, self.clip * np.maximum(scale, 1e-12), np.inf)
        scale[:] = np.where(valid, scale + rate * (np.minimum(np.abs(r), cap) - scale), scale)
        n[:] = n + valid
        return expected, z

    def score(self, z: np.ndarray, size: np.ndarray, floor: np.ndarray) -> np.ndarray:
        """The practical score of departures `z` (sigmas) and `size` (floor units) against `floor`."""
        with np.errstate(invalid="ignore", divide="ignore"):
            q = np.minimum(np.abs(z) / self.sigmas, np.abs(size) / (self.units * floor))
            q4 = q ** 4
            return np.where(np.isfinite(q), q4 / (q4 + 0.1), np.where(q > 0, 1.0, 0.0))
