"""Practical significance: a departure must matter in the metric's own units, not only in sigmas.

Each series gets a *kind* from its metric name and a size of its departure from the expected value in that
kind's unit: percent points for `*.percent` (CPU, memory, swap), load per core for `load.*`, and the relative
change for everything else (byte and packet rates, visitors, latencies). An anomaly smaller than its kind's
floor is noted in words ("+2 points, below the 5-point floor") and fires no rule. Each series also gets its
physical range (0–100 for percentages, at least 0 for load, rates, byte counts, counts, visitors and latencies;
unbounded for names it does not know), and the detector's expected band is clamped to it: a band of
"-19%–125%" says nothing a user can act on. Pure numpy, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..model import split_series

POINTS, LOAD, RELATIVE = 0, 1, 2
CORE_METRIC = re.compile(r"cpu\.core\d+\.percent$")  # a core's CPU: a host's cores are counted from these


@dataclass(frozen=True, slots=True)
class Floors:
    """The smallest departure that counts, per kind (the [monitor] floor_* keys)."""

    points: float = 5.0  # percent points (cpu, mem, swap, disk *.percent)
    load: float = 0.5  # load average per core
    relative: float = 0.5  # relative change of rates, counts and visitors (0.5 = ±50 %)

    def of(self, kind: int) -> float:
        """The floor of one kind."""
        return (self.points, self.load, self.relative)[kind]


def floors_of(monitor: object) -> Floors:
    """The floors of a [monitor] config section (its floor_points, floor_load, floor_relative)."""
    d = Floors()
    return Floors(float(getattr(monitor, "floor_points", d.points)), float(getattr(monitor, "floor_load", d.load)),
                  float(getattr(monitor, "floor_relative", d.relative)))


# metric names (or their ends) that cannot be negative, besides percentages and load
_NON_NEGATIVE = ("_bps", "_bytes", ".count", "_count", "_total", "visitors", "pageviews", "sessions", "_ms",
                 "_seconds", "_per_s", "rps", "requests")


def physical_range(metric: str) -> tuple[float, float]:
    """The values a metric can take: (0, 100) for percentages, (0, inf) for load, rates, counts, visitors and
    latencies, (-inf, inf) for a name not known to be bounded (a Prometheus gauge may be anything)."""
    if metric.endswith("percent"):
        return 0.0, 100.0
    if metric.startswith("load.") or metric.endswith(_NON_NEGATIVE):
        return 0.0, np.inf
    return -np.inf, np.inf


def metric_kind(metric: str) -> int:
    """POINTS, LOAD or RELATIVE for a metric name."""
    if metric.endswith("percent"):
        return POINTS
    if metric.startswith("load."):
        return LOAD
    return RELATIVE


@dataclass(frozen=True, slots=True)
class Significance:
    """Per-row kind, unit divisor and floor for one series index (rebuilt when series are added)."""

    kind: np.ndarray  # int8 per row
    cores: np.ndarray  # cores per row (1 where unknown or not a load series)
    floor: np.ndarray  # the [monitor] floor per row, in the kind's unit
    lowest: np.ndarray  # the physical range per row (physical_range)
    highest: np.ndarray

    @classmethod
    def build(cls, names: Sequence[str], floors: Floors) -> Significance:
        """Kinds and floors of `names`; a host's cores are counted from its `cpu.coreN.percent` series."""
        cores: dict[str, int] = {}
        parts = [split_series(n) for n in names]
        # what depends on the metric alone, once per distinct metric (a fleet has thousands of names, a dozen
        # metrics): its kind, its physical range, whether it is a core's CPU
        per_metric = {m: (metric_kind(m), physical_range(m), CORE_METRIC.match(m) is not None)
                      for m in {m for _k, _w, m in parts}}
        for _kind, who, metric in parts:
            if per_metric[metric][2]:
                cores[who] = cores.get(who, 0) + 1
        kind = np.array([per_metric[m][0] for _k, _w, m in parts], dtype=np.int8)
        per_row = np.array([max(cores.get(w, 1), 1) if k == LOAD else 1
                            for (_x, w, _m), k in zip(parts, kind.tolist(), strict=True)], dtype=np.float64)
        table = np.array([floors.points, floors.load, floors.relative])
        bounds = np.array([per_metric[m][1] for _k, _w, m in parts], dtype=np.float64).reshape(-1, 2)
        return cls(kind, per_row, table[kind] if kind.size else np.zeros(0), bounds[:, 0].copy(),
                   bounds[:, 1].copy())

    def clamp_band(self, low: np.ndarray, high: np.ndarray) -> None:
        """Clamp an expected band (per row, in place) to each row's physical range; NaN stays NaN."""
        n = min(low.shape[0], high.shape[0], self.lowest.shape[0])
        for band in (low[:n], high[:n]):
            np.maximum(band, self.lowest[:n], out=band)  # NaN propagates
            np.minimum(band, self.highest[:n], out=band)

    def size_of(self, row: int, value: float, expected: float) -> float:
        """`size` of one row's value."""
        if row >= self.kind.shape[0]:
            return float("nan")
        d = value - expected  # in plain floats, the same arithmetic as `size`
        kind = int(self.kind[row])
        return d if kind == POINTS else d / float(self.cores[row]) if kind == LOAD else d / max(abs(expected), 1.0)

    def size(self, value: np.ndarray, expected: np.ndarray) -> np.ndarray:
        """Signed departure of `value` from `expected` in each row's unit (NaN where either is unknown)."""
        n = min(value.shape[0], self.kind.shape[0])
        out = np.full(value.shape[0], np.nan)
        v, e, k = value[:n], expected[:n], self.kind[:n]
        with np.errstate(invalid="ignore", divide="ignore"):
            d = v - e
            rel = d / np.maximum(np.abs(e), 1.0)
            out[:n] = np.where(k == POINTS, d, np.where(k == LOAD, d / self.cores[:n], rel))
        return out


def describe_size(kind: int, size: float, floor: float | None = None) -> str:
    """A departure in words: "+2 points", "+0.8 load per core", "+35%"; with the floor when below it."""
    if math.isnan(size):
        return "size unknown"
    if kind == POINTS:
        text = f"{size:+.1f} points" if abs(size) < 10 else f"{size:+.0f} points"
        below = f"below the {floor:g}-point floor" if floor is not None else ""
    elif kind == LOAD:
        text = f"{size:+.2f} load per core"
        below = f"below the {floor:g} per-core floor" if floor is not None else ""
    else:
        text = f"{100 * size:+.0f}%" if np.isfinite(size) else ("from zero" if size > 0 else "to zero")
        below = f"below the {100 * floor:g}% floor" if floor is not None else ""
    return f"{text}, {below}" if floor is not None and abs(size) < floor else text
