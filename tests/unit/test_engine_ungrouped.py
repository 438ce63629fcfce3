"""No group analysis where no host can have a group (issue 14, the small end): a config of this machine and the
demo builds no campaign × host-group models and does not import them, with the same analysis, alerts and models as
with them; a reload that names a group adds them; a fleet source keeps them."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np

from surgewatch.config import Config, parse_config
from surgewatch.defaults import DEFAULT_TOML
from surgewatch.engine import Engine, EngineOptions
from surgewatch.recording.replay import ReplayDispatcher
from surgewatch.sources import BuildOptions, build_sources

T0 = 1_760_000_000.0


def default_at_1s(tmp_path: Path) -> Config:
    text = DEFAULT_TOML.format(interval="1s", for_cpu="30s", for_mem="1m", for_anomaly="10s")
    return parse_config(text.replace("[monitor]\n", f'[monitor]\nstate_dir = "{tmp_path}"\n', 1), "c.toml", {})


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def demo_engine(cfg: Config, clock: Clock, given_sources: bool) -> Engine:
    """The engine on the demo (this machine's source left out: its readings differ between two engines)."""
    opts = EngineOptions(dispatcher=ReplayDispatcher(()), clock=clock, keep_models=False)
    sources = [s for s in build_sources(cfg, BuildOptions(wall_clock=clock)) if s.demo]
    if given_sources:
        return Engine(cfg, opts, sources=sources)  # given sources: group models kept, as before
    engine = Engine(cfg, opts)
    engine.sources[:] = sources  # the same sources, and the engine's own decision about groups
    engine.collector = type(engine.collector)(sources, clock=clock)
    return engine


def test_the_demo_without_group_models_analyses_and_alerts_as_with_them(tmp_path: Path) -> None:
    cfg = default_at_1s(tmp_path)
    clocks = Clock(), Clock()
    plain, grouped = demo_engine(cfg, clocks[0], False), demo_engine(cfg, clocks[1], True)
    assert plain.analyzer.groups is None and grouped.analyzer.groups is not None
    for engine in (plain, grouped):
        engine.backfill_demo()
    events: tuple[list[object], list[object]] = ([], [])
    for k in range(420):  # through the launch (at 3 minutes) and its load following traffic
        readings = []
        for clock, engine in zip(clocks, (plain, grouped), strict=True):
            clock.t = T0 + 1.0 + k
            reading = {}
            for s in engine.sources:
                reading.update(s.poll_now().values)  # type: ignore[attr-defined]
            readings.append(reading)
        assert readings[0] == readings[1]
        for i, engine in enumerate((plain, grouped)):
            ticked = engine.tick(clocks[i].t, readings[i])
            events[i].extend((e.rule, e.series, e.event, e.cause, e.explanation) for e in ticked)
        a, b = plain.last_analysis, grouped.last_analysis
        assert a is not None and b is not None
        np.testing.assert_array_equal(a.score, b.score)
        np.testing.assert_array_equal(a.expected, b.expected)
        assert a.cause == b.cause
        assert [(c.name, c.lift, [(p.host, p.metric, p.lag_seconds) for p in c.pairs]) for c in a.campaigns] == \
            [(c.name, c.lift, [(p.host, p.metric, p.lag_seconds) for p in c.pairs]) for c in b.campaigns]
    assert events[0] == events[1] and events[0]  # the launch fired the campaign-surge rule
    assert any(not math.isnan(s) and s > 0 for s in plain.last_analysis.score.tolist())  # it did analyse


def test_a_reload_that_names_a_group_adds_group_models_and_a_fleet_source_keeps_them(tmp_path: Path) -> None:
    cfg = default_at_1s(tmp_path)
    engine = Engine(cfg, EngineOptions(dispatcher=ReplayDispatcher(()), clock=lambda: T0, keep_models=False))
    assert engine.analyzer.groups is None
    grouped = parse_config(DEFAULT_TOML.format(interval="1s", for_cpu="30s", for_mem="1m", for_anomaly="10s")
                           .replace('name = "demo-web"\n', 'name = "demo-web"\ngroup = "web"\n', 1), "c.toml", {})
    engine.apply_config(grouped, T0)
    assert engine.analyzer.groups is not None
    fleet = parse_config(f'[monitor]\nstate_dir = "{tmp_path}"\n[[host]]\nname = "fleet"\nsource = "promql"\n'
                         'url = "http://127.0.0.1:9"\n', "c.toml", {})
    assert Engine(fleet, EngineOptions(dispatcher=ReplayDispatcher(()), clock=lambda: T0)).analyzer.groups \
        is not None


def test_an_engine_of_this_machine_and_the_demo_imports_no_group_analysis(tmp_path: Path) -> None:
    code = ("import sys\nfrom surgewatch.defaults import default_config\nfrom surgewatch.engine import Engine\n"
            "Engine(default_config())\nprint('surgewatch.analysis.groupmodels' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"XDG_STATE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
