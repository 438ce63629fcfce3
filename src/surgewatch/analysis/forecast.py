"""Capacity forecast: headroom from the load model and time to saturation from the traffic trend."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .correlation import LoadModel

# The level at which a host metric counts as saturated, unless a rule says otherwise.
DEFAULT_LIMITS = {"cpu.percent": 90.0, "mem.percent": 90.0}
HORIZON = 365 * 86400.0  # beyond this a level counts as never reached


@dataclass(frozen=True, slots=True)
class Capacity:
    """Headroom as a multiple of current traffic, and seconds until the limit at the current growth."""

    limit: float
    traffic_at_limit: float
    headroom: float
    seconds_to_limit: float
    growth_per_s: float

    @property
    def known(self) -> bool:
        return not math.isnan(self.headroom)


UNKNOWN = Capacity(float("nan"), float("nan"), float("nan"), float("nan"), float("nan"))


def growth_rate(ts: np.ndarray, traffic: np.ndarray, min_t: float = 3.0) -> float:
    """Exponential growth rate of traffic per second (log-linear least squares).

    0.0 when the trend is not `min_t` standard errors away from flat; NaN with too few points."""
    ok = ~np.isnan(traffic) & (traffic > 0) & ~np.isnan(ts)
    if ok.sum() < 10:
        return float("nan")
    t, y = ts[ok] - ts[ok][0], np.log(traffic[ok])
    tc = t - t.mean()
    var = float(np.sum(tc**2))
    if var == 0:
        return float("nan")
    slope = float(np.sum(tc * (y - y.mean())) / var)
    resid = y - y.mean() - slope * tc
    se = math.sqrt(float(np.sum(resid**2)) / max(t.shape[0] - 2, 1) / var)
    return slope if abs(slope) > min_t * se else 0.0


def headroom_multiple(intercept: float, coefs: np.ndarray, x_now: np.ndarray, level: float) -> float:
    """The multiple of current traffic (all drivers scaled together) at which the model reaches `level`."""
    contrib = float(np.dot(coefs, x_now))
    if not contrib > 0:
        return float("nan")
    return max((level - intercept) / contrib, 0.0)


def seconds_to_level(intercept: float, coefs: np.ndarray, x_now: np.ndarray, growth: np.ndarray,
                     level: float) -> float:
    """Seconds until intercept + Σ coefs·x_now·exp(growth·t) reaches `level` (inf if never, nan if unknown)."""
    c = coefs * x_now
    if np.any(np.isnan(c)) or np.any(np.isnan(growth)):
        return float("nan")
    if intercept + float(np.sum(c)) >= level:
        return 0.0
    up = (growth > 0) & (c > 0)
    if not np.any(up):
        return float("inf")

    def f(t: float) -> float:
        return intercept + float(np.sum(c * np.exp(np.minimum(growth * t, 700.0))))

    if c.shape[0] == 1:
        t = math.log((level - intercept) / float(c[0])) / float(growth[0])
        return t if t <= HORIZON else float("inf")
    if f(HORIZON) < level:
        return float("inf")
    lo, hi = 0.0, HORIZON
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) < level else (lo, mid)
    return hi


def capacity(model: LoadModel | None, traffic_now: float, limit: float, growth: float) -> Capacity:
    """Headroom and time to `limit` for one single-driver model; UNKNOWN when the model is poor."""
    if model is None or not model.usable or not traffic_now > 0:
        return UNKNOWN
    at_limit = (limit - model.intercept) / model.slope
    head = headroom_multiple(model.intercept, np.array([model.slope]), np.array([traffic_now]), limit)
    secs = seconds_to_level(model.intercept, np.array([model.slope]), np.array([traffic_now]),
                            np.array([growth]), limit)
    return Capacity(limit, at_limit, head, secs, growth)


def seconds_to_level_many(intercept: np.ndarray, coefs: np.ndarray, x_now: np.ndarray, growth: np.ndarray,
                          level: np.ndarray) -> np.ndarray:
    """`seconds_to_level` for H models at once ([H] intercepts and levels, [H, K] coefs, traffic, growth).

    Padding drivers carry coefficient 0. One driver has a closed form; several are solved by bisection."""
    c = coefs * x_now
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        unknown = np.any(np.isnan(c) | (np.isnan(growth) & (coefs != 0)), axis=1) | np.isnan(level)
        g = np.nan_to_num(growth, nan=0.0)
        c = np.nan_to_num(c, nan=0.0)
        now = intercept + c.sum(axis=1)
        up = np.any((g > 0) & (c > 0), axis=1)
        out = np.where(now >= level, 0.0, np.where(up, np.nan, np.inf))
        todo = np.flatnonzero(np.isnan(out) & ~unknown)
        if todo.shape[0]:
            a, cc, gg, lv = intercept[todo], c[todo], g[todo], level[todo]
            single = np.sum(cc != 0, axis=1) == 1
            lo, hi = np.zeros(todo.shape[0]), np.full(todo.shape[0], HORIZON)

            def f(t: np.ndarray) -> np.ndarray:
                return a + np.sum(cc * np.exp(np.minimum(gg * t[:, None], 700.0)), axis=1)

            reach = f(hi) >= lv
            if not single.all():  # one driver has the closed form below: bisect only when several drive it
                for _ in range(60):
                    mid = 0.5 * (lo + hi)
                    below = f(mid) < lv
                    lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
            j = np.argmax(cc != 0, axis=1)
            cj = cc[np.arange(todo.shape[0]), j]
            gj = gg[np.arange(todo.shape[0]), j]
            closed = np.log((lv - a) / cj) / gj
            res = np.where(single, closed, hi)
            out[todo] = np.where(reach | single, np.where(res <= HORIZON, res, np.inf), np.inf)
        return np.where(unknown, np.nan, out)
