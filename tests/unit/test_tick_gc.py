"""Garbage collection between ticks (lean.TickCollector, issue 14): after each tick the daemon collects what the
tick left and freezes the survivors, so the collector's automatic passes during the next tick walk only that
tick's objects; a periodic full pass (unfrozen first) frees cyclic garbage among objects frozen earlier. Nothing
is kept for good: cycles that die within a tick, and cycles that outlive several ticks before they die, are freed."""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from surgewatch.config import parse_config
from surgewatch.engine import Engine
from surgewatch.lean import TickCollector
from tests.unit.test_engine_run import quick_engine, run_for

TICK = 15.0


class Node:
    """A node of a reference cycle (only the cyclic collector frees it)."""

    def __init__(self) -> None:
        self.other: object = self
        self.payload = [0.0] * 100


@pytest.fixture
def collector() -> Iterator[TickCollector]:
    gc.collect()
    gc.unfreeze()
    clock = [0.0]
    tc = TickCollector(full_every=300.0, clock=lambda: clock[0])
    tc.clock_value = clock  # type: ignore[attr-defined]  # (the test advances it)
    try:
        yield tc
    finally:
        tc.stop()


def _tick(tc: TickCollector, n: int) -> None:
    tc.clock_value[0] = n * TICK  # type: ignore[attr-defined]
    tc.after_tick()


def test_cyclic_garbage_made_across_ticks_is_freed_and_does_not_grow(collector: TickCollector) -> None:
    alive: weakref.WeakSet[Node] = weakref.WeakSet()
    held: list[Node] = []  # cycles that outlive their tick (frozen with it), dropped some ticks later
    counts = []
    for n in range(200):
        collector.before_tick()
        for _ in range(400):  # cycles that die within the tick (a fleet's tick: more than gc's first threshold)
            alive.add(Node())
        if n % 3 == 0:
            kept = Node()
            alive.add(kept)
            held.append(kept)
        if len(held) > 4:
            del held[:2]  # garbage now, and frozen: only a full pass frees it
        _tick(collector, n)
        counts.append(len(alive))
    assert collector.full_passes == 200 * TICK // 300.0
    # what is alive: the cycles still held, and the garbage since the last full pass (at most 20 ticks' worth of
    # dropped held cycles); never the 400 a tick that died within their tick, never the growth of 200 ticks
    assert max(counts[20:]) <= len(held) + 20
    assert max(counts[-40:]) <= max(counts[20:60])
    collector.stop()
    gc.collect()
    assert len(alive) == len(held)


def test_survivors_of_a_tick_are_kept_out_of_the_next_tick_s_passes(collector: TickCollector) -> None:
    kept = [[i] for i in range(1000)]  # containers that outlive the tick
    _tick(collector, 0)
    frozen = gc.get_freeze_count()
    assert frozen >= len(kept)
    assert len(gc.get_objects()) < frozen // 10  # what an automatic pass would walk now
    collector.stop()
    assert gc.get_freeze_count() == 0


def test_the_full_pass_comes_at_the_first_tick_then_every_full_every_seconds(collector: TickCollector) -> None:
    fulls = []
    for n in range(45):
        _tick(collector, n)
        fulls.append(collector.full_passes)
    assert [n for n in range(45) if fulls[n] != (fulls[n - 1] if n else 0)] == [0, 20, 40]


def test_a_small_tick_s_objects_wait_for_a_later_collection_and_are_freed_then(collector: TickCollector) -> None:
    alive: weakref.WeakSet[Node] = weakref.WeakSet()
    _tick(collector, 0)  # the first: a full pass
    passes, most = collector.passes, 0
    for n in range(1, 60):
        collector.before_tick()
        for _ in range(5):  # a small daemon's tick: a few containers
            alive.add(Node())
        _tick(collector, n)
        most = max(most, len(alive))
    assert passes < collector.passes < passes + 30  # not after every tick, yet some
    assert most <= gc.get_threshold()[0]  # garbage waits at most until as many objects as gc's own first pass
    assert collector.full_passes == 3  # (at 0, 300 and 600 s)


def test_nothing_is_collected_or_frozen_while_the_collector_is_off(collector: TickCollector) -> None:
    gc.disable()
    try:
        _tick(collector, 0)
    finally:
        gc.enable()
    assert collector.passes == 0
    assert gc.get_freeze_count() == 0


# -- the engine runs it after each live tick, once the tick's snapshot is out --------------------------------

def _engine(tmp_path: Path) -> Engine:
    return quick_engine(tmp_path, "100ms")


async def test_after_tick_work_runs_after_each_live_tick_once_its_snapshot_is_out(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    seen: list[str] = []
    engine.subscribe(lambda _snap: seen.append("snapshot"))
    engine.after_tick = lambda: seen.append("after")
    await run_for(engine, 0.75)
    assert seen.count("after") >= 4
    # the snapshots after the first ticks are built in slices: the work waits for the last one
    assert all(a != b for a, b in itertools.pairwise(seen)), seen
    assert seen[0] == "snapshot"


def test_the_automatic_collector_is_off_during_a_tick_and_the_tick_s_garbage_freed_after_it(
        collector: TickCollector) -> None:
    passes: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    alive: weakref.WeakSet[Node] = weakref.WeakSet()
    gc.callbacks.append(seen)
    try:
        collector.before_tick()
        for _ in range(5000):  # enough new containers for several automatic passes
            alive.add(Node())
        during = len(passes)
        collector.after_tick()
    finally:
        gc.callbacks.remove(seen)
    assert during == 0
    assert len(alive) == 0
    assert gc.isenabled()


def test_stop_turns_the_collector_back_on_after_a_tick_that_never_ended(collector: TickCollector) -> None:
    collector.before_tick()
    assert not gc.isenabled()
    collector.stop()
    assert gc.isenabled()


async def test_after_tick_work_that_raises_is_dropped_in_one_line_and_the_ticks_go_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = _engine(tmp_path)
    snaps: list[object] = []
    engine.subscribe(snaps.append)
    calls = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("no\nmore")

    engine.after_tick = broken
    before: list[int] = []
    engine.before_tick = lambda: before.append(1)
    with caplog.at_level(logging.ERROR, "surgewatch"):
        await run_for(engine, 0.6)
    assert calls == [1]
    assert engine.after_tick is None and engine.before_tick is None  # a pair: neither is called any more
    assert len(before) == 1
    assert len(snaps) >= 3
    lines = [r.getMessage() for r in caplog.records if "after-tick work" in r.getMessage()]
    assert len(lines) == 1 and "RuntimeError: no more" in lines[0] and "\n" not in lines[0]


async def test_before_tick_work_that_raises_is_dropped_in_one_line_and_the_ticks_go_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = quick_engine(tmp_path, "100ms")
    snaps: list[object] = []
    engine.subscribe(snaps.append)
    after: list[int] = []

    def broken() -> None:
        raise ValueError("bad")

    engine.before_tick, engine.after_tick = broken, lambda: after.append(1)
    with caplog.at_level(logging.ERROR, "surgewatch"):
        await run_for(engine, 0.6)
    assert engine.after_tick is None and engine.before_tick is None
    assert after == []
    assert len(snaps) >= 3
    assert sum("before-tick work raised ValueError: bad" in r.getMessage() for r in caplog.records) == 1


async def test_the_daemon_collects_between_ticks_and_unfreezes_when_it_stops(tmp_path: Path) -> None:
    from surgewatch.frontends.headless import Daemon

    gc.unfreeze()
    cfg = parse_config(f'[monitor]\ninterval = "100ms"\nstate_dir = "{tmp_path}"\n\n[[host]]\nname = "local"\n'
                       f'source = "local"\n', "<test>")
    daemon = Daemon(cfg, None, 1.0)
    task = asyncio.create_task(daemon.main())
    frozen = 0
    for _ in range(200):
        await asyncio.sleep(0.05)
        frozen = max(frozen, gc.get_freeze_count())
        if frozen:
            break
    daemon.stop.set()
    assert await asyncio.wait_for(task, 10.0) == 0
    assert frozen > 0
    assert gc.get_freeze_count() == 0
