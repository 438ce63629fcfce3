"""Start-up order for a fast first frame: the first tick comes once every source has answered (a source that
never answers holds it back by 0.3 s at most), and a dashboard's engine publishes that tick's values before
analysis starts, warmed on the backfilled history at the next tick. About 2 CPU-seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from pathlib import Path

import numpy as np

from surgewatch.alerting.dispatch import build_dispatcher
from surgewatch.config import parse_config
from surgewatch.engine import Engine
from surgewatch.recording.writer import attach_recorder
from surgewatch.snapshot import Snapshot
from surgewatch.sources.base import Reading
from tests.support.tui_demo import FakeClock, advance, demo_engine


def deferred_demo(tmp_path: Path, record: Path | None = None) -> Engine:
    """The demo engine as the dashboard builds it (analysis deferred), on a fake clock."""
    eager = demo_engine(tmp_path)
    cfg = eager.config
    if record is not None:
        cfg = dataclasses.replace(cfg, monitor=dataclasses.replace(cfg.monitor, record=str(record)))
    engine = Engine(cfg, dataclasses.replace(eager.options, clock=FakeClock(), defer_analysis=True,
                                             dispatcher=build_dispatcher(cfg, tmp_path / "deferred")))
    attach_recorder(engine)  # as the dashboard does (nothing without `record`)
    engine.backfill_demo()
    return engine


async def test_the_first_tick_shows_values_and_analysis_starts_warmed_at_the_second(tmp_path: Path) -> None:
    eager, deferred = demo_engine(tmp_path / "eager"), deferred_demo(tmp_path)
    await advance(deferred, deferred.tick_seconds)
    assert deferred.last_analysis is None
    snap = deferred.snapshot()
    host = next(h for h in snap.hosts if h.name == "demo-web")
    assert math.isfinite(host.metrics["cpu.percent"]) and math.isfinite(snap.campaigns[0].visitors)
    await advance(deferred, deferred.tick_seconds)
    await advance(eager, 2 * eager.tick_seconds)
    late, early = deferred.last_analysis, eager.last_analysis
    assert late is not None and early is not None
    # warmed on the same history (give or take its first column): the detector stands where the engine that
    # warmed at once stands
    np.testing.assert_allclose(late.detector.expected, early.detector.expected, rtol=0.01, equal_nan=True)
    assert np.isfinite(late.detector.expected).all()


async def test_an_engine_that_records_analyses_from_the_first_tick(tmp_path: Path) -> None:
    engine = deferred_demo(tmp_path, record=tmp_path / "run.swrec")
    try:
        await advance(engine, engine.tick_seconds)
        assert engine.last_analysis is not None  # a replay of the recording sees what the live run saw
        assert (tmp_path / "run.swrec").stat().st_size > 0
    finally:
        await engine.shutdown(0.1)


class Answering:
    """A source that answers at once."""

    name, interval, timeout, demo = "host:quick", 60.0, 5.0, False

    async def poll(self) -> Reading:
        return Reading({"host:quick/cpu.percent": 12.0})

    async def close(self) -> None:
        return None


class Silent(Answering):
    """A source whose first poll never ends (within its timeout)."""

    name = "host:silent"

    async def poll(self) -> Reading:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


async def test_a_source_that_never_answers_does_not_hold_back_the_first_tick(tmp_path: Path) -> None:
    cfg = parse_config(f'[monitor]\ninterval = "60s"\nstate_dir = "{tmp_path}"\n', "<test>")
    engine = Engine(cfg, sources=[Silent(), Answering()])
    first: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
    engine.subscribe(lambda snap: first.done() or first.set_result(snap))
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        snap = await asyncio.wait_for(first, 10.0)  # the next tick would be a minute later
    finally:
        stop.set()
        await asyncio.wait_for(task, 5.0)
        await engine.shutdown(0.1)
    assert snap.values["host:quick/cpu.percent"] == 12.0
    assert "host:silent/cpu.percent" not in snap.values


async def test_the_collector_paused_for_start_up_is_on_again_once_the_first_frame_is_out(tmp_path: Path) -> None:
    """The command line pauses cyclic garbage collection for start-up (lean.pause_gc); the dashboard turns it
    back on after drawing its first snapshot."""
    import gc

    from surgewatch.lean import pause_gc, resume_gc
    from tests.support.tui_demo import make_app

    engine = demo_engine(tmp_path)
    app = make_app(engine)
    pause_gc()
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            assert not gc.isenabled()  # composed, nothing drawn from a snapshot yet
            await advance(engine, 1)  # a tick: its snapshot is drawn
            await pilot.pause()
            await pilot.pause()
            assert gc.isenabled()
    finally:
        resume_gc()
