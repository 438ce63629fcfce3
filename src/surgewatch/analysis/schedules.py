"""Declared schedules (`[[schedule]]`): which cron windows are open at a time, and on which hosts.

Pure (no I/O): given a time, each schedule's window is the last cron fire at or before it plus the
schedule's duration. croniter costs ~0.2 ms per step, so each schedule keeps its answer until the next
boundary (window end or next fire) and a tick in between costs a comparison.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from ..model import glob_match

# UTC without zoneinfo: the zone database (zoneinfo, sysconfig: ~0.4 MB) only for a config in another zone
UTC_ZONE: tzinfo = UTC  # datetime.UTC: timezone.utc


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A named cron window of declared load: `cron` fires, load for `duration` seconds is expected."""

    name: str
    cron: str
    duration: float
    hosts: tuple[str, ...] = ()  # host names or globs; empty: every host

    def covers(self, host: str) -> bool:
        """Whether the schedule applies to `host` (no hosts listed: every host)."""
        return not self.hosts or any(glob_match(h, host) for h in self.hosts)


@dataclass(frozen=True, slots=True)
class Window:
    """One open window of a schedule: [start, end) in UNIX seconds."""

    schedule: ScheduleSpec
    start: float
    end: float

    def label(self, tz: tzinfo = UTC_ZONE) -> str:
        """`nightly-backup (02:00–02:45)`, the times in the schedule's time zone."""
        return _label(self.schedule.name, self.start, self.end, tz)


@functools.lru_cache(maxsize=256)
def _label(name: str, start: float, end: float, tz: tzinfo) -> str:
    a = datetime.fromtimestamp(start, tz)
    b = datetime.fromtimestamp(end, tz)
    fmt = "%H:%M" if a.second == 0 and b.second == 0 else "%H:%M:%S"
    return f"{name} ({a.strftime(fmt)}–{b.strftime(fmt)})"


def check_cron(expr: str) -> str | None:
    """None if croniter accepts `expr`, else the reason in a few words."""
    from croniter import croniter  # lazy: ~2 MB and 45 modules, only for configs with [[schedule]]

    try:
        croniter(expr, datetime(2026, 1, 1, tzinfo=UTC_ZONE))
    except (ValueError, KeyError, TypeError) as exc:
        return str(exc) or type(exc).__name__
    return None


@dataclass
class _Cached:
    valid_from: float = math.inf
    valid_until: float = -math.inf
    window: Window | None = None


@dataclass
class ScheduleCalendar:
    """The open windows of a set of schedules at a time, cached between cron boundaries."""

    schedules: Sequence[ScheduleSpec] = ()
    tz: tzinfo = UTC_ZONE
    _cache: list[_Cached] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.schedules = tuple(self.schedules)
        self._cache = [_Cached() for _ in self.schedules]

    def open_at(self, ts: float) -> list[Window]:
        """The windows open at `ts` (one per schedule at most: its latest fire)."""
        out = []
        for i, s in enumerate(self.schedules):
            c = self._cache[i]
            if not c.valid_from <= ts < c.valid_until:
                self._cache[i] = c = self._compute(s, ts)
            if c.window is not None:
                out.append(c.window)
        return out

    def covering(self, ts: float, host: str) -> Window | None:
        """The open window that covers `host` at `ts` (the one that ends last if several), or None."""
        best = None
        for w in self.open_at(ts):
            if w.schedule.covers(host) and (best is None or w.end > best.end):
                best = w
        return best

    def _compute(self, s: ScheduleSpec, ts: float) -> _Cached:
        from croniter import croniter  # lazy, as in check_cron

        # get_prev from just after ts so that a fire exactly at ts counts as the current window's start
        it = croniter(s.cron, datetime.fromtimestamp(ts + 1.0, self.tz))
        prev = float(it.get_prev(float))
        if prev > ts:  # the fire in (ts, ts + 1]: it is the next one, not the current one
            prev = float(it.get_prev(float))
        it = croniter(s.cron, datetime.fromtimestamp(ts, self.tz))
        nxt = float(it.get_next(float))
        end = prev + s.duration
        if ts < end:
            return _Cached(max(prev, ts), min(end, nxt), Window(s, prev, end))
        return _Cached(ts, nxt, None)
