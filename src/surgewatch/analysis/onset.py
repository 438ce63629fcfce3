"""Onset scoring shared by the streaming detectors: one full score per episode, damped repeats.

A raw score in [0, 1] per series and tick becomes an emitted score. NAB rewards the earliest detection in a
window and charges every extra false-positive row; alert rules want one event per episode.

- A raw score that beats the decayed peak of earlier emitted scores starts a *burst*.
- `burst = 0`: the burst is emitted in full at once; later raw scores are damped unless they beat the peak.
- `burst = D > 0`: a burst that keeps rising is followed for up to D ticks and emitted once, at its top,
  on the first tick that does not rise (or after D ticks); the rising ticks are damped. A rise of several
  ticks then fires once instead of once per tick, at most D ticks late.

Missing samples (not `valid`) leave the state untouched.
"""

from __future__ import annotations

import numpy as np

from .rowstats import row_capacity


class Onset:
    """Per-series onset state for many series at once."""

    def __init__(self, refractory: float = 200.0, damp: float = 0.2, burst: int = 0,
                 dtype: type[np.floating] = np.float64) -> None:
        """`refractory`: half-life in ticks of the peak a new burst must beat; `damp`: factor on repeats;
        `dtype`: of the scores kept (that of the raw scores given)."""
        self.decay = 0.5 ** (1.0 / refractory) if refractory > 0 else 0.0
        self.damp = damp
        self.burst = max(int(burst), 0)
        self.peak = np.zeros(0, dtype=dtype)
        self.pending = np.zeros(0, dtype=dtype)  # top of the burst being followed (0 = none)
        self.age = np.zeros(0, dtype=np.int32)
        self.last = np.zeros(0, dtype=dtype)  # previous raw score

    def grow(self, rows: int) -> None:
        """Make room for `rows` series, new ones start with no history (with room for more: the arrays are
        read by their first rows, so a few series joining later do not copy them)."""
        old = self.peak.shape[0]
        if rows <= old:
            return
        size = row_capacity(old, rows)
        for name in ("peak", "pending", "age", "last"):
            cur = getattr(self, name)
            out = np.zeros(size, dtype=cur.dtype)
            out[:old] = cur
            setattr(self, name, out)

    def forget_rows(self, rows: np.ndarray) -> None:
        """Forget rows: evicted series, whose rows a new series may take (it starts with no history)."""
        rows = rows[rows < self.peak.shape[0]]
        for name in ("peak", "pending", "age", "last"):
            getattr(self, name)[rows] = 0

    def __call__(self, raw: np.ndarray, valid: np.ndarray, gaps: np.ndarray | None = None) -> np.ndarray:
        """The emitted scores of this tick's raw scores (one per series); learns where `valid`
        (`gaps`: the indices where not, when the caller has them)."""
        rows = raw.shape[0]
        self.grow(rows)
        if self.burst == 0:
            peak = self.peak[:rows] * self.decay
            score = np.where(raw > peak, raw, raw * self.damp)
            self.peak[:rows] = np.where(valid, np.maximum(peak, raw), self.peak[:rows])
            return score
        # Only rows following a burst or beating their peak change more than their peak and last score
        # (few on most ticks): the rules run on those rows alone.
        pending, age, last = self.pending[:rows], self.age[:rows], self.last[:rows]
        if gaps is None:
            gaps = np.flatnonzero(~valid)
        peak = self.peak[:rows]
        kept_peak = peak[gaps]
        peak *= self.decay  # in place; put back on missing samples below
        score = raw * self.damp
        new_peak = peak
        act = np.flatnonzero((pending > 0) | (raw > peak))
        if act.size:
            p, pend, ag, rw = peak[act], pending[act], age[act], raw[act]
            following = pend > 0
            rising = following & (rw >= last[act]) & (ag < self.burst)
            ending = following & ~rising
            p = np.where(ending, np.maximum(p, pend), p)
            start = ~rising & (rw > p)
            score[act] = np.where(ending, pend, score[act])
            new_peak[act] = p
            keep = act[~valid[act]]
            saved = pending[keep], age[keep]
            pending[act] = np.where(rising, np.maximum(pend, rw), np.where(start, rw, 0.0))
            age[act] = np.where(rising, ag + 1, np.where(start, 1, 0))
            pending[keep], age[keep] = saved
        new_peak[gaps] = kept_peak
        kept = last[gaps]
        last[:] = raw
        last[gaps] = kept
        return score
