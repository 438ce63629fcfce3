"""Which values a source may hand on: non-finite and absurd numbers are rejected with a one-line reason.

The rules, per metric, from what the number means rather than from what was seen:
- never NaN or ±inf (a Prometheus `+Inf`/`NaN` gauge, a JSON `1e999`, an access log's `"rt":"inf"`);
- never beyond MAX_MAGNITUDE (1e15) in size: no real rate, count, latency or byte figure a host or a site
  reports reaches it (a petabyte per second, a billion visitors a million times over), while 1.75e308 would
  overflow every sum and chart downstream;
- never negative where the quantity cannot be (percentages, rates, bytes, counts, visitors, latencies, loads);
- a host's CPU, memory and swap percentages never above 100 (MemAvailable > MemTotal, a counter reset).
A metric of a custom query with another name (`host:x/temperature`) gets only the first two rules.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping

import numpy as np

MAX_MAGNITUDE = 1e15
PERCENT_SLACK = 1e-6  # float rounding in 100 * (1 - idle / total)
_NON_NEGATIVE_RE = re.compile(
    r"(percent|_bps|bytes|count|visitors|pageviews|sessions|requests|rps|latency_ms|_ms|_seconds|load\.\d+"
    r"|status|up|share|rate|lift)$")
_BOUNDED_PERCENT_RE = re.compile(r"^(cpu(\.core\d+)?|mem|swap)\.percent$")


def reject_reason(name: str, value: float) -> str | None:
    """Why `value` is not a plausible reading of series `name`, or None when it is."""
    if not math.isfinite(value):
        return "not a finite number"
    if abs(value) > MAX_MAGNITUDE:
        return f"beyond any real metric (|value| > {MAX_MAGNITUDE:g})"
    if 0 <= value <= 100 + PERCENT_SLACK:  # most readings: no need to look at the metric's name
        return None
    nonneg, bounded = _metric_rules(name.rsplit("/", 1)[-1])
    if value < 0 and nonneg:
        return "negative, which this metric cannot be"
    if value > 100 + PERCENT_SLACK and bounded:
        return "over 100%"
    return None


@functools.lru_cache(maxsize=1024)
def _metric_rules(metric: str) -> tuple[bool, bool]:
    """Whether a metric cannot be negative, and whether it is a host percentage bounded by 100 (a fleet has a
    dozen metrics: each is matched once, not once per host)."""
    return bool(_NON_NEGATIVE_RE.search(metric)), bool(_BOUNDED_PERCENT_RE.match(metric))


def screen(values: Mapping[str, float]) -> tuple[dict[str, float], dict[str, str]]:
    """Split a reading into the values kept and, for the rest, one-line reasons (`name = value: why`)."""
    kept: dict[str, float] = {}
    rejected: dict[str, str] = {}
    for name, v in values.items():
        # reject_reason's answer for most readings, without a call per reading (NaN fails both tests): in 0..100,
        # and a large positive value of a metric that is not a bounded percentage (bytes, rates)
        if 0.0 <= v <= 100.0 or (100.0 < v <= MAX_MAGNITUDE and not _metric_rules(name[name.rfind("/") + 1:])[1]):
            kept[name] = v
            continue
        why = reject_reason(name, v)
        if why is None:
            kept[name] = v
        else:
            rejected[name] = f"{name} = {v!r} rejected: {why}"
    return kept, rejected


MAX_RESPONSE_SECONDS = 86400.0  # a response time over a day is not one (servers and proxies time out long before)


def plausible_seconds(value: object) -> float | None:
    """A response time in seconds from a log field, or None unless finite and within 0 .. one day."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return v if math.isfinite(v) and 0.0 <= v <= MAX_RESPONSE_SECONDS else None


@functools.lru_cache(maxsize=256)
def _rules(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per series: whether it cannot be negative, and whether it is a host percentage bounded by 100."""
    metrics = [n.rsplit("/", 1)[-1] for n in names]
    return (np.array([bool(_NON_NEGATIVE_RE.search(m)) for m in metrics], dtype=bool),
            np.array([bool(_BOUNDED_PERCENT_RE.match(m)) for m in metrics], dtype=bool))


def absurd(names: tuple[str, ...], values: np.ndarray) -> np.ndarray:
    """Where `values` (one per name, or names × time) break the rules above: the vectorised reject_reason.

    NaN counts too (it is no reading). Used where recorded values are read back (replay, report, analyze), so a
    recording made before these rules, or crafted, is judged as a live poll would be today.
    """
    nonneg, pct = _rules(names)
    if values.ndim == 2:
        nonneg, pct = nonneg[:, None], pct[:, None]
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (np.abs(values) > MAX_MAGNITUDE)
        bad |= nonneg & (values < 0)
        bad |= pct & (values > 100 + PERCENT_SLACK)
    return np.asarray(bad, dtype=bool)
