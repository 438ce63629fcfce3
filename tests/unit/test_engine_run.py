"""The engine's tick loop: ticks run from one timer each on the beat, a stop ends the run at once, and a tick that
raises ends the run with its exception."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from surgewatch.config import parse_config
from surgewatch.engine import Engine
from surgewatch.snapshot import Snapshot
from surgewatch.sources.base import Reading


class Quick:
    name, interval, timeout, demo = "host:quick", 0.05, 1.0, False

    def poll_now(self) -> Reading:
        return Reading({"host:quick/cpu.percent": 12.0})

    async def poll(self) -> Reading:
        return self.poll_now()

    async def close(self) -> None:
        return None


def quick_engine(tmp_path: Path, interval: str) -> Engine:
    cfg = parse_config(f'[monitor]\ninterval = "{interval}"\nstate_dir = "{tmp_path}"\n', "<test>")
    return Engine(cfg, sources=[Quick()])


async def run_for(engine: Engine, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, 2.0)
    await engine.shutdown(0.1)


async def test_ticks_keep_their_beat_and_see_the_polls(tmp_path: Path) -> None:
    engine = quick_engine(tmp_path, "100ms")
    seen: list[tuple[float, Snapshot]] = []
    engine.subscribe(lambda snap: seen.append((time.monotonic(), snap)))
    await run_for(engine, 0.75)
    assert 5 <= len(seen) <= 9  # the first at once, the rest 100 ms apart from the 0.3 s mark
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(seen[1:])]
    assert all(0.05 <= g <= 0.2 for g in gaps), gaps
    assert seen[-1][1].values["host:quick/cpu.percent"] == 12.0


async def test_a_stop_ends_the_run_without_waiting_for_the_next_tick(tmp_path: Path) -> None:
    engine = quick_engine(tmp_path, "60s")
    ticks: list[Snapshot] = []
    engine.subscribe(ticks.append)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    await asyncio.sleep(0.4)
    stop.set()
    t0 = time.monotonic()
    await asyncio.wait_for(task, 2.0)
    assert time.monotonic() - t0 < 0.5 and len(ticks) == 1
    await engine.shutdown(0.1)


async def test_a_tick_that_raises_ends_the_run_with_its_exception(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    engine = quick_engine(tmp_path, "50ms")
    calls = [0]
    real_tick = engine.tick

    def tick(now: float) -> object:
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("broken tick")
        return real_tick(now)

    monkeypatch.setattr(engine, "tick", tick)
    with pytest.raises(RuntimeError, match="broken tick"):
        await asyncio.wait_for(engine.run(asyncio.Event()), 3.0)
    await engine.shutdown(0.1)
    assert calls[0] == 3


async def test_immediate_sources_with_the_tick_interval_are_polled_right_before_each_tick(tmp_path: Path) -> None:
    cfg = parse_config(f'[monitor]\ninterval = "100ms"\nstate_dir = "{tmp_path}"\n', "<test>")
    src = Quick()
    src.interval = 0.1  # the tick's: driven by the ticks, no timer of its own
    engine = Engine(cfg, sources=[src])
    polls_at_tick: list[int] = []
    engine.subscribe(lambda _snap: polls_at_tick.append(engine.source_health()["host:quick"].polls))
    await run_for(engine, 0.75)
    assert polls_at_tick[0] == 1  # the first poll at start, the first tick right after it
    # then one poll per tick, each taken just before it (the second tick, 0.3 s on, polls again)
    assert [b - a for a, b in itertools.pairwise(polls_at_tick[1:])] == [1] * (len(polls_at_tick) - 2)
    assert polls_at_tick[1] == 2


def test_each_value_lands_in_its_own_row_whatever_the_order_and_set_of_series(tmp_path: Path) -> None:
    engine = quick_engine(tmp_path, "1s")
    t = 1_800_000_000.0
    steps = [{"host:a/x": 1.0, "host:b/x": 2.0}, {"host:a/x": 3.0, "host:b/x": 4.0},
             {"host:b/x": 5.0, "host:a/x": 6.0}, {"host:a/x": 7.0, "host:c/x": 8.0, "host:b/x": 9.0},
             {"host:a/x": 10.0, "host:c/x": 11.0, "host:b/x": 12.0}]
    for readings in steps:
        t += 1.0
        engine.tick(t, readings)
        names, values, _stale = engine.current_values(t)
        assert {n: v for n, v in zip(names, values.tolist(), strict=True) if n in readings} == readings
