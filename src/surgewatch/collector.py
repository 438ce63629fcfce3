"""The async poll scheduler: one loop per source, each on its own interval and timeout.

A poll is scheduled only after the previous one finished (no pile-up). A failing or slow source marks
itself stale with its error text and never delays the others. Readings land in `pending`, which the
engine drains once per tick.

Sources that answer on the spot (sources.base.Immediate: this machine, the demo) need no task: one timer per
interval polls all of them together on a fixed beat, so a daemon watching only this machine wakes once a second
for its polls rather than once per source (each wake-up of a task costs more than such a poll).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .sources.base import Immediate, Reading, Source, SourceError
from .sources.sanity import screen

log = logging.getLogger("surgewatch.collector")


@dataclass
class SourceHealth:
    """What the collector knows of one source; frontends show it."""

    name: str
    interval: float
    demo: bool
    ok: bool = False
    error: str | None = None
    last_success: float | None = None
    last_attempt: float | None = None
    last_latency: float | None = None
    polls: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    partial: bool = False  # the last reading came with per-part errors (e.g. one PromQL query failed)
    series: set[str] = field(default_factory=set)
    details: dict[str, Any] = field(default_factory=dict)

    def stale(self, now: float) -> bool:
        """No good reading within three intervals (or the last attempt failed)."""
        if self.last_success is None:
            return self.error is not None
        return (not self.ok) or (now - self.last_success > 3 * self.interval + 1.0)


class Collector:
    """Runs every source's poll loop and collects readings for the engine."""

    def __init__(self, sources: Sequence[Source], clock: Callable[[], float] = time.time) -> None:
        self.sources = list(sources)
        self.clock = clock
        self.health = {s.name: SourceHealth(s.name, s.interval, s.demo) for s in self.sources}
        self.pending: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: dict[float, asyncio.Handle] = {}  # per interval: the next poll of its Immediate sources
        self._due: dict[str, float] = {}  # Immediate sources backing off: loop time of their next poll
        self._polled: dict[str, float] = {}  # driven Immediate sources: loop time of their last poll
        self._handed_off: dict[str, asyncio.Task[bool]] = {}  # Immediate sources whose poll went to a task
        self._driven: tuple[Source, ...] = ()  # Immediate sources polled by poll_driven (see start)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self.on_error: Callable[[str, str], None] | None = None
        self._rejected_seen: dict[str, frozenset[str]] = {}  # per source: the series whose values it rejected last

    def start(self, driven: float | None = None) -> None:
        """Start polling (call inside the running event loop): a task per source that waits on I/O, a shared
        timer per interval for the Immediate ones, their first polls at once. With `driven` (the engine's tick),
        the Immediate sources with that interval get no timer: poll_driven() polls them right before each tick,
        so a tick and its polls are one wake-up."""
        if self._started:
            return
        self._started = True
        self._loop = loop = asyncio.get_running_loop()
        batches: dict[float, list[Source]] = {}
        for s in self.sources:
            if isinstance(s, Immediate):
                batches.setdefault(s.interval, []).append(s)
            else:
                self._tasks.append(asyncio.create_task(self._loop_of(s), name=f"poll {s.name}"))
        now = loop.time()
        for interval, group in batches.items():
            if interval == driven:
                self._driven = tuple(group)
                self._timers[-interval] = loop.call_soon(self._poll_group, self._driven, now)  # the first polls
            else:
                self._timers[interval] = loop.call_at(now, self._poll_batch, loop, now, interval, tuple(group))

    def poll_driven(self) -> None:
        """Poll the driven Immediate sources (see start) that are due: half an interval or more since their last
        poll and past their back-off (less half an interval), so polls keep the ticks' beat."""
        if not self._driven or self._loop is None:
            return
        now = self._loop.time()
        due = [s for s in self._driven if now - self._polled.get(s.name, -math.inf) >= s.interval / 2
               and self._due.get(s.name, now) - s.interval / 2 <= now]
        self._poll_group(due, now)

    def _poll_group(self, group: Sequence[Source], now: float) -> None:
        """Poll these Immediate sources one after the other (a fraction of a millisecond: one wall time for all)."""
        if not group:
            return
        start = self.clock()
        for s in group:
            if s.name not in self._handed_off:
                self._poll_immediate(s, now, start)

    def _poll_batch(self, loop: asyncio.AbstractEventLoop, when: float, interval: float,
                    group: tuple[Source, ...]) -> None:
        """The timer of the Immediate sources with one interval: poll those due, then set the next beat."""
        now = loop.time()
        self._poll_group([s for s in group if self._due.get(s.name, now) <= now + 1e-3], now)
        nxt = when + interval
        if nxt <= loop.time():  # fell behind (suspend, overload): the next beat counts from now
            nxt = loop.time() + interval
        self._timers[interval] = loop.call_at(nxt, self._poll_batch, loop, nxt, interval, group)

    def _poll_immediate(self, source: Source, now: float, start: float) -> None:
        """One poll of an Immediate source on the spot (handed to a task when it says it cannot answer now);
        `now` in loop time, `start` in wall time."""
        h = self.health[source.name]
        mono = time.monotonic()
        self._polled[source.name] = now
        try:
            reading = source.poll_now()  # type: ignore[attr-defined]  # an Immediate source (see start)
        except Exception as exc:
            h.last_attempt = start
            h.polls += 1
            self._failed(h, exc)
        else:
            if reading is None:
                task = asyncio.create_task(self.poll_once(source), name=f"poll {source.name}")
                self._handed_off[source.name] = task
                task.add_done_callback(lambda _t: self._handed_off.pop(source.name, None))
                return
            h.last_attempt = start
            h.polls += 1
            self._take(h, reading, mono, start)
        if h.consecutive_failures > 1:  # back off as _loop_of does: polled at the first beat after this
            self._due[source.name] = now + self._backoff(source, h)
        else:
            self._due.pop(source.name, None)

    def answered(self) -> bool:
        """Whether every source has finished a poll (with a reading or an error)."""
        return not self.unanswered()

    def unanswered(self) -> list[str]:
        """The sources that have not finished a poll yet (neither a reading nor an error)."""
        return [name for name, h in self.health.items() if not (h.ok or h.error is not None)]

    async def poll_once(self, source: Source) -> bool:
        """Poll one source now; record the reading or the error. True on success."""
        h = self.health[source.name]
        start = self.clock()
        mono = time.monotonic()
        h.last_attempt = start
        h.polls += 1
        try:
            async with asyncio.timeout(source.timeout):  # no extra task per poll, unlike wait_for
                reading = await source.poll()
        except TimeoutError:
            self._fail(h, f"timed out after {source.timeout:g}s")
            return False
        except Exception as exc:
            self._failed(h, exc)
            return False
        return self._take(h, reading, mono)

    def _failed(self, h: SourceHealth, exc: Exception) -> None:
        """A poll raised: its one-line message, or for a bug in one source (which must not stop the others)
        the traceback in the log and its type and text as the error."""
        if isinstance(exc, SourceError):
            self._fail(h, str(exc) or exc.__class__.__name__)
            return
        log.error("source %s crashed", h.name, exc_info=exc)
        self._fail(h, f"internal error: {exc.__class__.__name__}: {exc}")

    def _take(self, h: SourceHealth, reading: Reading, mono: float, at: float | None = None) -> bool:
        """Keep a reading's plausible values (see sources.sanity); True unless nothing was left. `at`: the
        time of success (default now)."""
        values, rejected = screen(reading.values)
        if rejected and not self._rejected(h, rejected, values):
            return False
        h.last_latency = time.monotonic() - mono
        h.ok, h.error = True, None
        h.last_success = self.clock() if at is None else at
        h.consecutive_failures = 0
        self.pending.update(values)
        h.series.update(values)
        h.partial = bool(reading.details.get("errors"))
        if reading.details:
            h.details = reading.details
        return True

    def _rejected(self, h: SourceHealth, rejected: dict[str, str], kept: dict[str, float]) -> bool:
        """Say (once per change) which values were rejected and why; a reading with nothing left is a failure."""
        more = f" (and {len(rejected) - 1} more)" if len(rejected) > 1 else ""
        line = f"{next(iter(rejected.values()))}{more}"
        if not kept:
            self._fail(h, line)
            return False
        names = frozenset(rejected)
        if self._rejected_seen.get(h.name) != names:
            self._rejected_seen[h.name] = names
            log.warning("source %s: %s", h.name, line)
        return True

    def _fail(self, h: SourceHealth, message: str) -> None:
        first = h.ok or h.error != message
        h.ok, h.error = False, message
        h.failures += 1
        h.consecutive_failures += 1
        if first:
            log.warning("source %s: %s", h.name, message)
            if self.on_error:
                self.on_error(h.name, message)

    async def _loop_of(self, source: Source) -> None:
        # Spread first polls a little so many sources do not fire in the same millisecond. (random only where it is
        # used: sources polled on their own loop, and back-off; a local daemon never loads it, issue 14.)
        import random

        await asyncio.sleep(random.uniform(0, min(0.05, source.interval / 10)))
        while True:
            started = time.monotonic()
            await self.poll_once(source)
            h = self.health[source.name]
            delay = self._backoff(source, h) if h.consecutive_failures > 1 else source.interval
            await asyncio.sleep(max(0.0, delay - (time.monotonic() - started)))

    @staticmethod
    def _backoff(source: Source, h: SourceHealth) -> float:
        """Seconds before polling a source that failed more than once again: doubling, capped at 60 s."""
        import random

        delay = min(60.0, source.interval * 2 ** min(h.consecutive_failures - 1, 6))
        return delay * random.uniform(0.9, 1.1)

    def shift_time(self, delta: float) -> None:
        """Move every held wall time by `delta` seconds (the wall clock was stepped; see clock.py)."""
        for h in self.health.values():
            if h.last_success is not None:
                h.last_success += delta
            if h.last_attempt is not None:
                h.last_attempt += delta

    def drain(self) -> dict[str, float]:
        """Take the readings collected since the previous tick."""
        out, self.pending = self.pending, {}
        return out

    async def stop(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers = {}
        tasks = [*self._tasks, *self._handed_off.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        self._handed_off = {}
        self._driven = ()
        self._started = False
        for s in self.sources:
            try:
                await s.close()
            except Exception as exc:  # closing must not hide other shutdown work
                log.debug("closing %s: %s", s.name, exc)
