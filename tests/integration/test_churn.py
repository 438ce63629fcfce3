"""Bounded memory under series churn: idle series are evicted everywhere they are held, and capped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from surgewatch.alerting.rules import RuleEngine
from surgewatch.config import ConfigError, RuleConfig, parse_config
from surgewatch.engine import Engine, EngineOptions
from surgewatch.model import AlertEvent, Severity
from surgewatch.recording.reader import read_series
from surgewatch.recording.replay import ReplayDispatcher
from surgewatch.recording.writer import attach_recorder
from surgewatch.sources.base import Reading, SourceError
from tests.support.servers import CannedHttpServer


def config(tmp_path: Path, monitor: str = "", record: str | None = None) -> str:
    rec = f'record = "{record}"\n' if record else ""
    return f"""
[monitor]
interval = "2s"
state_dir = "{tmp_path / 'state'}"
{rec}{monitor}

[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 90
severity = "critical"
"""


class Fleet:
    """A fleet source whose hosts the test sets per poll (a PromQL answer, as far as the engine can tell)."""

    def __init__(self, name: str = "host:fleet") -> None:
        self.name, self.interval, self.timeout, self.demo = name, 2.0, 1.0, False
        self.values: dict[str, float] = {}
        self.error: str | None = None
        self.partial: dict[str, str] = {}  # per-query errors, as the promql source reports them

    async def poll(self) -> Reading:
        if self.error:
            raise SourceError(self.error)
        return Reading(dict(self.values), {"errors": dict(self.partial)} if self.partial else {})

    async def close(self) -> None:
        return None


class Rig:
    def __init__(self, tmp_path: Path, monitor: str = "", record: bool = False) -> None:
        self.record = str(tmp_path / "churn.swrec") if record else None
        self.cfg = parse_config(config(tmp_path, monitor, self.record), "test.toml")
        self.src = Fleet()
        self.now = 1_800_000_000.0
        self.engine = Engine(self.cfg, EngineOptions(clock=lambda: self.now, dispatcher=ReplayDispatcher(())),
                             sources=[self.src])
        attach_recorder(self.engine)
        self.events: list[AlertEvent] = []

    async def tick(self, hosts: dict[str, float]) -> list[AlertEvent]:
        self.now += 2.0
        self.src.values = {f"host:{h}/cpu.percent": v for h, v in hosts.items()}
        await self.engine.collector.poll_once(self.src)
        events = self.engine.tick(self.now)
        self.events.extend(events)
        return events


async def test_fifty_new_label_values_per_tick_keep_every_map_bounded(tmp_path: Path) -> None:
    rig = Rig(tmp_path, record=True)
    for t in range(60):
        await rig.tick({f"pod-{t}-{i}": 95.0 if i == 0 else 50.0 for i in range(50)})
    eng = rig.engine
    # default eviction: 10 intervals (20 s = 10 ticks) unseen; 3,000 series were seen
    assert eng.evicted >= 3000 - 50 * 12
    assert eng.store.live <= 50 * 12 and len(eng.store) <= 50 * 12
    assert eng.store.fine.rows <= 1024  # rings grew to the peak, not to 3,000 rows
    assert len(eng.collector.health["host:fleet"].series) == eng.store.live
    assert all(eng.store.index.get(a.series, -1) >= 0 for a in eng.rules.active.values())
    assert len(eng.rules.active) <= 12
    recorder = eng.listeners[0]
    assert recorder.writer.series_held <= 50 * 12  # type: ignore[attr-defined]
    await eng.shutdown()
    _ts, values = read_series(rig.record or "")
    assert len(values) == 3000  # the recording keeps every series ever seen


async def test_evicted_series_leave_the_metrics_export(tmp_path: Path) -> None:
    from surgewatch.frontends.exportstate import ExportFeed

    rig = Rig(tmp_path)
    await rig.tick({"web-1": 50.0, "web-2": 50.0})
    for _ in range(12):
        await rig.tick({"web-2": 50.0})
    names = [s.series for s in ExportFeed(rig.engine).build(rig.now).series]
    assert names == ["host:web-2/cpu.percent"]


async def test_a_promql_fleet_whose_pods_come_and_go_stays_bounded(tmp_path: Path) -> None:
    generation = [0]

    def answer(_handler: object) -> tuple[int, dict[str, str], bytes]:
        result = [{"metric": {"instance": f"pod-{generation[0]}-{i}"}, "value": [1795438711.49, "42"]}
                  for i in range(20)]
        doc = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()

    with CannedHttpServer({"/api/v1/query": answer}) as srv:
        cfg = parse_config(config(tmp_path) + f'\n[[host]]\nname = "fleet"\nsource = "promql"\nurl = "{srv.url}"\n'
                           '[host.queries]\n"cpu.percent" = "pod_cpu"\n', "test.toml")
        now = [1_800_000_000.0]
        engine = Engine(cfg, EngineOptions(clock=lambda: now[0], dispatcher=ReplayDispatcher(())))
        for t in range(60):
            generation[0] = t // 3  # 20 pods replaced every 3 ticks
            now[0] += 2.0
            assert await engine.collector.poll_once(engine.sources[0])
            engine.tick(now[0])
        await engine.shutdown(1.0)
    assert engine.evicted >= 20 * 20 - 20 * 5 and engine.store.live <= 20 * 5 and len(engine.store) <= 20 * 5
    assert engine.store.latest(f"host:pod-{generation[0]}-0/cpu.percent") == 42.0
    # The source's own caches of label values and series names follow the fleet too (a day of 10 % churn an hour
    # at 1,000 hosts grew them by ~6 MB): no pod that left long ago is held anywhere (the analysis keeps the last
    # 16 name changes for its readers: a bounded log).
    assert [p for pod in ("pod-0-0", "pod-3-19", "pod-5-7") for p in _holders(engine, pod)] == []


async def test_an_evicted_series_that_returns_keeps_its_recorded_id(tmp_path: Path) -> None:
    rig = Rig(tmp_path, record=True)
    await rig.tick({"web-1": 50.0, "web-2": 51.0})
    for _ in range(12):
        await rig.tick({"web-2": 52.0})
    assert "host:web-1/cpu.percent" not in rig.engine.store.index
    await rig.tick({"web-1": 60.0, "web-2": 53.0})
    await rig.engine.shutdown()
    _ts, values = read_series(rig.record or "")
    web1 = values["host:web-1/cpu.percent"]
    assert sorted(values) == ["host:web-1/cpu.percent", "host:web-2/cpu.percent"]
    assert web1[0] == 50.0 and web1[-1] == 60.0 and np.isnan(web1[1:-1]).all()


async def test_a_firing_alert_on_a_departed_host_resolves_stale_and_its_row_serves_a_new_host(
        tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    assert [(e.event, e.series) for e in await rig.tick({"web-1": 95.0, "web-2": 50.0})] == [
        ("firing", "host:web-1/cpu.percent")]
    row = rig.engine.store.index["host:web-1/cpu.percent"]
    for _ in range(12):
        await rig.tick({"web-2": 50.0})
    resolved = [e for e in rig.events if e.event == "resolved"]
    assert [(e.series, e.labels.get("reason")) for e in resolved] == [("host:web-1/cpu.percent", "stale")]
    assert "host:web-1/cpu.percent" not in rig.engine.store.index and rig.engine.rules.active == {}
    events = await rig.tick({"web-2": 50.0, "web-9": 97.0})
    assert rig.engine.store.index["host:web-9/cpu.percent"] == row  # the freed row, reused
    assert [(e.event, e.series) for e in events] == [("firing", "host:web-9/cpu.percent")]
    assert [e.event for e in rig.events].count("resolved") == 1  # nothing resolved twice


def test_forgetting_a_firing_series_resolves_it_with_reason_stale() -> None:
    names = ["host:a/cpu.percent", "host:b/cpu.percent"]
    rules = RuleEngine([RuleConfig(name="cpu-high", series="host:*/cpu.percent", above=90.0,
                                   severity=Severity.CRITICAL)])
    fired = rules.evaluate(0.0, names, 1, np.array([95.0, 95.0]), None)
    assert sorted(e.series for e in fired) == names
    names[0] = ""  # what the store does when it evicts a row
    rules.forget_rows(np.array([0]), ["host:a/cpu.percent"], 1.0)
    out = rules.evaluate(2.0, names, 2, np.array([np.nan, 96.0]), None)
    assert [(e.event, e.series, e.labels["reason"]) for e in out] == [("resolved", "host:a/cpu.percent", "stale")]
    assert list(rules.active) == [("cpu-high", "host:b/cpu.percent")]
    names[0] = "host:c/cpu.percent"  # a new series takes the row
    out = rules.evaluate(4.0, names, 3, np.array([99.0, 96.0]), None)
    assert [(e.event, e.series) for e in out] == [("firing", "host:c/cpu.percent")]


async def test_series_of_a_failing_source_are_kept_for_when_it_comes_back(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    await rig.tick({"web-1": 50.0})
    rig.src.error = "connection refused"
    for _ in range(30):
        await rig.tick({})
    assert rig.engine.store.index["host:web-1/cpu.percent"] == 0 and rig.engine.evicted == 0
    rig.src.error = None
    await rig.tick({"web-1": 51.0})
    assert rig.engine.store.latest("host:web-1/cpu.percent") == 51.0


async def test_series_of_a_source_failing_in_part_are_kept(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    await rig.tick({"web-1": 50.0, "web-2": 50.0})
    rig.src.partial = {"cpu.percent": "query for 'cpu.percent' failed: timeout"}
    for _ in range(30):
        await rig.tick({"web-2": 50.0})
    assert "host:web-1/cpu.percent" in rig.engine.store.index
    rig.src.partial = {}
    for _ in range(12):
        await rig.tick({"web-2": 50.0})
    assert "host:web-1/cpu.percent" not in rig.engine.store.index  # gone for good once the source is whole


async def test_evict_after_sets_how_long_an_idle_series_is_kept(tmp_path: Path) -> None:
    rig = Rig(tmp_path, monitor='evict_after = "1m"')
    await rig.tick({"web-1": 50.0, "web-2": 50.0})
    for _ in range(30):
        await rig.tick({"web-2": 50.0})
    assert "host:web-1/cpu.percent" in rig.engine.store.index  # 60 s without it
    await rig.tick({"web-2": 50.0})
    await rig.tick({"web-2": 50.0})
    assert "host:web-1/cpu.percent" not in rig.engine.store.index


async def test_the_max_series_cap_drops_new_series_with_one_warning(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(tmp_path, monitor="max_series = 100")
    with caplog.at_level("WARNING", logger="surgewatch.store"):
        for t in range(5):
            await rig.tick({f"web-{i}": 50.0 + t for i in range(150)})
    assert rig.engine.store.live == 100 and len(rig.engine.store) == 100
    assert rig.engine.store.latest("host:web-0/cpu.percent") == 54.0  # held series keep updating
    assert sum("max_series cap" in r.getMessage() for r in caplog.records) == 1
    assert len(rig.engine.snapshot().values) == 100
    assert len(rig.engine.collector.health["host:fleet"].series) == 100  # the dropped ones are held nowhere


async def test_a_reload_raising_max_series_takes_the_refused_series(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(tmp_path, monitor="max_series = 100")
    with caplog.at_level("WARNING", logger="surgewatch.store"):
        await rig.tick({f"web-{i}": 50.0 for i in range(150)})
        await rig.engine.reload(parse_config(config(tmp_path, "max_series = 120"), "test.toml"))
        await rig.tick({f"web-{i}": 50.0 for i in range(150)})
    assert rig.engine.store.live == 120
    assert sum("max_series cap" in r.getMessage() for r in caplog.records) == 2  # once per cap


@pytest.mark.parametrize(("line", "message"), [
    ("max_series = 0", "max_series must be at least 1, got 0"),
    ('max_series = "many"', "max_series must be a whole number"),
    ('evict_after = "0s"', "evict_after must be at least 1s"),
])
def test_bad_eviction_settings_are_one_clear_line(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(config(tmp_path, line), "test.toml")


def test_eviction_settings_are_read() -> None:
    cfg = parse_config('[monitor]\nevict_after = "15m"\nmax_series = 50000\n', "test.toml")
    assert (cfg.monitor.evict_after, cfg.monitor.max_series) == (900.0, 50_000)
    default = parse_config("", "test.toml").monitor
    assert (default.evict_after, default.max_series) == (None, 20_000)


def _holders(root: object, host: str, limit: int = 2_000_000) -> list[str]:
    """Paths from `root` (through attributes and containers, not functions' modules) to strings that name `host`
    or one of its series."""
    import gc
    import types

    found: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[object, str]] = [(root, "engine")]
    while stack and len(seen) < limit:
        obj, path = stack.pop()
        if isinstance(obj, str):  # every path to a string (one string is often shared by several holders)
            if obj == host or f":{host}/" in obj:
                found.append(path)
            continue
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType, types.CodeType, types.FunctionType,
                                               types.BuiltinFunctionType, np.ndarray)):
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            stack.extend((k, f"{path}{{key}}") for k in obj)
            stack.extend((v, f"{path}[{str(k)[:40]}]") for k, v in obj.items())
        else:
            stack.extend((v, f"{path}.{type(v).__name__}") for v in gc.get_referents(obj))
    return found


async def test_a_departed_hosts_series_are_held_nowhere_and_its_row_starts_fresh_for_a_newcomer(
        tmp_path: Path) -> None:
    import surgewatch.model as model

    rig = Rig(tmp_path)
    fleet = {"web-1": 50.0, "web-2": 52.0, "web-3": 48.0}
    for t in range(40):
        await rig.tick({h: v + (t % 3) for h, v in fleet.items()})
    eng = rig.engine
    row = eng.store.index["host:web-1/cpu.percent"]
    del fleet["web-1"]  # web-1 leaves the fleet
    for _ in range(12):
        await rig.tick(fleet)
    assert eng.evicted == 1 and not model.split_cached("host:web-1/cpu.percent")
    fleet["web-9"] = 70.0  # a newcomer takes the departed host's row
    await rig.tick(fleet)
    assert eng.store.index["host:web-9/cpu.percent"] == row and len(eng.store) == 3
    det = eng.analyzer.detector
    surge = getattr(det, "surge", det)
    assert surge.n[row] == 1 and surge.level[row] == 70.0  # one sample: learned from nothing before it
    assert (surge.cells[:, :, row] == 0).sum() >= surge.cells.shape[0] * 2 - 2  # one daily bin written at most
    roots = [eng, vars(model)]
    assert [p for r in roots for p in _holders(r, "web-1")] == []


async def test_a_departed_host_that_was_firing_leaves_rules_and_notifications_too(tmp_path: Path) -> None:
    import surgewatch.model as model

    rig = Rig(tmp_path)
    fleet = {"web-1": 95.0, "web-2": 52.0}
    for _ in range(40):
        await rig.tick(fleet)
    assert ("cpu-high", "host:web-1/cpu.percent") in rig.engine.rules.active
    del fleet["web-1"]
    for _ in range(40):
        await rig.tick(fleet)
    held = [p for r in (rig.engine, vars(model)) for p in _holders(r, "web-1")]
    assert held and all(p.startswith("engine.dict[events]") for p in held)  # only the last 200 events' history
    assert len(rig.engine.events) <= 200
