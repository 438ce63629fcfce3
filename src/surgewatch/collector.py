"""The async poll scheduler: one loop per source, each on its own interval and timeout.

A poll is scheduled only after the previous one finished (no pile-up). A failing or slow source marks
itself stale with its error text and never delays the others. Readings land in `pending`, which the
engine drains once per tick.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .sources.base import Source, SourceError
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
        self.on_error: Callable[[str, str], None] | None = None
        self._rejected_seen: dict[str, frozenset[str]] = {}  # per source: the series whose values it rejected last

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._loop(s), name=f"poll {s.name}") for s in self.sources]

    def answered(self) -> bool:
        """Whether every source has finished a poll (with a reading or an error)."""
        return all(h.ok or h.error is not None for h in self.health.values())

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
        except SourceError as exc:
            self._fail(h, str(exc) or exc.__class__.__name__)
            return False
        except Exception as exc:  # a bug in one source must not stop the others
            log.exception("source %s crashed", source.name)
            self._fail(h, f"internal error: {exc.__class__.__name__}: {exc}")
            return False
        values, rejected = screen(reading.values)
        if rejected and not self._rejected(h, rejected, values):
            return False
        h.last_latency = time.monotonic() - mono
        h.ok, h.error = True, None
        h.last_success = self.clock()
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

    async def _loop(self, source: Source) -> None:
        # Spread first polls a little so many sources do not fire in the same millisecond.
        await asyncio.sleep(random.uniform(0, min(0.05, source.interval / 10)))
        while True:
            started = time.monotonic()
            await self.poll_once(source)
            h = self.health[source.name]
            delay = source.interval
            if h.consecutive_failures > 1:  # back off a failing endpoint, capped at 60 s
                delay = min(60.0, source.interval * 2 ** min(h.consecutive_failures - 1, 6))
                delay *= random.uniform(0.9, 1.1)
            await asyncio.sleep(max(0.0, delay - (time.monotonic() - started)))

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
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for s in self.sources:
            try:
                await s.close()
            except Exception as exc:  # closing must not hide other shutdown work
                log.debug("closing %s: %s", s.name, exc)
