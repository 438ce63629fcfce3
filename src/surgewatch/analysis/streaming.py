"""The `surge` detector family: robust seasonal baselines with self-calibrated, onset-aware scores.

Pure numpy, vectorised across series: every piece of state is an array with one entry per series (the
seasonal profile one row per series), and one `update(values)` advances every series one tick, causally.

Per series and tick:
1. Baseline: a Huber-clipped exponentially weighted level plus an additive daily profile (Holt-Winters
   style, when the series' samples-per-day is known); a level shift is clipped, so it is learned over a
   few hundred ticks instead of being absorbed at once, and fires once, at its start.
2. Deviations in robust sigmas: the residual (`level`) and an exponentially smoothed residual
   (`smooth`, catches small sustained shifts in noisy series), each scaled by the EW mean absolute
   residual, floored by a multiple of the long-run (unclipped) mean absolute residual so that
   quiet or constant series do not turn every wiggle into infinity.
3. Calibration: each deviation is divided by a per-series running high quantile of its own history
   (tracked multiplicatively, scale-free), so a value counts as anomalous when it is rare *for that
   series*; the ratio r maps to [0, 1] as r²/(r²+k²).
4. Onset (optional, on by default for `surge`): a score is emitted in full only when it exceeds the
   decayed peak of recent scores; repeats within an episode are damped. NAB rewards the earliest
   detection in a window and charges every extra false-positive row, and alert rules want one event
   per episode, not one per tick.

NaN (or ±inf) is a missing sample: no score (NaN) and no learning; the seasonal clock still advances.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .detectors import DetectorOutput

_SIGMA_PER_MAD = 1.2533  # sigma / mean absolute deviation for a normal distribution


class ConstantDetector:
    """NAB's null detector: the same score for every sample (a baseline for `eval`)."""

    name = "null"

    def __init__(self, value: float = 0.5) -> None:
        self.value = value

    def update(self, values: np.ndarray) -> DetectorOutput:
        """Score every present sample `value`."""
        x = np.asarray(values, dtype=np.float64)
        nan = np.full(x.shape, np.nan)
        return DetectorOutput(np.where(np.isfinite(x), self.value, np.nan), nan, nan, nan.copy(), nan.copy())


class SurgeDetector:
    """Seasonal robust baseline, self-calibrated deviations and onset scoring, for many series at once."""

    name = "surge"

    def __init__(
        self,
        season: int | np.ndarray | None = None,
        *,
        alpha: float = 0.003,
        gamma: float = 0.2,
        clip: float = 1.0,
        scale_clip: float = 4.0,
        floor: float = 2.0,
        floor_alpha: float = 0.0005,
        smooth_alpha: float = 0.5,
        quantile: float = 0.999,
        quantile_rate: float = 0.05,
        k: float = 2.5,
        onset: bool = True,
        refractory: float = 300.0,
        damp: float = 0.3,
        min_points: int = 30,
        band: float = 3.0,
    ) -> None:
        """`season`: samples per day (scalar or one per series, 0 = no daily profile); rates per sample."""
        self.season = season
        self.alpha = alpha
        self.gamma = gamma
        self.clip = clip
        self.scale_clip = scale_clip
        self.floor = floor
        self.floor_alpha = floor_alpha
        self.smooth_alpha = smooth_alpha
        self.quantile = quantile
        self.quantile_rate = quantile_rate
        self.k = k
        self.onset = onset
        self.decay = 0.5 ** (1.0 / refractory) if refractory > 0 else 0.0
        self.damp = damp
        self.min_points = min_points
        self.band = band
        self._rows = 0
        self._alloc(0)

    # -- state -------------------------------------------------------------------------------------
    _VECTORS = ("n", "level", "scale", "longrun", "smooth", "q_level", "q_smooth", "peak")
    n: np.ndarray  # valid samples seen
    level: np.ndarray
    scale: np.ndarray  # EW mean absolute residual (clipped updates)
    longrun: np.ndarray  # slow EW mean absolute residual (unclipped): the scale floor
    smooth: np.ndarray  # EW smoothed residual
    q_level: np.ndarray  # log of the running high quantile of |z|
    q_smooth: np.ndarray
    peak: np.ndarray  # decaying peak of recent scores (onset scoring)

    def _alloc(self, rows: int) -> None:
        """Grow every per-series array to `rows` series, keeping the state of the existing ones."""
        old = self._rows
        for name in self._VECTORS:
            out = np.zeros(rows)
            if old:
                out[:old] = getattr(self, name)[:old]
            setattr(self, name, out)
        clock = np.zeros(rows, dtype=np.int64)
        period = np.zeros(rows, dtype=np.int64)
        seasons = np.asarray(0 if self.season is None else self.season, dtype=np.int64)
        if seasons.ndim == 0:
            period[:] = seasons
        else:  # one per series; rows beyond the given seasons have no daily profile
            m = min(seasons.size, rows)
            period[:m] = seasons[:m]
        width = max(int(period.max(initial=0)), 1)
        profile = np.zeros((rows, width))
        visits = np.zeros((rows, width))
        if old:
            clock[:old] = self.clock[:old]
            w0 = self.profile.shape[1]
            profile[:old, :w0] = self.profile[:old]
            visits[:old, :w0] = self.visits[:old]
        self.clock: np.ndarray = clock  # ticks seen per series (advances on gaps too)
        self.period: np.ndarray = period
        self.profile: np.ndarray = profile  # daily offset per phase
        self.visits: np.ndarray = visits
        self._index = np.arange(rows)
        self._rows = rows

    # -- one tick ----------------------------------------------------------------------------------
    def update(self, values: np.ndarray) -> DetectorOutput:
        """Judge this tick's values (NaN = no sample) against each series' past, then learn from them."""
        x = np.asarray(values, dtype=np.float64)
        if x.shape[0] > self._rows:
            self._alloc(x.shape[0])
        rows = x.shape[0]
        idx = self._index[:rows]
        n = self.n[:rows]
        valid = np.isfinite(x)  # NaN (and ±inf) = no sample
        period = self.period[:rows]
        seasonal = period > 0
        phase = np.where(seasonal, self.clock[:rows] % np.maximum(period, 1), 0)
        offset = np.where(seasonal, self.profile[idx, phase], 0.0)
        level, scale, longrun = self.level[:rows], self.scale[:rows], self.longrun[:rows]
        expected = level + offset
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            r = np.where(valid, x - expected, 0.0)
            sc = np.maximum(scale, self.floor * longrun)
            z = _ratio(r, sc)
            sa = self.smooth_alpha
            sm = (1.0 - sa) * self.smooth[:rows] + sa * r
            zs = _ratio(sm, sc) * np.sqrt((2.0 - sa) / sa)
            az, azs = np.abs(z), np.abs(zs)
            ql, qs = np.exp(self.q_level[:rows]), np.exp(self.q_smooth[:rows])
            ratio = np.maximum(az / ql, azs / qs)
            raw = np.where(np.isinf(ratio), 1.0, ratio * ratio / (ratio * ratio + self.k * self.k))
        ready = valid & (n >= self.min_points)
        raw = np.where(ready, raw, 0.0)
        if self.onset:
            prev = self.peak[:rows] * self.decay
            score = np.where(raw > prev, raw, raw * self.damp)
            self.peak[:rows] = np.where(valid, np.maximum(prev, raw), self.peak[:rows])
        else:
            score = raw
        self._learn(x, r, sm, az, azs, valid, ready, phase, offset)
        sigma = sc * _SIGMA_PER_MAD
        warm = valid & (n >= self.min_points)
        return DetectorOutput(
            score=np.where(valid, score, np.nan),
            z=np.where(warm, _ratio(r, sigma), np.nan),
            expected=np.where(n > 0, expected, np.nan),
            low=np.where(warm, expected - self.band * sigma, np.nan),
            high=np.where(warm, expected + self.band * sigma, np.nan),
        )

    def _learn(self, x: np.ndarray, r: np.ndarray, sm: np.ndarray, az: np.ndarray, azs: np.ndarray,
               valid: np.ndarray, ready: np.ndarray, phase: np.ndarray, offset: np.ndarray) -> None:
        rows = x.shape[0]
        idx = self._index[:rows]
        n = self.n[:rows]
        seen = valid & (n > 0)
        first = valid & (n == 0)
        level, scale = self.level[:rows], self.scale[:rows]
        n1 = n + valid
        rate = np.maximum(1.0 / np.maximum(n1, 1.0), self.alpha)
        with np.errstate(invalid="ignore", over="ignore"):
            lim = np.where(scale > 0, self.clip * scale, np.inf)
            new_level = level + rate * np.clip(r, -lim, lim)
            lim2 = np.where(scale > 0, self.scale_clip * scale, np.inf)
            new_scale = (1.0 - rate) * scale + rate * np.minimum(np.abs(r), lim2)
            lr = np.maximum(1.0 / np.maximum(n1, 1.0), self.floor_alpha)
            new_long = (1.0 - lr) * self.longrun[:rows] + lr * np.abs(r)
            # the daily profile learns the part of the deviation the level does not explain
            seasonal = self.period[:rows] > 0
            vis = self.visits[idx, phase]
            g = np.maximum(1.0 / (vis + 1.0), self.gamma)
            dev = np.clip(x - new_level - offset, -lim2, lim2)
        self.level[:rows] = np.where(seen, new_level, np.where(first, x, level))
        self.scale[:rows] = np.where(seen, new_scale, scale)
        self.longrun[:rows] = np.where(seen, new_long, self.longrun[:rows])
        self.smooth[:rows] = np.where(seen, sm, self.smooth[:rows])
        upd = seen & seasonal
        self.profile[idx[upd], phase[upd]] = offset[upd] + g[upd] * dev[upd]
        self.visits[idx[valid & seasonal], phase[valid & seasonal]] += 1.0
        q, eta = self.quantile, self.quantile_rate
        for qa, a in ((self.q_level, az), (self.q_smooth, azs)):
            step = np.where(a > np.exp(qa[:rows]), eta * q, -eta * (1.0 - q))
            qa[:rows] = np.where(ready, np.maximum(qa[:rows] + step, 0.0), qa[:rows])
        self.n[:rows] = n1
        self.clock[:rows] += 1

    def warm(self, history: np.ndarray) -> None:
        """Learn from past values ([series, time], oldest first) without keeping their scores."""
        for k in range(history.shape[1]):
            self.update(history[:, k])


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den with 0/0 = 0 and x/0 = ±inf."""
    with np.errstate(invalid="ignore", divide="ignore"):
        inf = np.where(num == 0, 0.0, np.sign(num) * np.inf)
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), inf)


DETECTORS: dict[str, dict[str, Any]] = {
    "surge": {},  # onset scoring: one strong score per episode (NAB, alerting)
    "surge-level": {"onset": False},  # the calibrated score on every tick (dashboards, bands)
}


def make_streaming_detector(name: str = "surge", season: int | np.ndarray | None = None) -> SurgeDetector:
    """The `surge` family member registered under `name`, for series with `season` samples per day."""
    try:
        kwargs = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r} (available: {', '.join(sorted(DETECTORS))})") from None
    det = SurgeDetector(season, **kwargs)
    det.name = name
    return det
