"""Human names and value formats for metrics, shared by explanations, alerts and every frontend."""

from __future__ import annotations

import math
import re

from .model import split_series
from .units import format_bytes, format_number

_LABELS = {
    "cpu.percent": "CPU",
    "mem.percent": "memory",
    "mem.available_bytes": "memory available",
    "swap.percent": "swap",
    "load.1": "load",
    "load.5": "load5",
    "load.15": "load15",
    "disk.read_bps": "disk read",
    "disk.write_bps": "disk write",
    "net.rx_bps": "net rx",
    "net.tx_bps": "net tx",
    "procs.count": "processes",
    "visitors": "visitors",
    "latency_ms": "latency",
    "status": "status",
    "up": "up",
}
_CORE_RE = re.compile(r"^cpu\.core(\d+)\.percent$")


def metric_label(metric: str) -> str:
    """A short human name: cpu.percent → CPU, cpu.core3.percent → CPU3."""
    if metric in _LABELS:
        return _LABELS[metric]
    m = _CORE_RE.match(metric)
    if m:
        return f"CPU{m[1]}"
    return metric


def format_value(metric: str, value: float) -> str:
    """A value in the metric's natural unit: 92%, 1.2M/s, 3.14, 4,100."""
    if math.isnan(value):
        return "–"
    if metric.endswith("percent"):
        return f"{value:.0f}%" if abs(value) >= 10 else f"{value:.1f}%"
    if metric.endswith("_bps"):
        return format_bytes(value, "/s")
    if metric.endswith("_bytes"):
        return format_bytes(value)
    if metric.startswith("load."):
        return f"{value:.2f}"
    if metric.endswith("_ms"):
        return f"{value:.0f}ms"
    return format_number(value)


def series_label(name: str) -> str:
    """`host:web-1/cpu.percent` → `web-1 CPU`."""
    _kind, who, metric = split_series(name)
    return f"{who} {metric_label(metric)}"
