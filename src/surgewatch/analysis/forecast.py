"""Capacity forecast: headroom from the load model and time to saturation from the traffic trend."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .correlation import LoadModel

# The level at which a host metric counts as saturated, unless a rule says otherwise.
DEFAULT_LIMITS = {"cpu.percent": 90.0, "mem.percent": 90.0}


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
        return self.headroom == self.headroom


UNKNOWN = Capacity(float("nan"), float("nan"), float("nan"), float("nan"), float("nan"))


def growth_rate(ts: np.ndarray, traffic: np.ndarray) -> float:
    """Exponential growth rate of traffic per second (log-linear least squares; NaN if unknown)."""
    ok = ~np.isnan(traffic) & (traffic > 0) & ~np.isnan(ts)
    if ok.sum() < 10:
        return float("nan")
    t, y = ts[ok] - ts[ok][0], np.log(traffic[ok])
    var = float(np.mean((t - t.mean()) ** 2))
    if var == 0:
        return float("nan")
    return float(np.mean((t - t.mean()) * (y - y.mean())) / var)


def capacity(model: LoadModel | None, traffic_now: float, limit: float, growth: float) -> Capacity:
    """Headroom and time to `limit`; UNKNOWN when the model is poor or traffic is unknown."""
    if model is None or not model.usable or not traffic_now > 0:
        return UNKNOWN
    at_limit = (limit - model.intercept) / model.slope
    if at_limit <= 0:
        return Capacity(limit, at_limit, 0.0, 0.0, growth)
    head = at_limit / traffic_now
    if head <= 1.0:
        secs = 0.0
    elif growth == growth and growth > 1e-6:
        secs = math.log(head) / growth
    else:
        secs = float("inf")
    return Capacity(limit, at_limit, head, secs, growth)
