"""The engine's public API: rebuild, read-only queries, listeners with a context, and guarded callbacks."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from surgewatch.config import Config, parse_config
from surgewatch.engine import Engine, EngineListener, EngineOptions, ListenerContext
from surgewatch.model import AlertEvent
from surgewatch.recording.replay import ReplayDispatcher
from surgewatch.snapshot import Snapshot
from tests.integration.test_record import QuietSource
from tests.support.record_config import CONFIG as RECORD_CONFIG

CONFIG = RECORD_CONFIG.replace('history = "1h"\n', 'history = "1h"\nstate_dir = "{state}"\n')  # cpu-high: >90 for 2s
T0 = 1_700_000_000.0
CPU = "host:web-1/cpu.percent"


class Heard(EngineListener):
    """Remembers what it was told (inherits the protocol's no-op hooks it does not override)."""

    def __init__(self) -> None:
        self.ticks: list[tuple[float, list[str]]] = []
        self.configs: list[Config] = []

    def on_tick(self, ctx: ListenerContext, rows: np.ndarray, values: np.ndarray,
                events: Sequence[AlertEvent]) -> None:
        names = ctx.engine.series_names()
        self.ticks.append((ctx.ts, [names[r] for r in rows.tolist()]))

    def on_config(self, ctx: ListenerContext, config: Config) -> None:
        self.configs.append(config)


class Broken(EngineListener):
    """A listener whose every tick raises (a widget with a bug)."""

    def __init__(self) -> None:
        self.calls = 0

    def on_tick(self, ctx: ListenerContext, rows: np.ndarray, values: np.ndarray,
                events: Sequence[AlertEvent]) -> None:
        self.calls += 1
        raise ValueError("widget bug\nsecond line")

    def on_backfill(self, ctx: ListenerContext, ts: Sequence[float], values: Mapping[str, Sequence[float]]) -> None:
        raise AssertionError("a dropped listener is not called again")


def make(tmp_path: Path) -> Engine:
    cfg = parse_config(CONFIG.format(state=tmp_path / "state"), "t.toml")
    return Engine(cfg, EngineOptions(dispatcher=ReplayDispatcher(()), clock=lambda: T0),
                  sources=[QuietSource("host:web-1")])


def test_a_listener_gets_each_tick_with_the_engines_view_and_a_reload(tmp_path: Path) -> None:
    engine = make(tmp_path)
    heard = Heard()
    engine.add_listener(heard)
    engine.tick(T0, {CPU: 20.0})
    engine.tick(T0 + 1, {CPU: 30.0, "host:web-1/mem.percent": 40.0})
    assert heard.ticks == [(T0, [CPU]), (T0 + 1, [CPU, "host:web-1/mem.percent"])]
    stricter = parse_config(CONFIG.format(state=tmp_path / "state").replace("above = 90", "above = 10"), "t.toml")
    engine.apply_config(stricter, T0 + 1.5)
    assert heard.configs == [stricter] and engine.config is stricter
    engine.tick(T0 + 2, {CPU: 30.0})
    engine.tick(T0 + 3, {CPU: 30.0})
    events = engine.tick(T0 + 4, {CPU: 30.0})
    assert [(e.rule, e.event) for e in events] == [("cpu-high", "firing")]  # the new rule took effect


def test_a_listener_that_raises_is_logged_in_one_line_and_dropped_and_the_tick_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = make(tmp_path)
    broken, heard = Broken(), Heard()
    engine.add_listener(broken)
    engine.add_listener(heard)
    with caplog.at_level(logging.ERROR, logger="surgewatch.engine"):
        engine.tick(T0, {CPU: 20.0})
        engine.tick(T0 + 1, {CPU: 21.0})
        engine.backfill([T0 - 1], {CPU: [19.0]})
    assert broken.calls == 1
    assert [t for t, _ in heard.ticks] == [T0, T0 + 1]  # the listener after it still hears every tick
    assert engine.listeners == (heard,)
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert line == "dropped Broken: its on_tick raised ValueError: widget bug second line"
    assert engine.last_tick == T0 + 1


def test_snapshot_and_event_callbacks_that_raise_are_dropped_without_ending_the_tick(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = make(tmp_path)
    snaps: list[Snapshot] = []

    def bad_widget(snap: Snapshot) -> None:
        raise RuntimeError("cannot draw")

    def bad_events(events: Sequence[AlertEvent]) -> None:
        raise KeyError("no such alert")

    engine.subscribe(bad_widget)
    engine.subscribe(snaps.append)
    engine.on_events(bad_events)
    with caplog.at_level(logging.ERROR, logger="surgewatch.engine"):
        for k in range(4):
            engine.tick(T0 + k, {CPU: 95.0})
    assert [s.ts for s in snaps] == [T0 + k for k in range(4)]
    assert [e.event for e in engine.events] == ["firing"]  # the alert went on to the log and the sinks
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert lines == ["dropped test_snapshot_and_event_callbacks_that_raise_are_dropped_without_ending_the_tick."
                     "<locals>.bad_widget: its snapshot callback raised RuntimeError: cannot draw",
                     "dropped test_snapshot_and_event_callbacks_that_raise_are_dropped_without_ending_the_tick."
                     "<locals>.bad_events: its alert events callback raised KeyError: 'no such alert'"]


def test_rebuild_starts_over_and_keeps_subscribers_and_listeners(tmp_path: Path) -> None:
    engine = make(tmp_path)
    heard = Heard()
    snaps: list[Snapshot] = []
    engine.add_listener(heard)
    engine.subscribe(snaps.append)
    for k in range(3):
        engine.tick(T0 + k, {CPU: 95.0})
    assert engine.active_alerts() and engine.row_of(CPU) == 0
    engine.rebuild(sources=[QuietSource("host:web-1")])
    assert engine.last_tick is None and engine.last_analysis is None and not engine.active_alerts()
    assert engine.series_names() == [] and engine.row_of(CPU) is None
    engine.tick(T0, {"host:web-1/mem.percent": 40.0})
    assert heard.ticks[-1] == (T0, ["host:web-1/mem.percent"]) and snaps[-1].values == {"host:web-1/mem.percent": 40.0}


def test_snapshots_held_publish_one_snapshot_after_many_ticks(tmp_path: Path) -> None:
    engine = make(tmp_path)
    snaps: list[Snapshot] = []
    engine.subscribe(snaps.append)
    with engine.snapshots_held():
        for k in range(5):
            engine.tick(T0 + k, {CPU: float(k)})
    assert [s.ts for s in snaps] == [T0 + 4]
    with engine.snapshots_held():
        pass
    assert len(snaps) == 1  # no tick ran: nothing new to show


def test_source_queries_name_where_a_series_came_from(tmp_path: Path) -> None:
    engine = make(tmp_path)
    assert engine.source_of(CPU) == "host:web-1"  # by its name, before any poll
    assert engine.source_of("traffic:shop/visitors") is None
    engine.learn_sources({"fleet/cpu": "host:web-1", "gone/cpu": "no-such-source", "unknown/cpu": None})
    assert engine.source_of("fleet/cpu") == "host:web-1" and engine.source_of("gone/cpu") is None
    engine.set_source_state("host:web-1", ok=False, error="stale (recorded)", last_success=None)
    h = engine.source_health()["host:web-1"]
    assert (h.ok, h.error, h.stale(T0)) == (False, "stale (recorded)", True)
    version = engine.sources_version
    engine.tick(T0, {CPU: 1.0})
    assert engine.sources_version != version
    names, values, stale = engine.current_values(T0 + 10)
    assert list(names) == [CPU] and values.tolist() == [1.0] and stale.tolist() == [True]


async def test_a_recording_the_daemon_cannot_open_is_one_line_and_exit_2(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from surgewatch.frontends.headless import Daemon

    # resolve_config checks the target up front; this drives the daemon's own check (the file's directory
    # went away between the two).
    target = tmp_path / "gone" / "s.swrec"
    cfg = parse_config(f'[monitor]\nstate_dir = "{tmp_path / "state"}"\nrecord = "{target}"\n', "c.toml", {})
    with caplog.at_level(logging.ERROR):
        assert await Daemon(cfg, None, 1.0).main() == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert str(target) in line and "does not exist" in line and "\n" not in line


def test_a_replay_seeking_back_keeps_its_subscribers_and_sends_one_snapshot_per_seek() -> None:
    from surgewatch.recording.reader import Recording
    from surgewatch.recording.replay import ReplayDriver, replay_config
    from surgewatch.scenarios import path

    rec = Recording(str(path("saturates")))
    d = ReplayDriver(rec, replay_config(rec))
    snaps: list[Snapshot] = []
    fired: list[str] = []
    d.engine.subscribe(snaps.append)
    d.on_events(lambda evs: fired.extend(e.rule for e in evs))
    first = float(d.timeline[0])
    d.seek(first + 1800.0)
    d.seek(first + 600.0)  # backwards: the engine is rebuilt from the recording's start
    assert [s.ts for s in snaps] == [first + 1800.0, first + 600.0]
    assert d.engine.last_tick == first + 600.0
    left = d.timeline.size - d.index
    d.play_all()  # the same subscribers hear every tick left, and events flow again after seeking
    assert len(snaps) == 2 + left and snaps[-1].ts == d.end and "cpu-high" in fired


def test_a_snapshots_host_sparklines_are_the_recent_values_and_stay_as_they_were_after_more_ticks(
        tmp_path: Path) -> None:
    engine = make(tmp_path)
    for k in range(5):
        engine.tick(T0 + k, {CPU: 10.0 + k, "host:web-1/mem.percent": 50.0 - k, "host:web-1/disk.read_bps": 1.0})
    host = engine.snapshot().hosts[0]
    assert dict(host.spark) == {"cpu.percent": (10.0, 11.0, 12.0, 13.0, 14.0),
                                "mem.percent": (50.0, 49.0, 48.0, 47.0, 46.0)}  # sparks of the spark metrics only
    assert host.spark.get("load.1", ()) == () and len(host.spark) == 2
    engine.tick(T0 + 5, {CPU: 99.0})
    assert host.spark["cpu.percent"] == (10.0, 11.0, 12.0, 13.0, 14.0)  # a snapshot is not changed by later ticks
    assert engine.snapshot().hosts[0].spark["cpu.percent"][-2:] == (14.0, 99.0)
