"""Anomaly episodes: a sustained departure stays anomalous against the level it left, for alert for-durations.

Streaming detectors that learn fast (the `surge` family) score a level shift at its onset and then take the
new level as normal within minutes; an alert rule with `for = "2m"` would never see the shift held. An
episode starts when a row's score reaches the report level with a practically significant departure; it
keeps the expected value and spread from just before it started and holds the onset score while the value
stays on the same side of that level by at least half the departure it started with, for at most
`hold_ticks` (the default 15 minutes matches a rolling 15-minute window). Per-row arrays only, so rows can be
added or dropped at any time.
"""

from __future__ import annotations

import math

import numpy as np

HOLD_SECONDS = 900.0


class Episodes:
    """Per-row episode state: the level the row left, its spread, the departure and score it started with."""

    _FIELDS = ("base", "sigma", "start", "score", "since")

    def __init__(self, hold_ticks: int) -> None:
        self.hold_ticks = max(1, int(hold_ticks))
        self.base = np.zeros(0)  # NaN = no episode
        self.sigma = np.zeros(0)
        self.start = np.zeros(0)  # departure (value - base) at the onset
        self.score = np.zeros(0)
        self.since = np.zeros(0)  # tick of the onset

    def _grow(self, rows: int) -> None:
        old = self.base.shape[0]
        if rows <= old:
            return
        for name in self._FIELDS:
            cur = getattr(self, name)
            out = np.full(rows, np.nan if name == "base" else 0.0)
            out[:old] = cur
            setattr(self, name, out)

    def forget_rows(self, rows: np.ndarray) -> None:
        """Forget rows: evicted series, whose rows a new series may take (it starts with no episode)."""
        rows = rows[rows < self.base.shape[0]]
        self.base[rows] = np.nan

    def step(self, tick: int, value: np.ndarray, score: np.ndarray, expected: np.ndarray, z: np.ndarray,
             start_ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score with held episodes, True where an episode holds); episodes start where `start_ok`."""
        rows = value.shape[0]
        self._grow(rows)
        base, sigma, start = self.base[:rows], self.sigma[:rows], self.start[:rows]
        held_score, since = self.score[:rows], self.since[:rows]
        active = ~np.isnan(base)
        if not start_ok.any() and not active.any():  # no episode held and none starting: the scores as they are
            return score, active
        valid = np.isfinite(value)
        with np.errstate(invalid="ignore"):
            dev = value - base
            holds = (active & valid & (np.sign(dev) == np.sign(start)) & (np.abs(dev) >= 0.5 * np.abs(start))
                     & (tick - since < self.hold_ticks))
            # a missing sample neither ends nor extends an episode
            ended = active & valid & ~holds
            begin = ~holds & start_ok & valid & np.isfinite(expected) & np.isfinite(z) & (z != 0)
        base[ended] = np.nan
        if begin.any():
            d = (value - expected)[begin]
            base[begin] = expected[begin]
            sigma[begin] = np.abs(d / z[begin])
            start[begin] = d
            held_score[begin] = score[begin]
            since[begin] = tick
        out = np.where(holds, np.fmax(score, held_score), score)
        return out, holds

    def departure(self, row: int, value: float) -> tuple[float, float, float] | None:
        """(level left, departure in sigmas, sigma) of a held row; None when no episode holds it."""
        if row >= self.base.shape[0] or math.isnan(self.base[row]):
            return None
        b, s = float(self.base[row]), float(self.sigma[row])
        return b, (value - b) / s if s > 0 else float("inf"), s
