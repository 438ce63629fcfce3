"""The headless daemon reads only the series its config needs (rules, campaign and group hosts); with [export]
or a recording, or in the dashboard, every series is read."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from surgewatch.config import parse_config
from surgewatch.defaults import default_config
from surgewatch.engine import Engine, EngineOptions
from surgewatch.needed import needed_series
from surgewatch.sources.local import LocalHostSource

RULES = """
[monitor]
state_dir = "{state}"

[[host]]
name = "here"
source = "local"

[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 90
"""


def test_the_default_config_needs_the_rules_series_and_every_metric_of_the_campaign_host() -> None:
    wanted = needed_series(default_config())
    assert wanted is not None
    assert wanted("host:local/cpu.percent") and wanted("host:local/mem.percent")
    assert not wanted("host:local/net.rx_bps") and not wanted("host:local/cpu.core0.percent")
    assert wanted("host:demo-web/net.rx_bps") and wanted("host:demo-web/load.1")  # a campaign's host


def test_an_export_or_a_recording_needs_every_series(tmp_path: Path) -> None:
    cfg = default_config()
    assert needed_series(dataclasses.replace(cfg, export=dataclasses.replace(cfg.export, listen="127.0.0.1:0"))) \
        is None
    assert needed_series(dataclasses.replace(cfg, monitor=dataclasses.replace(
        cfg.monitor, record=str(tmp_path / "r.swrec")))) is None


def test_a_local_source_told_what_is_wanted_reads_only_that() -> None:
    t = [100.0]
    src = LocalHostSource("here", 1.0, 1.0, clock=lambda: t[0],
                          wanted=lambda name: name in ("host:here/cpu.percent", "host:here/mem.percent"))
    src.sample()
    t[0] += 1.0
    time.sleep(0.02)
    assert set(src.sample().values) == {"host:here/cpu.percent", "host:here/mem.percent"}


def test_a_wanted_load_series_brings_the_cores_that_set_its_floor() -> None:
    t = [100.0]
    src = LocalHostSource("here", 1.0, 1.0, clock=lambda: t[0], wanted=lambda name: name.endswith("/load.1"))
    src.sample()
    t[0] += 1.0
    time.sleep(0.02)
    got = set(src.sample().values)
    assert {"host:here/load.1", "host:here/cpu.core0.percent"} <= got
    assert "host:here/cpu.percent" not in got and "host:here/mem.percent" not in got


async def _poll_twice(engine: Engine) -> set[str]:
    for _ in range(2):
        for s in engine.sources:
            assert await engine.collector.poll_once(s)
        time.sleep(0.02)
    return set(engine.collector.drain())


async def test_the_daemons_engine_reads_what_its_rules_need_and_a_reload_that_needs_more_reads_more(
        tmp_path: Path) -> None:
    cfg = parse_config(RULES.format(state=tmp_path), str(tmp_path / "c.toml"))
    engine = Engine(cfg, EngineOptions(only_needed=True))
    assert await _poll_twice(engine) == {"host:here/cpu.percent"}
    more = parse_config(RULES.format(state=tmp_path) + '\n[[rule]]\nname = "load"\nseries = "host:*/load.1"\n'
                        'above = 9\n', str(tmp_path / "c.toml"))
    await engine.reload(more)
    got = await _poll_twice(engine)
    assert {"host:here/cpu.percent", "host:here/load.1", "host:here/cpu.core0.percent"} <= got
    assert "host:here/net.rx_bps" not in got
    await engine.shutdown(0.1)


async def test_without_only_needed_every_series_is_read(tmp_path: Path) -> None:
    cfg = parse_config(RULES.format(state=tmp_path), str(tmp_path / "c.toml"))
    engine = Engine(cfg, EngineOptions())
    got = await _poll_twice(engine)
    assert {"host:here/net.rx_bps", "host:here/mem.percent", "host:here/cpu.core0.percent"} <= got
    await engine.shutdown(0.1)


async def test_a_reload_that_adds_an_export_reads_every_series_again(tmp_path: Path) -> None:
    cfg = parse_config(RULES.format(state=tmp_path), str(tmp_path / "c.toml"))
    engine = Engine(cfg, EngineOptions(only_needed=True))
    assert await _poll_twice(engine) == {"host:here/cpu.percent"}
    text = RULES.format(state=tmp_path) + '\n[export]\nlisten = "127.0.0.1:0"\n'
    await engine.reload(parse_config(text, str(tmp_path / "c.toml")))
    assert {"host:here/net.rx_bps", "host:here/mem.percent", "host:here/load.1"} <= await _poll_twice(engine)
    await engine.shutdown(0.1)
