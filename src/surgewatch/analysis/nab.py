"""NAB scoring (Numenta Anomaly Benchmark rules): windows, scaled sigmoid, profiles and threshold sweep.

Pure numpy, no I/O. A labelled file is its row count plus its anomaly windows as inclusive row ranges;
scores are one float per row. `optimise` sorts every scored row once and walks down the scores with
running sums, so the best threshold over 100,000+ candidates costs one sort.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NO_DETECTION = 1.1  # NAB's "never fire" candidate threshold, above every valid score


@dataclass(frozen=True, slots=True)
class Profile:
    """A NAB cost profile: weights of a true positive, a false positive and a missed window."""

    name: str
    a_tp: float
    a_fp: float
    a_fn: float


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("standard", 1.0, 0.11, 1.0),
        Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
        Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
    )
}


def probation_length(n_rows: int) -> int:
    """Rows at the start of a file that are never scored: min(floor(0.15·N), 750)."""
    return math.floor(min(math.floor(0.15 * n_rows), 0.15 * 5000))


def scaled_sigmoid(x: np.ndarray | float) -> np.ndarray:
    """NAB's σ(x) = 2/(1+exp(5x)) − 1, and −1 for x > 3."""
    xa = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        s = 2.0 / (1.0 + np.exp(5.0 * xa)) - 1.0
    return np.where(xa > 3.0, -1.0, s)


_SIGMA_M1 = float(scaled_sigmoid(-1.0))


@dataclass(frozen=True)
class LabelledFile:
    """One data file's row count and its windows as inclusive row-index pairs, sorted, not overlapping."""

    name: str
    n_rows: int
    windows: np.ndarray  # shape (k, 2), int64, [a_k, b_k] inclusive

    def __post_init__(self) -> None:
        w = np.asarray(self.windows, dtype=np.int64).reshape(-1, 2)
        object.__setattr__(self, "windows", w)
        if self.n_rows < 0:
            raise ValueError(f"{self.name}: negative row count")
        if len(w) and (
            (w[:, 0] > w[:, 1]).any()
            or (w[:, 0] < 0).any()
            or (w[:, 1] >= self.n_rows).any()
            or (w[1:, 0] <= w[:-1, 1]).any()
        ):
            raise ValueError(f"{self.name}: windows must be sorted, inside the file and not overlap")

    @property
    def probation(self) -> int:
        """Number of probationary rows."""
        return probation_length(self.n_rows)

    @property
    def scored_windows(self) -> int:
        """Windows that have at least one row after the probationary period."""
        return int((self.windows[:, 1] >= self.probation).sum())


@dataclass(frozen=True)
class RowTable:
    """Per scored row of one file: its window (-1 outside) and its value (u inside, v outside)."""

    start: int  # first scored row (the probation length)
    window: np.ndarray  # int64, index of the file's window or -1
    value: np.ndarray  # float64, u_i (inside a window) or v_i (outside)


def row_table(f: LabelledFile) -> RowTable:
    """Classify every scored row of a file and give it its NAB value (section 4 of SCORING.md)."""
    p = f.probation
    idx = np.arange(p, f.n_rows, dtype=np.int64)
    window = np.full(idx.shape, -1, dtype=np.int64)
    value = np.full(idx.shape, -1.0)
    w = f.windows
    if len(w):
        # k = index of the last window starting at or before row i (-1: before the first window)
        k = np.searchsorted(w[:, 0], idx, side="right") - 1
        has = k >= 0
        a = np.where(has, w[np.maximum(k, 0), 0], 0)
        b = np.where(has, w[np.maximum(k, 0), 1], -1)
        width = b - a + 1
        inside = has & (idx <= b)
        after = has & (idx > b)
        x_in = -(b - idx + 1) / np.where(inside, width, 1)
        window[inside] = k[inside]
        value[inside] = scaled_sigmoid(x_in[inside]) / _SIGMA_M1
        with np.errstate(divide="ignore", invalid="ignore"):
            x_after = np.where(width > 1, (idx - b) / np.maximum(width - 1, 1), np.inf)
        value[after] = scaled_sigmoid(x_after[after])
    return RowTable(p, window, value)


@dataclass(frozen=True, slots=True)
class Tally:
    """A detector's outcome at one threshold on a set of files, for one profile."""

    raw: float
    normalised: float
    threshold: float
    windows: int  # all windows (the "perfect" count)
    detected: int  # scored windows with at least one detection
    missed: int  # scored windows without a detection
    false_positives: int  # detections outside every window


def normalise(raw: float, null_raw: float, n_windows: int, profile: Profile) -> float:
    """Map a raw score to NAB's scale: 0 = the null detector, 100 = perfect."""
    perfect = profile.a_tp * n_windows
    if perfect == null_raw:
        return 0.0
    return 100.0 * (raw - null_raw) / (perfect - null_raw)


class ScoredSet:
    """A set of labelled files prepared once, then scored for any detector, profile and threshold."""

    def __init__(self, files: Sequence[LabelledFile]) -> None:
        self.files = list(files)
        self.tables = [row_table(f) for f in self.files]
        self.n_windows = sum(len(f.windows) for f in self.files)
        offsets = np.cumsum([0] + [len(f.windows) for f in self.files])
        self._window = np.concatenate(
            [np.where(t.window >= 0, t.window + o, -1) for t, o in zip(self.tables, offsets, strict=False)]
            or [np.zeros(0, np.int64)]
        )
        self._value = np.concatenate([t.value for t in self.tables] or [np.zeros(0)])
        self.n_scored_windows = sum(f.scored_windows for f in self.files)
        self._null: dict[str, float] = {}

    def _gather(self, scores: Sequence[np.ndarray]) -> np.ndarray:
        if len(scores) != len(self.files):
            raise ValueError(f"got scores for {len(scores)} files, expected {len(self.files)}")
        parts = []
        for f, t, s in zip(self.files, self.tables, scores, strict=True):
            s = np.asarray(s, dtype=np.float64)
            if s.shape != (f.n_rows,):
                raise ValueError(f"{f.name}: {s.size} scores for {f.n_rows} rows")
            if not np.isfinite(s[t.start :]).all():
                raise ValueError(f"{f.name}: scores must be finite")
            parts.append(s[t.start :])
        return np.concatenate(parts) if parts else np.zeros(0)

    def sweep(self, scores: Sequence[np.ndarray], profile: Profile) -> tuple[np.ndarray, np.ndarray]:
        """Raw score at every candidate threshold: (thresholds descending, raw scores)."""
        s = self._gather(scores)
        order = np.argsort(-s, kind="stable")
        win = self._window[order]
        val = self._value[order]
        delta = np.where(win < 0, profile.a_fp * val, 0.0)
        inw = np.flatnonzero(win >= 0)
        if inw.size:
            # Per window, in order of descending score: the term moves up only when a row earlier in
            # the window (larger u) than any seen so far is detected.
            wo = inw[np.lexsort((inw, win[inw]))]
            wk = win[wo]
            u = val[wo]
            cm = np.maximum.accumulate(u + 2.0 * wk) - 2.0 * wk  # segmented running maximum (0 < u <= 1)
            first = np.ones(wo.size, dtype=bool)
            first[1:] = wk[1:] != wk[:-1]
            prev = np.where(first, 0.0, np.roll(cm, 1))
            d = profile.a_tp * (cm - prev)
            d[first] += profile.a_fn
            delta[wo] = d
        base = -profile.a_fn * self.n_scored_windows
        total = base + np.cumsum(delta)
        ss = s[order]
        # last row of each group of equal scores, plus the "no detection" candidate
        last = np.flatnonzero(np.append(ss[1:] != ss[:-1], True)) if ss.size else np.zeros(0, np.int64)
        thresholds = ss[last]
        raws = total[last]
        n_above = int(np.searchsorted(-ss, -NO_DETECTION, side="right"))  # rows with score >= 1.1
        raw_none = float(total[n_above - 1]) if n_above else base
        keep = thresholds < NO_DETECTION
        thresholds = np.concatenate([[NO_DETECTION], thresholds[keep]])
        raws = np.concatenate([[raw_none], raws[keep]])
        return thresholds, raws

    def optimise(self, scores: Sequence[np.ndarray], profile: Profile) -> Tally:
        """Choose NAB's threshold (highest raw score, ties to the highest threshold) and tally it."""
        thresholds, raws = self.sweep(scores, profile)
        best = int(np.argmax(raws))  # first maximum = highest threshold
        return self.tally(scores, profile, float(thresholds[best]))

    def null_raw(self, profile: Profile) -> float:
        """Raw score of the null detector (0.5 everywhere) with its own optimised threshold."""
        if profile.name not in self._null:
            _, raws = self.sweep([np.full(f.n_rows, 0.5) for f in self.files], profile)
            self._null[profile.name] = float(raws.max())
        return self._null[profile.name]

    def tally(self, scores: Sequence[np.ndarray], profile: Profile, threshold: float) -> Tally:
        """Score every file at one fixed threshold."""
        s = self._gather(scores)
        det = s >= threshold
        fp = det & (self._window < 0)
        raw = profile.a_fp * float(self._value[fp].sum())
        dw = det & (self._window >= 0)
        best = np.zeros(self.n_windows)
        np.maximum.at(best, self._window[dw], self._value[dw])
        detected = int((best > 0).sum())
        raw += profile.a_tp * float(best.sum()) - profile.a_fn * (self.n_scored_windows - detected)
        return Tally(
            raw=raw,
            normalised=normalise(raw, self.null_raw(profile), self.n_windows, profile),
            threshold=threshold,
            windows=self.n_windows,
            detected=detected,
            missed=self.n_scored_windows - detected,
            false_positives=int(fp.sum()),
        )


def file_raw_score(f: LabelledFile, detections: np.ndarray, profile: Profile) -> float:
    """Raw score of one file given a boolean detection per row (the direct definition, for checks)."""
    t = row_table(f)
    det = np.asarray(detections, dtype=bool)[t.start :]
    raw = profile.a_fp * float(t.value[det & (t.window < 0)].sum())
    for k in range(len(f.windows)):
        if f.windows[k, 1] < t.start:
            continue
        hit = det & (t.window == k)
        raw += profile.a_tp * float(t.value[hit].max()) if hit.any() else -profile.a_fn
    return raw
