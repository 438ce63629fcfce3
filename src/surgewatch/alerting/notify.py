"""Notification policy between the rules' exact per-series transitions and the sinks.

Each alert (one fingerprint) remembers what was last notified and when. A new transition becomes a
notification unless it only repeats what receivers already know (a flap inside `min_interval`
collapses), a silence mutes it, or `min_interval` has not passed (then it waits and the newest state
goes out). Notifications of one rule wait `group_wait` in one group and go out together, each event
carrying the group's series list. Firing alerts are re-notified every `repeat` unless acknowledged.
A resolve is sent only for an alert whose firing was sent, also while silenced, so receivers never
keep an alert open that surgewatch closed.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import RuleConfig
from ..model import AlertEvent

GROUP_LIST_MAX = 100  # series names carried in one event's `group` (the first ones, sorted)


@dataclass(slots=True)
class Current:
    """What the rules know of an alert now: its fresh firing event (None unless firing), silenced, acked."""

    firing: AlertEvent | None
    silenced: bool
    acked: bool


@dataclass(slots=True)
class _Note:
    """The notification state of one alert."""

    rule: RuleConfig
    sent: str | None = None  # "firing" / "resolved": what receivers were last told
    sent_at: float = float("-inf")
    latest: AlertEvent | None = None  # the newest transition (or repeat) not yet notified
    repeat: bool = False  # `latest` is a repeat of a still-firing alert
    suppressed: bool = False  # `latest` is a firing withheld by a silence


@dataclass(slots=True)
class _Group:
    opened: float
    fps: dict[str, None] = field(default_factory=dict)


class Notifier:
    """Decides which transitions reach the sinks, and when."""

    def __init__(self) -> None:
        self.notes: dict[str, _Note] = {}
        self._groups: dict[str, _Group] = {}
        self._wakes: list[tuple[float, int, str, str]] = []
        self._seq = itertools.count()

    def transition(self, e: AlertEvent, rule: RuleConfig, silenced: bool, now: float) -> None:
        """Record a firing or resolved transition of one alert."""
        note = self.notes.get(e.fingerprint)
        if note is None:
            note = self.notes[e.fingerprint] = _Note(rule)
        note.rule, note.latest, note.repeat = rule, e, False
        self._consider(e.fingerprint, note, silenced, now)

    def release(self, fp: str, now: float) -> None:
        """A silence over this (still firing) alert ended: send what it withheld."""
        note = self.notes.get(fp)
        if note is not None and note.suppressed:
            note.suppressed = False
            self._consider(fp, note, False, now)

    def rename(self, fp: str, rule: RuleConfig) -> None:
        """The alert's rule was reloaded with new settings."""
        note = self.notes.get(fp)
        if note is not None:
            note.rule = rule

    def shift_time(self, delta: float) -> None:
        """Move every held time by `delta` seconds (the wall clock was stepped): waits keep their length."""
        self._wakes = [(t + delta, seq, what, key) for t, seq, what, key in self._wakes]
        heapq.heapify(self._wakes)
        for note in self.notes.values():
            note.sent_at += delta
        for group in self._groups.values():
            group.opened += delta

    def due(self, now: float, current: Callable[[str], Current],
            silenced: Callable[[str], bool]) -> list[AlertEvent]:
        """The notifications to send at `now`, in order (groups flush when their wait is over).

        `current(fp)` describes a live alert (for repeats); `silenced(fp)` says if a silence covers it now."""
        out: list[AlertEvent] = []
        while self._wakes and self._wakes[0][0] <= now:
            _t, _seq, what, key = heapq.heappop(self._wakes)
            if what == "flush":
                out.extend(self._flush(key, now, silenced))
            elif what == "retry":
                note = self.notes.get(key)
                if note is not None:
                    self._consider(key, note, silenced(key), now)
            elif what == "repeat":
                self._repeat(key, now, current)
            elif what == "gc":
                self._gc(key, now)
        return out

    # -- internals ------------------------------------------------------------------------------

    def _wake(self, t: float, what: str, key: str) -> None:
        heapq.heappush(self._wakes, (t, next(self._seq), what, key))

    @staticmethod
    def _wanted(note: _Note, silenced: bool) -> bool:
        """Whether `note.latest` still tells receivers something new (clears it when not)."""
        e = note.latest
        if e is None:
            return False
        if e.event == "resolved":
            if note.sent != "firing":  # never announced, or already closed: nothing to close
                note.latest = None
                return False
            return True
        if note.sent == "firing" and not note.repeat:  # resolved and fired again before anyone heard
            note.latest = None
            return False
        if silenced:
            note.suppressed = True
            return False
        note.suppressed = False
        return True

    def _consider(self, fp: str, note: _Note, silenced: bool, now: float) -> None:
        if not self._wanted(note, silenced):
            self._gc(fp, now)
            return
        ready = note.sent_at + note.rule.min_interval
        if ready > now:
            self._wake(ready, "retry", fp)
            return
        group = self._groups.get(note.rule.name)
        if group is None:
            group = self._groups[note.rule.name] = _Group(now)
            self._wake(now + note.rule.group_wait, "flush", note.rule.name)
        group.fps[fp] = None

    def _flush(self, rule_name: str, now: float, silenced: Callable[[str], bool]) -> list[AlertEvent]:
        group = self._groups.pop(rule_name, None)
        if group is None:
            return []
        chosen: dict[str, list[tuple[str, _Note, AlertEvent]]] = {"firing": [], "resolved": []}
        for fp in group.fps:
            note = self.notes.get(fp)
            if note is None or not self._wanted(note, silenced(fp)):
                continue
            assert note.latest is not None
            chosen[note.latest.event].append((fp, note, note.latest))
        out: list[AlertEvent] = []
        for event, items in chosen.items():
            names = tuple(sorted(e.series for _fp, _n, e in items)[:GROUP_LIST_MAX]) if len(items) > 1 else ()
            for fp, note, e in items:
                if names:  # the event is this module's until returned: set the group in place (cheap)
                    object.__setattr__(e, "group", names)
                out.append(e)
                note.sent, note.sent_at, note.latest, note.repeat = event, now, None, False
                if event == "firing" and note.rule.repeat:
                    self._wake(now + note.rule.repeat, "repeat", fp)
                elif event == "resolved":
                    self._wake(now + note.rule.min_interval, "gc", fp)
        return out

    def _repeat(self, fp: str, now: float, current: Callable[[str], Current]) -> None:
        note = self.notes.get(fp)
        if note is None or note.sent != "firing" or note.latest is not None or not note.rule.repeat:
            return
        cur = current(fp)
        if cur.firing is None:
            return
        if cur.acked or cur.silenced or now < note.sent_at + note.rule.repeat - 1e-9:
            self._wake(max(now, note.sent_at) + note.rule.repeat, "repeat", fp)
            return
        note.latest, note.repeat = cur.firing, True
        self._consider(fp, note, False, now)

    def _gc(self, fp: str, now: float) -> None:
        """Forget an alert nobody needs to hear about any more (keeps memory flat over weeks)."""
        note = self.notes.get(fp)
        if note is None or note.latest is not None or note.sent == "firing":
            return
        if note.sent is None or now >= note.sent_at + note.rule.min_interval:
            del self.notes[fp]
