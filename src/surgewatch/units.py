"""Parsing and formatting of durations, byte counts and rates for humans."""

from __future__ import annotations

import math
import re

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """Parse "250ms", "5s", "2m", "1h", "1d" into seconds; raise ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError(f'must be a duration like "30s", got {text!r}')
    m = _DURATION_RE.match(text)
    if not m:
        raise ValueError(f'must be a duration like "30s", got {text!r}')
    return float(m[1]) * _FACTORS[m[2]]


def format_duration(seconds: float) -> str:
    """Format seconds compactly: 45s, 3m10s, 2h05m, 3d4h."""
    if math.isnan(seconds):
        return "?"
    s = round(abs(seconds))
    sign = "-" if seconds < 0 else ""
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{sign}{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{sign}{s // 86400}d{(s % 86400) // 3600}h"


def format_bytes(n: float, suffix: str = "") -> str:
    """Format a byte count or rate with binary prefixes: 1.2K, 34M, 5.0G."""
    if math.isnan(n):
        return "–"
    units = ["", "K", "M", "G", "T", "P"]
    value = float(n)
    for unit in units:
        if abs(value) < 1024 or unit == units[-1]:
            if unit == "":
                return f"{value:.0f}{suffix}"
            return f"{value:.1f}{unit}{suffix}" if abs(value) < 10 else f"{value:.0f}{unit}{suffix}"
        value /= 1024
    return f"{value:.0f}{suffix}"  # pragma: no cover


def format_number(x: float) -> str:
    """Format a count with thousands separators, or a short float."""
    if math.isnan(x):
        return "–"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:.1f}"
