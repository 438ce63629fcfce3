"""Hands alert events from the rules to every sink, filtered by each sink's min_severity."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from ..model import AlertEvent
from .sinks import Sink

log = logging.getLogger("surgewatch.alerting")


class Dispatcher:
    """Queues events per sink without blocking the tick and delivers them in order."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)
        self._queues: list[asyncio.Queue[list[AlertEvent]]] = [asyncio.Queue() for _ in self.sinks]
        self._tasks: list[asyncio.Task[None]] = []

    def submit(self, events: Sequence[AlertEvent]) -> None:
        """Accept events from the tick (synchronous, never blocks)."""
        if not events:
            return
        for sink, q in zip(self.sinks, self._queues, strict=True):
            chosen = [e for e in events if e.severity >= sink.min_severity]
            if chosen:
                q.put_nowait(chosen)

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._deliver(s, q)) for s, q in
                           zip(self.sinks, self._queues, strict=True)]

    async def _deliver(self, sink: Sink, q: asyncio.Queue[list[AlertEvent]]) -> None:
        while True:
            batch = await q.get()
            try:
                await sink.send(batch)
            except Exception as exc:  # a sink must never take the engine down
                log.error("sink %s: %s", sink.kind, exc)
            finally:
                q.task_done()

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for queued events to be delivered, then stop."""
        try:
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._queues)), timeout)
        except TimeoutError:
            log.warning("alert delivery did not finish within %.1fs", timeout)
        for t in self._tasks:
            t.cancel()
        for s in self.sinks:
            await s.close()
