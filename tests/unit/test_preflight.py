"""Pre-flight: a scheduled campaign with an expected size is planned live from the models learned so far; the
campaign screen shows the worst host and `preflight_above` rules fire before launch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from surgewatch.config import ConfigError, parse_config
from surgewatch.engine import Engine, EngineOptions
from surgewatch.recording.replay import ReplayDispatcher
from surgewatch.sources.base import Reading

T0 = 1_800_000_000.0


class Scripted:
    """A source whose reading is a function of the engine clock."""

    def __init__(self, name: str, values, clock) -> None:  # type: ignore[no-untyped-def]
        self.name, self.interval, self.timeout, self.demo = name, 10.0, 1.0, False
        self.values, self.clock = values, clock

    async def poll(self) -> Reading:
        return Reading(self.values(self.clock()))

    async def close(self) -> None:
        return None


def visitors(t: float) -> float:
    """The past campaign: 40 quiet minutes, then a slow rise and fall over 40 minutes, then quiet."""
    x = (t - T0 - 2400.0) / 2400.0
    return 300.0 * math.sin(math.pi * x) ** 2 if 0 <= x <= 1 else 0.0


CONFIG = """
[monitor]
interval = "10s"
state_dir = "{state}"
[[host]]
name = "web-1"
source = "local"
group = "web"
[[traffic]]
name = "site"
source = "json"
url = "http://127.0.0.1:9"
value = "v"
[[campaign]]
name = "past"
traffic = "site"
hosts = ["web-1"]
start = {past}
[[campaign]]
name = "launch"
traffic = "site"
hosts = ["web-1"]
start = {launch}
expected_lift = 10.0
[[rule]]
name = "preflight-cpu"
series = "host:*/cpu.percent"
preflight_above = 90
within = "5h"
severity = "critical"
"""


def stamp(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_a_scheduled_campaign_that_saturates_fires_preflight_before_launch(tmp_path: Path) -> None:
    launch = T0 + 4 * 3600
    cfg = parse_config(CONFIG.format(state=tmp_path, past=stamp(T0), launch=stamp(launch)), "t.toml", {})
    now = [T0]
    host = Scripted("host:web-1", lambda t: {"host:web-1/cpu.percent": 12.0 + 0.1 * visitors(t)
                                             + 0.3 * math.sin(t / 7.0)}, lambda: now[0])
    site = Scripted("traffic:site", lambda t: {"traffic:site/visitors": 100.0 + visitors(t),
                                               "campaign:past/visitors": visitors(t)}, lambda: now[0])
    engine = Engine(cfg, EngineOptions(clock=lambda: now[0], dispatcher=ReplayDispatcher(())), sources=[host, site])
    fired = []
    for _ in range(600):  # 100 minutes at 10 s: the past campaign teaches the load model
        for src in (host, site):
            assert await engine.collector.poll_once(src)
        fired += [e for e in engine.tick(now[0]) if e.rule == "preflight-cpu" and e.event == "firing"]
        now[0] += 10.0
    view = next(c for c in engine.snapshot().campaigns if c.name == "launch")
    entry = next(e for e in engine.preflights if e.campaign == "launch")
    now[0] = launch + 10.0  # the campaign starts: its pre-flight alert has done its job
    resolved = []
    for _ in range(3):
        for src in (host, site):
            assert await engine.collector.poll_once(src)
        resolved += [e for e in engine.tick(now[0]) if e.rule == "preflight-cpu" and e.event == "resolved"]
        now[0] += 10.0
    await engine.shutdown(1.0)
    assert resolved
    assert fired, "a launch planned at 10x the site's traffic should saturate web-1"
    event = fired[0]
    assert event.series == "host:web-1/cpu.percent" and event.campaign == "launch"
    assert "forecast peak web-1" in event.explanation and "to stay under" in event.explanation
    assert view.forecast is not None and view.forecast.startswith("forecast peak web-1 CPU")
    assert not engine.preflights  # launched: nothing scheduled any more
    # 10x the site's quiet 100 visitors at 0.1 % CPU per visitor over 2 % (the model is of the site's traffic:
    # 12 % at 100 visitors)
    assert entry.peak == pytest.approx(2.0 + 0.1 * 10 * 100, rel=0.1) and entry.verdict == "saturates"


def test_a_preflight_rule_must_watch_host_series(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config('[[rule]]\nname = "p"\nseries = "traffic:*/visitors"\npreflight_above = 90\n', "t.toml", {})
    assert "preflight_above rules watch host series" in str(err.value) and "\n" not in str(err.value)


def test_the_post_mortem_compares_the_pre_flight_plan_with_the_peak_the_host_reached(tmp_path: Path) -> None:
    import asyncio

    from surgewatch.recording.postmortem import gather, render
    from surgewatch.recording.writer import Recorder

    launch = T0 + 6000.0  # 100 minutes in: the past campaign has taught the model
    text = CONFIG.format(state=tmp_path, past=stamp(T0), launch=stamp(launch)).replace(
        f"start = {stamp(launch)}", f"start = {stamp(launch)}\nend = {stamp(launch + 1200)}")
    cfg = parse_config(text, "t.toml", {})
    now = [T0]

    def site_visitors(t: float) -> dict[str, float]:
        live = 500.0 if launch <= t < launch + 1200 else 0.0  # it drew a 6x lift, not the planned 10x
        return {"traffic:site/visitors": 100.0 + visitors(t) + live, "campaign:past/visitors": visitors(t),
                "campaign:launch/visitors": live}

    host = Scripted("host:web-1", lambda t: {"host:web-1/cpu.percent": 2.0 + 0.1 * site_visitors(t)[
        "traffic:site/visitors"] + 0.3 * math.sin(t / 7.0)}, lambda: now[0])
    site = Scripted("traffic:site", site_visitors, lambda: now[0])
    path = tmp_path / "launch.swrec"

    async def record() -> None:
        engine = Engine(cfg, EngineOptions(clock=lambda: now[0], dispatcher=ReplayDispatcher(())),
                        sources=[host, site])
        engine.add_listener(Recorder.for_engine(str(path), engine))
        for _ in range(720):
            for src in (host, site):
                assert await engine.collector.poll_once(src)
            engine.tick(now[0])
            now[0] += 10.0
        await engine.shutdown(1.0)

    asyncio.run(record())
    data = gather(str(path))
    (check,) = [c for c in data.plans if c.campaign == "launch"]
    assert check.source == "pre-flight" and check.series == "host:web-1/cpu.percent"
    assert check.planned == pytest.approx(102.0, rel=0.1)  # 10x planned
    assert check.actual == pytest.approx(62.0, abs=2.0)  # 2 + 0.1 × 600 site visitors
    assert check.error == pytest.approx(40.0, abs=10.0)
    assert "Planned vs actual peaks" in render(data) and "pre-flight" in render(data)


async def test_after_a_restart_pre_flight_plans_from_the_models_the_daemon_kept(tmp_path: Path) -> None:
    from surgewatch.analysis.loadmodels import HOST, LearnedModel, ModelStore

    launch = T0 + 3600.0
    store = ModelStore.in_state_dir(tmp_path)
    assert store.put(LearnedModel("past", HOST, "web-1", "cpu.percent", "traffic:site/visitors", 0.0, 0.1, 2.0,
                                  0.98, 0.5, 400, T0 - 86400, traffic_baseline=100.0))
    store.save()
    cfg = parse_config(CONFIG.format(state=tmp_path, past=stamp(T0 - 86400), launch=stamp(launch)), "t.toml", {})
    host = Scripted("host:web-1", lambda t: {"host:web-1/cpu.percent": 12.0}, lambda: T0)
    engine = Engine(cfg, EngineOptions(clock=lambda: T0, dispatcher=ReplayDispatcher(()), keep_models=True),
                    sources=[host])
    assert await engine.collector.poll_once(host)
    events = engine.tick(T0)  # a fresh engine: one reading, no traffic history, no live model yet
    await engine.shutdown(1.0)
    (entry,) = [e for e in engine.preflights if e.campaign == "launch"]
    # 10x the kept baseline of 100 visitors at 0.1 %/visitor over 2 %
    assert entry.peak == pytest.approx(102.0) and entry.verdict == "saturates"
    assert any(e.rule == "preflight-cpu" and e.event == "firing" for e in events)
