"""Declared explanations: `[[schedule]]` windows explain host load; deploy annotations name a likely cause.

Called once per tick from the analyzer with the tick's causes and explanations (anomalous rows only):
an unexplained host anomaly inside an open schedule window covering its host becomes cause `schedule`;
one that *started* inside an annotation's window stays unexplained and names the annotation
("unexplained — started 40s after deploy v2.3 on web-2"). Pure: the engine hands the annotations in.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import MutableMapping, Sequence
from datetime import tzinfo
from typing import TYPE_CHECKING

from ..model import Annotation, Cause, split_series
from ..units import format_duration
from .schedules import UTC_ZONE, ScheduleCalendar, ScheduleSpec

if TYPE_CHECKING:
    from ..config import Config

def zone(name: str) -> tzinfo:
    """The IANA zone `name`; UTC without importing zoneinfo (the small end: most configs never name a zone)."""
    if name == "UTC":
        return UTC_ZONE
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


ONSET_GAP = 60.0  # an anomaly quiet for less than this and back again is the same episode (same start)
UNEXPLAINED_SUFFIX = "; unexplained"


class DeclaredCauses:
    """Applies schedules and annotations to one tick's causes; remembers when each anomaly started."""

    def __init__(self, schedules: Sequence[ScheduleSpec] = (), tz: tzinfo = UTC_ZONE) -> None:
        self.calendar = ScheduleCalendar(schedules, tz)
        self.annotations: tuple[Annotation, ...] = ()
        self._onset: dict[int, tuple[float, float]] = {}  # row -> (started, last seen anomalous)
        self._covers: dict[tuple[int, str], bool] = {}  # (id of a schedule, host) -> whether it covers the host
        self._named: dict[tuple[str, float], str | None] = {}  # (host, started) -> likely cause, while unchanged
        self._starts: list[float] = []  # annotation times, sorted (bisect)
        self._longest = 0.0  # the longest annotation window
        self._pruned = -math.inf

    @staticmethod
    def schedules_of(config: Config) -> tuple[list[ScheduleSpec], tzinfo]:
        """A config's [[schedule]] tables as specs, with the zone their cron expressions are read in."""
        specs = [ScheduleSpec(s.name, s.cron, s.duration, s.hosts) for s in config.schedules]
        return specs, zone(config.monitor.timezone)

    def set_schedules(self, schedules: Sequence[ScheduleSpec], tz: tzinfo = UTC_ZONE) -> None:
        """Replace the schedules (a config reload)."""
        self.calendar = ScheduleCalendar(schedules, tz)
        self._covers.clear()

    def set_annotations(self, annotations: Sequence[Annotation]) -> None:
        """Replace the known annotations (the engine re-reads the store when it changes)."""
        self.annotations = tuple(sorted(annotations, key=lambda a: a.ts))
        self._starts = [a.ts for a in self.annotations]
        self._longest = max((a.duration for a in self.annotations), default=0.0)
        self._named.clear()

    def apply(self, ts: float, names: Sequence[str],
              cause: MutableMapping[int, tuple[Cause, str | None]], explanation: MutableMapping[int, str]) -> None:
        """Rewrite `cause` and `explanation` (rows anomalous this tick) in place."""
        onset = self._onset
        for r in explanation:
            prev = onset.get(r)
            onset[r] = (prev[0] if prev is not None and 0.0 <= ts - prev[1] <= ONSET_GAP else ts, ts)
        if len(onset) > len(explanation) and not 0.0 <= ts - self._pruned <= ONSET_GAP:
            self._pruned = ts
            for r in [r for r, (_s, last) in onset.items() if not 0.0 <= ts - last <= ONSET_GAP]:
                del onset[r]
        if not self.calendar.schedules and not self.annotations:
            return
        windows = self.calendar.open_at(ts) if self.calendar.schedules else []
        for r, (c, _who) in list(cause.items()):
            if c != Cause.UNEXPLAINED or r >= len(names):
                continue
            kind, host, _metric = split_series(names[r])
            if kind != "host":
                continue
            window = None
            for w in windows:
                if self._covered(w.schedule, host) and (window is None or w.end > window.end):
                    window = w
            text = explanation.get(r, "")
            head, sep, verdict = text.rpartition("; ")
            if window is not None:
                cause[r] = (Cause.SCHEDULE, None)
                inside = f"inside schedule {window.label(self.calendar.tz)}"
                explanation[r] = f"{head}{sep}{verdict.replace('unexplained', inside, 1)}" \
                    if "unexplained" in verdict else f"{text}; {inside}"
                continue
            started = onset[r][0] if r in onset else None
            if started is None or not self.annotations:
                continue
            key = (host, started)
            if key not in self._named:
                if len(self._named) > 4096:
                    self._named.clear()
                self._named[key] = self.likely_cause(host, started)
            note = self._named[key]
            if note is not None:
                base = text if "unexplained" in verdict else f"{text}{UNEXPLAINED_SUFFIX}"
                explanation[r] = f"{base} — {note}"

    def _covered(self, schedule: ScheduleSpec, host: str) -> bool:
        key = (id(schedule), host)
        hit = self._covers.get(key)
        if hit is None:
            hit = self._covers[key] = schedule.covers(host)
        return hit

    def likely_cause(self, host: str, started: float) -> str | None:
        """'started 40s after deploy v2.3 on web-2' for the latest annotation whose window holds `started`."""
        i = bisect.bisect_right(self._starts, started)
        while i > 0:
            i -= 1
            a = self.annotations[i]
            if a.ts < started - self._longest:
                break
            if started < a.end and a.applies_to(host):
                where = f" on {a.host}" if a.host else ""
                return f"started {format_duration(started - a.ts)} after {a.text}{where}"
        return None
