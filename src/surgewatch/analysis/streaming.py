"""The `surge` detector family: robust seasonal baselines with self-calibrated, onset-aware scores.

Pure numpy, vectorised across series: every piece of state is an array with one entry per series (the
daily profile one row of bins per series), and one `update(values)` advances every series one tick,
causally (a value is judged before it is learned from).

Per series and tick:
1. Baseline: a Huber-clipped exponentially weighted level plus an additive daily profile (Holt-Winters
   style, when the series' samples-per-day is known), and a residual scale per time of day; a level
   shift is clipped, so it fires at its start and is learned over a few hundred ticks.
2. Deviations: the residual smoothed at several time scales (1, ~5, ~20, ~100 samples: spikes and
   sustained shifts), each in units of the residual scale, floored by the long-run (unclipped) mean
   absolute residual so that quiet or constant series do not turn every wiggle into infinity.
3. Calibration: each deviation is divided by a per-series running high quantile (99.99 %) of its own
   history, tracked multiplicatively (scale-free), so a value scores when it is rare *for that
   series*; the largest ratio r maps to [0, 1] as r²/(r²+k²).
4. Onset (the `surge` default): a score is emitted in full only when it beats the decayed peak of
   recent scores; repeats within an episode are damped. NAB rewards the earliest detection in a
   window and charges every extra false-positive row, and alert rules want one event per episode.
   (`onset.Onset`; with `burst > 0` a rising burst fires once, at its top, at most `burst` ticks late.)

`surge-context` (about 1 KB more state per series and three times the tick cost of `surge`) scores the largest of
- the calibrated surge deviations, the spike-scale ones (1, ~5, ~20 samples) weighted 0.85 against the
  sustained one (~100 samples): one odd sample is weaker evidence than a sustained departure;
- a two-sided CUSUM of the residual (Page's test: residual in scale units, clipped to ±4, minus an allowance
  of 2.5 per sample, summed while positive, at most 40), calibrated like the deviations: a sustained shift
  accumulates evidence, a lone spike adds at most 1.5;
- the contextual surprise of `context.ContextDetector` (weight 0.45);
- how far the value lies beyond every value the series has had so far, as a fraction of that range
  (weight 0.5: an all-time high or low), `ContextDetector.beyond`;
and follows rising bursts (onset with `burst=5`). NAB standard profile on the shared subset: leave-one-category-out
83.7, in-sample 83.3 (ARTime 80.5, HTM 73.1), held-out mean 81.8; see benchmarks/nab_bench.py. No part uses more than a
live stream has: samples per day, values and their order.

NaN (or ±inf) is a missing sample: no score (NaN) and no learning; the daily clock still advances.
Invariant under x -> a·x + b (a != 0) up to rounding: every quantity is a ratio of residuals.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..store import untouched_zeros
from .context import ContextDetector
from .detectors import DetectorOutput, track_quantile
from .onset import Onset
from .rowstats import row_capacity, union_rows

_F = np.float32  # the dtype of everything relative to a series' level (see SurgeDetector._VECTORS)
_SIGMA_PER_MAD = 1.2533  # sigma / mean absolute deviation for a normal distribution
WARM_TICKS = 120  # past ticks `warm` learns from (each costs one update): 4x the points before a score


def visits_dtype(per_day: np.ndarray) -> type[np.unsignedinteger]:
    """The narrowest unsigned integer type (uint8 or uint16) that counts a daily bin's visits for series learning
    at these per-day rates with the same numbers as an unbounded count: a count saturating at m (m + 1 wraps to 0,
    put back by a maximum) only changes the bin's learning rate max(1 / (visits + 1), per_day) while 1 / (m + 1)
    is above per_day."""
    for dtype in (np.uint8, np.uint16):
        top = _F(1.0) / (_F(np.iinfo(dtype).max) + _F(1.0))
        if bool((per_day >= top).all()):
            return dtype
    return np.uint16  # at most 65,535: ticks shorter than 23 ms with 5-minute bins (as before)


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
        alpha: float = 0.005,
        gamma: float = 0.2,
        clip: float = 2.0,
        scale_clip: float = 8.0,
        floor: float = 1.0,
        floor_alpha: float = 0.002,
        smooth_alphas: tuple[float, ...] = (1.0, 0.2, 0.05, 0.01),
        quantile: float = 0.9999,
        quantile_rate: float = 0.1,
        k: float = 1.5,
        onset: bool = True,
        refractory: float = 200.0,
        damp: float = 0.2,
        min_points: int = 30,
        band: float = 3.0,
        max_bins: int = 288,
        seasonal_scale: bool = True,
        initial_quantile: float = 4.0,
        burst: int = 0,
        weights: tuple[float, ...] | None = None,
        cusum: float = 0.0,
        cusum_clip: float = 4.0,
        cusum_cap: float = 40.0,
    ) -> None:
        """`season`: samples per day (scalar or one per series, 0 = no daily profile); rates per sample.

        `smooth_alphas`: one deviation per entry, the residual smoothed exponentially with that rate
        (1.0 = the residual itself); each is calibrated on its own and the most unusual one scores.
        `max_bins`: the daily profile has at most this many bins (288 = 5 minutes), whatever the tick.
        `seasonal_scale`: with a daily profile, also learn the residual scale per time of day (nights are
        quieter than days), once a bin holds 3 samples (3 days when a bin gets one sample a day; with
        finer ticks a bin is learned within its first day, so a long episode early on becomes "normal").
        `weights`: one factor per entry of `smooth_alphas` on its calibrated score (default all 1).
        `cusum` > 0 adds a two-sided CUSUM of the residual in units of the residual scale, each sample
        clipped to ±`cusum_clip` and reduced by the allowance `cusum` (Page's test for a sustained shift),
        calibrated like the deviations, with weight 1; the sums stop at `cusum_cap`, so a long shift cannot
        raise the CUSUM's running quantile without bound (and mute it for good).
        """
        if not smooth_alphas or not all(0 < a <= 1 for a in smooth_alphas):
            raise ValueError("smooth_alphas must be rates in (0, 1]")
        if weights is not None and (len(weights) != len(smooth_alphas) or not all(w > 0 for w in weights)):
            raise ValueError("weights must be positive, one per smooth_alphas entry")
        if cusum < 0 or cusum_clip <= 0 or cusum_cap <= 0:
            raise ValueError("cusum must be >= 0, cusum_clip and cusum_cap > 0")
        # the smoothed deviations by weight: (weight, their rows), rows of one weight next to each other
        ws = [1.0] * len(smooth_alphas) if weights is None else [float(w) for w in weights]
        self._groups: list[tuple[float, slice]] = []
        for i, w in enumerate(ws):
            if self._groups and self._groups[-1][0] == w:
                self._groups[-1] = (w, slice(self._groups[-1][1].start, i + 1))
            else:
                self._groups.append((w, slice(i, i + 1)))
        self._cusum_alone = 1.0 not in ws
        self.cusum = cusum
        self.cusum_clip = cusum_clip
        self.cusum_cap = cusum_cap
        self.season = season
        self.alpha = alpha
        self.gamma = gamma
        self.clip = clip
        self.scale_clip = scale_clip
        self.floor = floor
        self.floor_alpha = floor_alpha
        sa = np.asarray(smooth_alphas, dtype=np.float64)[:, None]
        self._alphas = sa.astype(_F)
        self._keep = (1.0 - sa).astype(_F)
        self._gain = np.sqrt((2.0 - sa) / sa).astype(_F)  # a smoothed white residual has sd / gain
        self.quantile = quantile
        self.quantile_rate = quantile_rate
        self.k = k
        self.onset = onset
        self.min_points = min_points
        self.band = band
        self.max_bins = max_bins
        self.seasonal_scale = seasonal_scale
        self._q0 = max(initial_quantile, 1.0)
        self._onset = Onset(refractory, damp, burst, dtype=_F)
        # multiplicative quantile tracking: up on an exceedance, down otherwise; balanced at `quantile`
        self._q_up = float(np.exp(quantile_rate * quantile))
        self._q_down = float(np.exp(-quantile_rate * (1.0 - quantile)))
        self._rows = 0
        self._cap = 0
        self._bufs: dict[str, np.ndarray] = {}
        self._alloc(0)

    # -- state -------------------------------------------------------------------------------------
    # The level is float64 (a series' values may sit far from 0: residuals are taken in float64); every
    # other quantity is relative to it and float32: half the memory and about half the arithmetic.
    _VECTORS: ClassVar[dict[str, type[np.floating]]] = {"n": _F, "level": np.float64, "scale": _F, "longrun": _F}
    _none = np.zeros(0, dtype=np.intp)
    n: np.ndarray  # valid samples seen (float32: exact to 16.7 million, then saturates: only 1/n uses it)
    level: np.ndarray
    scale: np.ndarray  # EW mean absolute residual (clipped updates)
    longrun: np.ndarray  # slow EW mean absolute residual (unclipped): the scale floor

    def _alloc(self, rows: int) -> None:
        """Make room for `rows` series, keeping the state of the existing ones; new series start fresh.

        Every per-series array is a view of the rows in use of a larger buffer (`_bufs`, rows on the last axis):
        a series joining a fleet takes a row of it in place. Only past the buffer's capacity is a larger one
        allocated (`row_capacity`) and the rows in use copied: a fleet whose series
        arrive over several ticks, or grow by a few under churn, does not copy its whole state (tens of MB at
        10,000 series, and a peak of twice that) for each new row. Rows never used are zero pages of a fresh
        allocation: they cost no memory, and a bin of the daily profile becomes resident when first visited."""
        old = self._rows
        if rows > self._cap or not self._bufs:
            self._regrow(row_capacity(self._cap, rows) if rows else 0, old)
        b = self._bufs
        for name in self._VECTORS:
            setattr(self, name, b[name][:rows])
        self.smooth: np.ndarray = b["smooth"][:, :rows]  # smoothed residuals
        self.q: np.ndarray = b["q"][:, :rows]  # each deviation's running high quantile (>= 1)
        self.cus: np.ndarray = b["cus"][:, :rows]  # CUSUM: upward sum, downward sum, running high quantile
        self.clock: np.ndarray = b["clock"][:rows]  # ticks seen per series (advances on gaps too)
        # per daily bin, field and series; fields: offset from the level, EW mean absolute residual
        self.cells: np.ndarray = b["cells"][:, :, :rows]
        # per daily bin and series: samples seen, saturating at 255 (uint8) or 65,535 (uint16): only 1 / (visits
        # + 1) above the per-day rate and `visits >= 3` use it, so the counts are uint8 where every series' rate is
        # at least 1/256 (a tick of 5.7 s or more with 5-minute bins) and the numbers are the same (visits_dtype)
        self.visits: np.ndarray = b["visits"][:, :rows]
        self.period: np.ndarray = b["period"][:rows]
        self.bins: np.ndarray = b["bins"][:rows]
        if rows > old:  # the fresh state of new rows (the buffer's unused rows are zeros)
            self.q[:, old:] = self._q0
            self.cus[2, old:] = self._q0
            if old:
                self.clock[old:] = self.clock[0]  # new series join the time of day of the existing ones
        period = self.period
        # one period for all: every series is in the same daily bin at every tick (one contiguous slice)
        self._aligned = bool(rows) and bool((period == period[0]).all())
        self._seasonal = bool((period > 0).any())
        self._per_day = b["per_day"][:rows]
        self._profiled = period > 0
        self._all_profiled = bool(self._profiled.all())
        self._index = b["index"][:rows]
        self._rows = rows
        self._settled = False  # every row has min_points samples (rechecked while not)

    def _regrow(self, cap: int, used: int) -> None:
        """Buffers for `cap` series, the first `used` rows copied from the current ones."""
        n_stats = self._alphas.shape[0]
        period = np.zeros(cap, dtype=np.int64)
        seasons = np.asarray(0 if self.season is None else self.season, dtype=np.int64)
        if seasons.ndim == 0:
            period[:] = seasons
        else:  # one per series; rows beyond the given seasons have no daily profile
            m = min(seasons.size, cap)
            period[:m] = seasons[:m]
        period = np.maximum(period, 0)
        bins = np.minimum(period, self.max_bins)
        width = max(int(bins.max(initial=0)), 1)
        # bin-major: each field of one bin of every series is contiguous; float32 offsets and scales and uint8
        # counts: a day of 5-minute bins for 10,000 series is 24.7 MiB (66 in float64), NAB scores unchanged; in
        # mappings of small pages, so that a bin and the rows in use become resident as they are written
        per_day = np.where(period > 0, self.gamma * bins / np.maximum(period, 1), 0.0).astype(_F)
        counts = visits_dtype(per_day[period > 0])
        if self._bufs and self._bufs["visits"].dtype.itemsize > np.dtype(counts).itemsize:
            counts = self._bufs["visits"].dtype.type  # never narrower than before (saturated counts stay put)
        bufs = {name: np.zeros(cap, dtype=dtype) for name, dtype in self._VECTORS.items()}
        bufs |= {"smooth": np.zeros((n_stats, cap), dtype=_F), "q": np.zeros((n_stats, cap), dtype=_F),
                 "cus": np.zeros((3, cap), dtype=_F), "clock": np.zeros(cap, dtype=np.int64),
                 "cells": untouched_zeros((width, 2, cap), _F), "visits": untouched_zeros((width, cap), counts),
                 "period": period, "bins": bins, "index": np.arange(cap),
                 "per_day": per_day}
        if used:
            for name in (*self._VECTORS, "smooth", "q", "cus", "clock", "visits"):
                bufs[name][..., :used] = self._bufs[name][..., :used]
            w0 = self._bufs["cells"].shape[0]
            bufs["cells"][:w0, :, :used] = self._bufs["cells"][:, :, :used]
        self._bufs = bufs
        self._cap = cap

    # -- one tick ----------------------------------------------------------------------------------
    # Every step is computed for all rows and then undone on the few exceptional ones (missing samples, new
    # series) by index: masked selects over every row cost several times more than the arithmetic.
    def update(self, values: np.ndarray) -> DetectorOutput:
        """Judge this tick's values (NaN = no sample) against each series' past, then learn from them."""
        x = np.asarray(values, dtype=np.float64)
        valid = np.isfinite(x)  # NaN (and ±inf) = no sample
        out = self.step(x, valid, np.flatnonzero(~valid))
        return DetectorOutput(out.score.astype(np.float64), out.z.astype(np.float64), out.expected, out.low,
                              out.high)

    def step(self, x: np.ndarray, valid: np.ndarray, gaps: np.ndarray) -> DetectorOutput:
        """`update` given the float64 values, where they are finite and the indices where they are not (score
        and z in float32, the rest float64)."""
        rows = x.shape[0]
        if rows > self._rows:
            self._alloc(rows)
        n, level, scale = self.n[:rows], self.level[:rows], self.scale[:rows]
        longrun, smooth, q = self.longrun[:rows], self.smooth[:, :rows], self.q[:, :rows]
        young = self._none
        if not self._settled:
            young = np.flatnonzero(n < self.min_points)  # no score yet (few once series have history)
            self._settled = not young.size and rows == self._rows  # until rows are forgotten
        not_ready = union_rows(gaps, young) if young.size else gaps
        empty = young[n[young] == 0]  # no sample yet
        unseen = union_rows(gaps, empty) if empty.size else gaps  # nothing to learn from
        with np.errstate(all="ignore"):
            base = scale
            if self._seasonal:
                if self._aligned and rows == self._rows:
                    p0 = int(self.period[0])
                    phase: int | np.ndarray = int(self.clock[0] % p0) * int(self.bins[0]) // p0
                    cell = self.cells[phase, :, :rows]  # views, written back in place
                    visits = self.visits[phase, :rows]
                else:
                    p = np.maximum(self.period[:rows], 1)
                    idx = self._index[:rows]
                    phase = (self.clock[:rows] % p) * self.bins[:rows] // p
                    cell = self.cells[phase, :, idx].T  # copies, written back at the end
                    visits = self.visits[phase, idx]
                offset, spread = cell[0], cell[1]
                expected = level + offset
                if self.seasonal_scale:  # the bin's own scale once it holds 3 samples (by index: np.where is slow)
                    few = np.flatnonzero(visits < 3)
                    if few.size < rows:
                        base = spread.copy()
                        base[few] = scale[few]
            else:
                expected = level.copy()
            r = (x - expected).astype(_F)  # the residual, float64 until it is relative to the level
            r[gaps] = 0.0
            sc = np.maximum(base, longrun if self.floor == 1.0 else self.floor * longrun)
            some_zero = not sc.min(initial=1.0) > 0  # a zero scale (or NaN): 0/0 below, made 0
            kept_smooth = smooth[:, unseen]
            smooth *= self._keep  # in place; the rows with nothing to learn are put back below
            smooth += self._alphas * r
            dev = np.abs(smooth)
            dev *= self._gain
            dev /= sc  # 0/0 -> nan (no deviation), x/0 -> inf
            if some_zero:
                np.fmax(dev, 0.0, out=dev)  # nan -> 0
            ratio = dev / q
            if self.cusum:
                cus = self.cus[:, :rows]
                zc = r / sc
                if some_zero:
                    zc[np.isnan(zc)] = 0.0  # 0/0: no deviation
                # one pass (np.maximum and np.minimum with a number are slower than a clip with two)
                np.clip(zc, -self.cusum_clip, self.cusum_clip, out=zc)  # x/0 -> ±clip
                up = cus[0] + zc
                up -= self.cusum
                np.clip(up, 0.0, self.cusum_cap, out=up)
                down = cus[1] - zc
                down -= self.cusum
                np.clip(down, 0.0, self.cusum_cap, out=down)
                shift = np.maximum(up, down)
                shift_ratio = shift / cus[2]
            # the largest weighted mapped ratio; the map is increasing, so per weight only the largest ratio
            # is mapped (the CUSUM's has weight 1)
            parts = []
            for w, part in self._groups:
                top = ratio[part.start]  # a view: the map overwrites it
                if part.stop - part.start > 1:  # pairwise: a reduction over a short first axis is slow
                    top = np.maximum(top, ratio[part.start + 1])
                    for i in range(part.start + 2, part.stop):
                        np.maximum(top, ratio[i], out=top)
                if self.cusum and w == 1.0:
                    np.maximum(top, shift_ratio, out=top)
                m = self._mapped(top)
                if w != 1.0:
                    m *= w
                parts.append(m)
            if self.cusum and self._cusum_alone:
                parts.append(self._mapped(shift_ratio))
            raw = parts[0]
            for m in parts[1:]:
                np.maximum(raw, m, out=raw)
            raw[not_ready] = 0.0
            score = self._onset(raw, valid, gaps) if self.onset else raw
            score[gaps] = np.nan
            sigma = sc * _SIGMA_PER_MAD
            z = r / sigma  # x/0 -> ±inf
            if some_zero:
                z[np.isnan(z)] = 0.0  # 0/0
            band = (self.band * sigma).astype(np.float64)  # cast once for both
            low = expected - band
            high = expected + band
            z[not_ready] = low[not_ready] = high[not_ready] = np.nan
            expected[empty] = np.nan
            out = DetectorOutput(score=score, z=z, expected=expected, low=low, high=high)
            # -- learn ----------------------------------------------------------------------------
            n1 = n + valid
            # the learning rates: 1/n while that is above the floor rate (one number once every series
            # has that much history)
            most = 1.0 / max(float(n1.min(initial=1.0)), 1.0)
            inv = 1.0 / np.maximum(n1, 1.0) if most > min(self.alpha, self.floor_alpha) else most
            rate: float | np.ndarray = self.alpha if most <= self.alpha else np.maximum(inv, self.alpha)
            no_scale = self._none if scale.min(initial=1.0) > 0 else np.flatnonzero(scale <= 0)
            lim = self.clip * scale
            lim[no_scale] = np.inf
            step = np.maximum(r, -lim)
            np.minimum(step, lim, out=step)
            step *= rate
            new_level = level + step
            lim2 = self.scale_clip * scale
            lim2[no_scale] = np.inf
            ar = np.abs(r)
            new_scale = np.minimum(ar, lim2)
            new_scale *= rate
            new_scale += scale * (1.0 - rate)
            lr: float | np.ndarray = self.floor_alpha if most <= self.floor_alpha else np.maximum(inv, self.floor_alpha)
            new_long = longrun * (1.0 - lr)
            new_long += lr * ar
            if self._seasonal:
                # the daily profile learns the part of the deviation the level does not explain, and
                # the residual scale at this time of day; gamma is per day, so with several samples
                # per bin each one moves it less
                g = visits.astype(_F)
                g += 1.0
                np.divide(1.0, g, out=g)
                np.maximum(g, self._per_day[:rows], out=g)
                d = r - step  # x - new_level - offset (float32: relative to the level)
                np.maximum(d, -lim2, out=d)
                np.minimum(d, lim2, out=d)
                d *= g
                d += offset
                cap = self.scale_clip * spread
                cap[np.flatnonzero(spread <= 0)] = np.inf  # no spread yet: no cap (by index: np.where is slow)
                np.minimum(ar, cap, out=cap)
                cap -= spread
                cap *= g
                cap += spread
                counted = visits + 1  # saturating: 65535 + 1 wraps to 0, and the maximum puts 65535 back
                np.maximum(counted, visits, out=counted)
                if self._all_profiled:
                    stay, idle = unseen, gaps
                else:
                    flat = np.flatnonzero(~self._profiled[:rows])
                    stay, idle = union_rows(unseen, flat), union_rows(gaps, flat)
                d[stay], cap[stay], counted[idle] = offset[stay], spread[stay], visits[idle]
                offset[:], spread[:], visits[:] = d, cap, counted
                if not isinstance(phase, int):
                    self.cells[phase, :, idx] = cell.T
                    self.visits[phase, idx] = visits
            new_level[unseen] = level[unseen]
            new_level[empty] = x[empty]  # the first sample is the level (NaN stays the previous level)
            new_level[gaps] = level[gaps]
            new_scale[unseen], new_long[unseen], smooth[:, unseen] = scale[unseen], longrun[unseen], kept_smooth
            level[:], scale[:], longrun[:] = new_level, new_scale, new_long
            exceed = dev > q
            kept = q[:, not_ready]
            track_quantile(q, exceed, self._q_up, self._q_down)
            q[:, not_ready] = kept
            np.maximum(q, 1.0, out=q)
            if self.cusum:
                up[unseen], down[unseen] = cus[0, unseen], cus[1, unseen]
                cus[0], cus[1] = up, down
                qc = cus[2]
                exceed = shift > qc
                kept = qc[not_ready]
                track_quantile(qc, exceed, self._q_up, self._q_down)
                qc[not_ready] = kept
                np.maximum(qc, 1.0, out=qc)
            n[:] = n1
            self.clock[:rows] += 1
        return out

    def forget_rows(self, rows: np.ndarray) -> None:
        """Forget rows: evicted series, whose rows a new series may take (it starts with no history)."""
        rows = rows[rows < self._rows]
        for name in self._VECTORS:
            getattr(self, name)[rows] = 0.0
        self._settled = False
        self.smooth[:, rows] = 0.0
        self.q[:, rows] = self._q0
        self.cus[:2, rows], self.cus[2, rows] = 0.0, self._q0
        # the clock is the time of day, shared by every series (a new one joins it, as in _alloc)
        # only the daily bins that hold something are written: writing zeros over a bin not yet visited today
        # would make its page resident for nothing (a fleet evicting a host every few ticks would make the whole
        # profile resident within the hour instead of bin by bin over the day); reading it costs no memory
        held = (self.visits[:, rows] != 0) | (self.cells[:, :, rows] != 0).any(axis=1)  # [bin, row]
        at, k = np.nonzero(held)
        if at.size:
            self.cells[at, :, rows[k]] = 0.0
            self.visits[at, rows[k]] = 0
        self._onset.forget_rows(rows)

    def _mapped(self, ratio: np.ndarray) -> np.ndarray:
        """Deviation over its running quantile -> [0, 1] as r²/(r²+k²) (infinite -> 1); overwrites `ratio`."""
        np.multiply(ratio, ratio, out=ratio)
        out = ratio + self.k * self.k
        np.divide(ratio, out, out=out)
        return np.fmin(out, 1.0, out=out)  # inf / inf -> 1 (the rest is at most 1 already)

    def warm(self, history: np.ndarray) -> None:
        """Learn from the last WARM_TICKS past values ([series, time], oldest first) without keeping their
        scores: enough to calibrate, and cheap enough that a dashboard backfilled with history starts at once."""
        for k in range(max(0, history.shape[1] - WARM_TICKS), history.shape[1]):
            self.update(history[:, k])


class SurgeContextDetector:
    """`surge`, `context` and new extremes together: the largest of their scores, one onset for all.

    The surge deviation catches level, spike and shift anomalies; the context surprise catches values that
    are ordinary in size but new after what came before; the extreme score catches a value beyond every
    value the series has had so far (by a fraction of that range: an all-time high or low), however
    ordinary its local deviation. The first two are calibrated as rarity for the series; the context and
    extreme scores are weighted by `weight` and `extreme` (< 1: they confirm rather than lead). Onset
    scoring follows each rising burst for up to `burst` ticks and fires once at its top. z, expected and
    band come from surge.
    """

    name = "surge-context"

    def __init__(self, season: int | np.ndarray | None = None, *, weight: float = 0.45, extreme: float = 0.5,
                 extreme_k: float = 0.03, surge_weights: tuple[float, ...] | None = None, cusum: float = 0.0,
                 burst: int = 5, refractory: float = 200.0, damp: float = 0.2, **context: Any) -> None:
        """`season` as for SurgeDetector; `context`: keyword arguments of ContextDetector.

        A value beyond its series' range so far by r times that range scores `extreme`·r²/(r² + extreme_k²)
        (0 disables it). `surge_weights` and `cusum`: SurgeDetector's `weights` and `cusum`.
        """
        self.surge = SurgeDetector(season, onset=False, weights=surge_weights, cusum=cusum)
        self.context = ContextDetector(onset=False, **context)
        self.weight = weight
        self.extreme = extreme
        self._k2 = extreme_k * extreme_k
        self._onset = Onset(refractory, damp, burst, dtype=_F)

    def update(self, values: np.ndarray) -> DetectorOutput:
        """Judge this tick's values (NaN = no sample) with every part, then let them learn."""
        x = np.asarray(values, dtype=np.float64)
        beyond, far = self.context.outside(x)  # judged against the range before this value (few rows)
        valid = np.isfinite(x)
        gaps = np.flatnonzero(~valid)
        out = self.surge.step(x, valid, gaps)
        ctx = self.context.step(x, valid, gaps)
        ctx *= self.weight
        best = np.maximum(out.score, ctx, out=ctx)  # both NaN exactly where the sample is missing
        if self.extreme > 0:
            f2 = far * far
            best[beyond] = np.maximum(best[beyond], self.extreme * f2 / (f2 + self._k2))
        best[gaps] = 0.0
        score = self._onset(best, valid, gaps).astype(np.float64)
        score[gaps] = np.nan
        return DetectorOutput(score, out.z.astype(np.float64), out.expected, out.low, out.high)

    def forget_rows(self, rows: np.ndarray) -> None:
        """Forget rows: evicted series, whose rows a new series may take (it starts with no history)."""
        self.surge.forget_rows(rows)
        self.context.forget_rows(rows)
        self._onset.forget_rows(rows)

    def warm(self, history: np.ndarray) -> None:
        """Learn from the last WARM_TICKS past values ([series, time], oldest first) without keeping their
        scores: enough to calibrate, and cheap enough that a dashboard backfilled with history starts at once."""
        for k in range(max(0, history.shape[1] - WARM_TICKS), history.shape[1]):
            self.update(history[:, k])


DETECTORS: dict[str, dict[str, Any]] = {
    "surge": {},  # onset scoring: one strong score per episode (NAB, alerting)
    "surge-level": {"onset": False},  # the calibrated score on every tick (dashboards, bands)
    # surge (sustained shifts weighted above spikes, plus a CUSUM), contextual surprise and new extremes,
    # burst-top onset (more memory per series; the best NAB score here); a context table of 512 slots per
    # series (1 KB: 10 MB at 10,000 series): NAB leave-one-category-out 83.74 (83.38 with 1,024 slots),
    # in-sample 83.33 (83.54)
    "surge-context": {"surge_weights": (0.85, 0.85, 0.85, 1.0), "cusum": 2.5, "table_bits": 9},
}


def make_streaming_detector(name: str = "surge", season: int | np.ndarray | None = None,
                            ) -> SurgeDetector | SurgeContextDetector:
    """The `surge` family member registered under `name`, for series with `season` samples per day."""
    try:
        kwargs = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r} (available: {', '.join(sorted(DETECTORS))})") from None
    if name == "surge-context":
        return SurgeContextDetector(season, **kwargs)
    det = SurgeDetector(season, **kwargs)
    det.name = name
    return det
