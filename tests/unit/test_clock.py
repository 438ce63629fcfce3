"""Clock safety: ticks on the monotonic clock; wall-clock steps logged once and handled; a suspend is one gap.

The engine runs for real (100 ms ticks) with injected clocks that are the real ones plus offsets the test moves:
a step moves the wall clock only, a suspend moves every clock together. Each case runs about a second.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from surgewatch.clock import SteppedClock
from surgewatch.config import parse_config
from surgewatch.engine import Engine, EngineOptions
from surgewatch.model import AlertEvent
from surgewatch.recording.reader import Recording, read_series
from surgewatch.recording.replay import ReplayDispatcher
from surgewatch.recording.writer import attach_recorder
from surgewatch.snapshot import Snapshot
from surgewatch.sources.base import Reading

HOUR = 3600.0


def test_steps_back_and_forward_are_reported_once_with_their_size(caplog: pytest.LogCaptureFixture) -> None:
    wall, elapsed = [1_800_000_000.0], [100.0]
    clock = SteppedClock(lambda: wall[0], lambda: elapsed[0])
    seen: list[float] = []
    clock.on_step(seen.append)
    with caplog.at_level("WARNING", logger="surgewatch.clock"):
        for _ in range(50):  # drift and slewing: 0.3 s over 50 readings is followed, never reported
            wall[0] += 1.006
            elapsed[0] += 1.0
            clock()
        wall[0] -= HOUR
        assert clock() == wall[0]
        clock()
        wall[0] += 600.0
        clock()
        wall[0] += 10.0  # a suspend: both clocks jump together
        elapsed[0] += 10.0
        clock()
    assert [round(s) for s in seen] == [-3600, 600] and clock.steps == seen
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "wall clock stepped back by 1h00m", "wall clock stepped forward by 10m00s"]


class Clocks:
    """The real clocks plus offsets the test moves."""

    def __init__(self) -> None:
        self.wall_offset = 0.0
        self.elapsed_offset = 0.0

    def wall(self) -> float:
        return time.time() + self.wall_offset

    def elapsed(self) -> float:
        return time.monotonic() + self.elapsed_offset


class Host:
    """One host at 95 % CPU, polled every 400 ms (slower than the ticks); clearing `awake` stops its polls."""

    name, interval, timeout, demo = "host:web-1", 0.4, 30.0, False

    def __init__(self) -> None:
        self.awake = asyncio.Event()
        self.awake.set()

    async def poll(self) -> Reading:
        await self.awake.wait()
        return Reading({"host:web-1/cpu.percent": 95.0})

    async def close(self) -> None:
        return None


CONFIG = """
[monitor]
interval = "100ms"
state_dir = "{state}"

[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 90
severity = "critical"
"""


class Rig:
    def __init__(self, tmp_path: Path, record: str | None = None) -> None:
        self.clocks = Clocks()
        self.host = Host()
        text = CONFIG.format(state=tmp_path / "state")
        if record:
            text = text.replace("[monitor]\n", f'[monitor]\nrecord = "{record}"\n')
        cfg = parse_config(text, "test.toml")
        self.engine = Engine(cfg, EngineOptions(clock=self.clocks.wall, elapsed=self.clocks.elapsed,
                                                dispatcher=ReplayDispatcher(())), sources=[self.host])
        attach_recorder(self.engine)
        self.ticks: list[tuple[float, Snapshot]] = []  # (elapsed time, snapshot) per tick
        self.events: list[AlertEvent] = []
        self.engine.subscribe(lambda snap: self.ticks.append((self.clocks.elapsed(), snap)))
        self.engine.on_events(self.events.extend)

    async def run(self, seconds: float, at_tick: Callable[[int], None] | None = None) -> None:
        """Run the engine for `seconds`; `at_tick(k)` is called after each tick (k from 0)."""
        if at_tick is not None:
            self.engine.subscribe(lambda _snap: at_tick(len(self.ticks) - 1))
        stop = asyncio.Event()
        task = asyncio.create_task(self.engine.run(stop))
        await asyncio.sleep(seconds)
        stop.set()
        await task
        await self.engine.collector.stop()

    def kinds(self) -> list[tuple[str, str | None]]:
        return [(e.event, e.labels.get("reason")) for e in self.events]


@pytest.mark.parametrize("step", [-HOUR, HOUR])
async def test_a_wall_clock_step_neither_stalls_nor_bursts_nor_resolves(tmp_path: Path, step: float) -> None:
    rig = Rig(tmp_path)
    stepped_at: list[int] = []

    def at_tick(k: int) -> None:
        if k == 4:
            rig.clocks.wall_offset += step
            stepped_at.append(k)

    await rig.run(1.2, at_tick)
    after = rig.ticks[stepped_at[0] + 1:]
    assert len(after) >= 3  # ticks go on (on the wall clock they stopped for an hour after a step back)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(after)]
    assert min(gaps) >= 0.05  # no burst of catch-up ticks
    assert [round(s) for s in rig.engine.clock.steps] == [round(step)]  # type: ignore[attr-defined]
    assert rig.kinds() == [("firing", None)]  # fired once, never falsely resolved
    last = rig.ticks[-1][1]
    assert not any(s.stale for s in last.sources) and [a.state for a in last.alerts] == ["firing"]
    assert last.hosts[0].metrics["cpu.percent"] == 95.0


async def test_a_suspend_is_one_tick_with_the_series_stale_then_monitoring_carries_on(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    marks: dict[str, int] = {}

    def at_tick(k: int) -> None:
        if k == 4:  # the machine sleeps for an hour: nothing polls, every clock jumps
            rig.host.awake.clear()
            rig.clocks.wall_offset += HOUR
            rig.clocks.elapsed_offset += HOUR
            marks["suspend"] = k
        elif "suspend" in marks and "resume" not in marks:
            rig.host.awake.set()
            marks["resume"] = k

    await rig.run(1.2, at_tick)
    assert marks["resume"] == marks["suspend"] + 1  # one tick after the gap, not a flood of catch-up ticks
    gap_tick = rig.ticks[marks["resume"]][1]
    assert all(s.stale for s in gap_tick.sources)  # an hour without a poll is stale
    after = rig.ticks[marks["resume"]:]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(after)]
    assert len(after) >= 3 and min(gaps) >= 0.05
    assert rig.engine.clock.steps == []  # type: ignore[attr-defined]  # a gap, not a step
    assert rig.kinds() == [("firing", None), ("resolved", "stale"), ("firing", None)]
    assert rig.engine.evicted == 0  # an hour asleep is not an hour of churn
    assert not any(s.stale for s in rig.ticks[-1][1].sources)


async def test_a_recording_across_a_step_back_keeps_a_continuous_timeline_and_notes_the_step(
        tmp_path: Path) -> None:
    path = str(tmp_path / "step.swrec")
    rig = Rig(tmp_path, record=path)

    def at_tick(k: int) -> None:
        if k == 3:
            rig.clocks.wall_offset -= HOUR

    await rig.run(0.8, at_tick)
    await rig.engine.shutdown(1.0)
    ts, values = read_series(path)
    assert len(ts) >= 5 and (ts[1:] > ts[:-1]).all()  # in order: replays and seeks can use it
    assert (ts[1:] - ts[:-1]).max() < 60  # and without an hour's hole
    assert (values["host:web-1/cpu.percent"] == 95.0).sum() >= 2
    with Recording(path) as rec:
        steps = [e.doc["step"] for e in rec.events("clock")]
    assert [round(s) for s in steps] == [-3600]
