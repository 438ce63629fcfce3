"""The engine's first ticks and snapshots for a dashboard at fleet scale: a late source's first answer gets a tick
of its own (the host rows do not wait a whole interval), deferred analysis does not start on that tick, and a
snapshot built between ticks leaves the event loop free between its slices (a key press is not held behind it)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from surgewatch.config import parse_config
from surgewatch.engine import SNAPSHOT_SLICE, Engine, EngineOptions
from surgewatch.snapshot import Snapshot
from surgewatch.sources.base import Reading

CONFIG = """
[monitor]
interval = "{interval}"
state_dir = "{state}"
"""


class SlowFleet:
    """`hosts` hosts whose first answer takes `delay` seconds (a fleet's Prometheus under load)."""

    def __init__(self, hosts: int, delay: float) -> None:
        self.name, self.interval, self.timeout, self.demo = "host:fleet", 10.0, 5.0, False
        self.hosts, self.delay = hosts, delay

    async def poll(self) -> Reading:
        await asyncio.sleep(self.delay)
        values = {f"host:web-{i:04d}/cpu.percent": 20.0 + i % 50 for i in range(self.hosts)}
        values |= {f"host:web-{i:04d}/mem.percent": 90.0 - i % 40 for i in range(self.hosts)}
        return Reading(values)

    async def close(self) -> None:
        return None


def fleet_engine(tmp_path: Path, hosts: int, delay: float, interval: str = "10s") -> Engine:
    cfg = parse_config(CONFIG.format(interval=interval, state=tmp_path / "state"), "<fleet>")
    return Engine(cfg, EngineOptions(defer_analysis=True), sources=[SlowFleet(hosts, delay)])  # type: ignore[list-item]


async def test_a_source_answering_after_the_first_tick_gets_a_tick_of_its_own_at_once(tmp_path: Path) -> None:
    engine = fleet_engine(tmp_path, hosts=50, delay=0.6)  # answers after the first tick (0.3 s); interval 10 s
    snaps: list[tuple[float, Snapshot]] = []
    engine.subscribe(lambda s: snaps.append((time.monotonic(), s)))
    stop = asyncio.Event()
    start = time.monotonic()
    task = asyncio.create_task(engine.run(stop))
    try:
        for _ in range(400):  # up to 4 s: far less than the 10 s interval the next tick would come after
            if any(s.hosts for _, s in snaps):
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task
        await engine.shutdown(drain_seconds=0.1)
    assert snaps and not snaps[0][1].hosts  # the first tick came before the fleet's answer
    with_hosts = [(t, s) for t, s in snaps if s.hosts]
    assert with_hosts and len(with_hosts[0][1].hosts) == 50 and with_hosts[0][0] - start < 4.0
    assert engine.last_analysis is None  # analysis starts at the next tick on the beat, not on this one


async def test_a_snapshot_published_between_ticks_leaves_the_event_loop_free_between_its_slices(
        tmp_path: Path) -> None:
    hosts = 5 * SNAPSHOT_SLICE
    engine = fleet_engine(tmp_path, hosts=hosts, delay=0.0)
    await engine.collector.poll_once(engine.sources[0])
    engine.tick(time.time())
    published: list[Snapshot] = []
    engine.subscribe(published.append)
    turns = 0

    async def other_work() -> None:  # what a key press is to a dashboard
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    before = turns
    engine.publish_soon()
    assert not published  # built in slices, in later turns of the event loop
    for _ in range(1000):
        if published:
            break
        await asyncio.sleep(0.001)
    during = turns - before
    other.cancel()
    assert len(published) == 1 and during >= hosts // SNAPSHOT_SLICE
    assert published[0].hosts == engine.snapshot().hosts  # the same snapshot as one built at once
    for metric in ("cpu.percent", "mem.percent"):  # each host's sparklines are its own series'
        last = {h.name: h.spark[metric][-1] for h in published[0].hosts}
        assert last == {h.name: h.metrics[metric] for h in published[0].hosts}


async def test_a_tick_finishes_a_snapshot_still_being_built_before_it_moves_the_store(tmp_path: Path) -> None:
    engine = fleet_engine(tmp_path, hosts=3 * SNAPSHOT_SLICE, delay=0.0)
    await engine.collector.poll_once(engine.sources[0])
    engine.tick(time.time())
    published: list[Snapshot] = []
    engine.subscribe(published.append)
    engine.publish_soon()
    engine.finish_publishing()  # what a live tick does first
    assert len(published) == 1 and len(published[0].hosts) == 3 * SNAPSHOT_SLICE
    await asyncio.sleep(0.01)
    assert len(published) == 1  # nothing left to publish later
