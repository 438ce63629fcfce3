"""The built-in demo tells the product's story: launch explained by the campaign, later spike unexplained."""

from __future__ import annotations

from pathlib import Path

import pytest

from surgewatch.alerting.dispatch import build_dispatcher
from surgewatch.defaults import default_config
from surgewatch.engine import Engine, EngineOptions
from surgewatch.model import AlertEvent, Cause
from surgewatch.sources.demo import LAG, SPIKE_AT, START


async def run_demo(tmp_path: Path, seconds: float, speed: float = 1.0) -> tuple[Engine, list[AlertEvent]]:
    cfg = default_config(speed)
    clock = [1_800_000_000.0]
    engine = Engine(cfg, EngineOptions(demo_speed=speed, clock=lambda: clock[0],
                                       dispatcher=build_dispatcher(cfg, tmp_path)))
    demo = [s for s in engine.sources if s.demo]
    engine.backfill_demo()
    events: list[AlertEvent] = []
    tick = cfg.monitor.interval
    for _ in range(int(seconds / speed / tick)):
        clock[0] += tick
        for s in demo:
            await engine.collector.poll_once(s)
        events.extend(engine.tick(clock[0]))
    return engine, events


async def test_demo_history_is_already_in_the_store_when_it_opens(tmp_path: Path) -> None:
    engine, _ = await run_demo(tmp_path, seconds=0)
    window = engine.store.window(600, ["campaign:demo-launch/visitors"])
    assert window.values.shape[1] >= 60


async def test_demo_launch_is_explained_and_the_later_spike_is_not(tmp_path: Path) -> None:
    _engine, events = await run_demo(tmp_path, seconds=-START + SPIKE_AT + 400)
    demo_host = [e for e in events if e.series == "host:demo-web/cpu.percent"]
    firing = [e for e in demo_host if e.event == "firing"]
    assert {e.rule for e in firing} == {"unexplained-load", "cpu-high"}
    unexplained = next(e for e in firing if e.rule == "unexplained-load")
    assert unexplained.cause == Cause.UNEXPLAINED and "unexplained" in unexplained.explanation
    assert unexplained.ts - 1_800_000_000.0 > -START + SPIKE_AT - 5  # nothing unexplained during the launch
    assert all(e.demo and e.summary.startswith("[DEMO]") for e in demo_host)
    assert {e.event for e in demo_host if e.rule == "cpu-high"} == {"firing", "resolved"}


async def test_load_model_recovers_the_demo_lag(tmp_path: Path) -> None:
    engine, _ = await run_demo(tmp_path, seconds=-START + 600)
    analysis = engine.last_analysis
    assert analysis is not None
    pair = next(p for c in analysis.campaigns for p in c.pairs if p.metric == "cpu.percent")
    assert pair.model is not None and pair.model.usable
    assert pair.lag_seconds == pytest.approx(LAG, abs=2 * engine.tick_seconds)
    assert analysis.campaigns[0].lift > 3.0


async def test_seed_of_a_demo_entry_drives_the_simulation() -> None:
    from surgewatch.config import parse_config
    from surgewatch.sources import BuildOptions, build_sources

    def first_reading(seed: int) -> dict[str, float]:
        cfg = parse_config(f'[[host]]\nname = "d"\nsource = "demo"\nseed = {seed}\n', "c.toml", {})
        src = build_sources(cfg, BuildOptions(wall_clock=lambda: 1_800_000_000.0))[0]
        return src.backfill([1_800_000_000.0 - 60.0]).values  # type: ignore[attr-defined,no-any-return]

    assert first_reading(3) == first_reading(3)
    assert first_reading(3) != first_reading(4)


async def test_series_are_traced_to_their_sources_again_after_a_reload(tmp_path: Path) -> None:
    import dataclasses

    engine, _ = await run_demo(tmp_path, seconds=20)
    assert engine.is_demo("campaign:demo-launch/visitors")
    cfg = engine.config
    slower = dataclasses.replace(cfg, traffic=tuple(dataclasses.replace(t, interval=cfg.monitor.interval * 2)
                                                     for t in cfg.traffic))
    await engine.reload(slower)  # new source objects, same series names
    now = engine.clock() + cfg.monitor.interval
    engine.tick(now)  # the first tick after a reload can come before the new sources' first poll
    now += cfg.monitor.interval
    for s in engine.sources:
        if s.demo:
            await engine.collector.poll_once(s)
    engine.tick(now)
    assert engine.is_demo("campaign:demo-launch/visitors")


def test_a_poll_computes_exactly_what_the_backfill_computes_at_the_same_instant() -> None:
    import numpy as np

    from surgewatch.sources.demo import DemoScenario

    scenario = DemoScenario(seed=11)
    times = np.concatenate([np.linspace(-3000.0, 12000.0, 701), [SPIKE_AT + 0.5, -0.0, 0.999, 86400.25]])
    series = scenario.host(times)
    for i, t in enumerate(times.tolist()):  # a poll asks for one float, a backfill for an array
        one = scenario.host(t)
        assert {k: float(v) for k, v in one.items()} == {k: float(v[i]) for k, v in series.items()}
        assert float(scenario.site_visitors(t)) == float(scenario.site_visitors(times)[i])
        assert float(scenario.campaign_visitors(t)) == float(scenario.campaign_visitors(times)[i])
