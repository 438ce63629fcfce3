"""Load models per campaign × host group: shared models, headroom per group, and hosts that depart from their group."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from surgewatch.analysis.analyzer import AnalysisResult, Analyzer, default_detector, replay
from surgewatch.analysis.groupmodels import GroupModels
from surgewatch.config import parse_config
from surgewatch.engine import Engine, EngineOptions
from surgewatch.model import Cause
from surgewatch.recording.replay import ReplayDispatcher
from surgewatch.sources.base import Reading
from tests.support.analysis_scenarios import FleetScenario, fleet_scenario


def run(sc: FleetScenario, groups: bool = True) -> tuple[Analyzer, list[AnalysisResult]]:
    an = Analyzer(default_detector(sc.tick), sc.specs, sc.tick)
    if groups:
        an.groups = GroupModels.for_analyzer(an)
        an.groups.set_groups(sc.groups)
    return an, list(replay(an, sc.ts, sc.names, sc.values))


@pytest.fixture(scope="module")
def fleet() -> tuple[FleetScenario, Analyzer, list[AnalysisResult]]:
    sc = fleet_scenario(3, hosts=24, groups=2, ticks=600, departs=1)
    an, results = run(sc)
    return sc, an, results


def test_a_host_above_its_group_is_unexplained_and_names_its_groups_level(fleet) -> None:
    sc, _an, results = fleet
    (host, start), = sc.departs.items()
    row = sc.names.index(f"host:{host}/cpu.percent")
    group = sc.groups[host]
    found = [t for t, res in enumerate(results) if "its group" in res.explanation.get(row, "")
             and res.explanation[row].endswith("unexplained")]
    assert found and start <= found[0] <= start + 5  # found within a few ticks of the host leaving its group
    res = results[found[0]]
    assert res.cause[row] == (Cause.UNEXPLAINED, None)
    text = res.explanation[row]
    assert text.startswith(f"{host} CPU ") and f"its group {group} runs at" in text
    assert "for the same traffic" in text and text.endswith("; unexplained")
    assert res.score[row] >= 0.5


def test_no_other_host_departs_from_its_group(fleet) -> None:
    sc, an, results = fleet
    assert an.groups is not None
    (host, _start), = sc.departs.items()
    rows = {sc.names.index(f"host:{h}/cpu.percent") for h in sc.groups if h != host}
    flagged = {r for res in results for r, text in res.explanation.items()
               if r in rows and "its group" in text and text.endswith("unexplained")}
    assert not flagged


def test_each_group_gets_one_model_with_its_lag_and_slope(fleet) -> None:
    sc, an, _results = fleet
    assert an.groups is not None
    states = {(s.campaign, s.group): s for s in an.groups.states if s.campaign is not None}
    assert set(states) == {("camp-0", "pool-0"), ("camp-1", "pool-1")}
    for (_c, g), s in states.items():
        assert s.model is not None and s.model.usable
        assert abs(s.model.lag_ticks - sc.lag[g]) <= 1
        assert s.model.slope == pytest.approx(sc.slope[g], rel=0.1)
        assert s.hosts == 12 and s.lag_seconds == s.model.lag_ticks * sc.tick


def test_group_headroom_is_the_traffic_multiple_to_the_limit(fleet) -> None:
    sc, an, _results = fleet
    assert an.groups is not None
    for s in an.groups.states:
        if s.campaign is None:
            continue
        m, cap = s.model, s.capacity
        assert m is not None and cap.known and cap.limit == 90.0
        row = sc.names.index(f"traffic:site-{s.campaign[-1]}/visitors")
        x_now = float(sc.values[row, -1])
        assert cap.headroom == pytest.approx((90.0 - m.intercept) / (m.slope * x_now), rel=1e-6)
        assert not math.isnan(cap.seconds_to_limit)  # known: a number, or inf when traffic is flat


def test_the_departing_host_is_listed_on_its_groups_state(fleet) -> None:
    sc, an, _results = fleet
    assert an.groups is not None
    (host, _start), = sc.departs.items()
    state = next(s for s in an.groups.states if s.group == sc.groups[host] and s.campaign is not None)
    assert state.departing == (host,)


def test_without_groups_analysis_is_unchanged() -> None:
    sc = fleet_scenario(4, hosts=8, groups=2, ticks=300, departs=0)
    _an, plain = run(sc, groups=False)
    an = Analyzer(default_detector(sc.tick), sc.specs, sc.tick)
    an.groups = GroupModels.for_analyzer(an)  # no host has a group
    for a, b in zip(plain, replay(an, sc.ts, sc.names, sc.values), strict=True):
        assert a.cause == b.cause and a.explanation == b.explanation
        np.testing.assert_array_equal(a.score, b.score)
    assert an.groups.states == ()


def test_a_group_of_three_hosts_has_no_usual_level_to_depart_from() -> None:
    sc = fleet_scenario(5, hosts=6, groups=2, ticks=400, departs=2)
    an, results = run(sc)
    assert an.groups is not None
    assert not any(an.groups.departures for _ in results[:1])
    assert all("its group" not in t for res in results for t in res.explanation.values())


def test_hosts_of_a_group_a_campaign_names_rise_with_it_explained(fleet) -> None:
    # the campaigns name groups only (as with a fleet source's group_label): the analyzer knows no host of
    # theirs, so every rise with the launch is explained through the group, first while its model learns
    sc, _an, results = fleet
    (host, _start), = sc.departs.items()
    rows = {sc.names.index(f"host:{h}/cpu.percent") for h in sc.groups if h != host}
    unexplained = {r for res in results for r, c in res.cause.items() if r in rows and c[0] == Cause.UNEXPLAINED}
    assert not unexplained
    texts = [res.explanation[r] for res in results for r, c in res.cause.items() if r in rows]
    assert any("as its group model expects" in t and t.endswith("; explained") for t in texts)


def test_while_the_group_model_learns_a_surge_of_its_campaign_likely_explains_the_rise() -> None:
    sc = fleet_scenario(7, hosts=12, groups=1, tick=2.0, ticks=200, departs=0)
    _an, results = run(sc)
    rows = {sc.names.index(f"host:{h}/cpu.percent") for h in sc.groups}
    causes = [(c, res.explanation[r]) for res in results for r, c in res.cause.items() if r in rows]
    assert causes and all(c == (Cause.CAMPAIGN, "camp-0") for c, _t in causes)
    assert any("its group pool-0 runs at" in t and "traffic from camp-0 is" in t
               and t.endswith("(group model still learning); likely explained") for _c, t in causes)


# -- through the engine: rules, snapshots ---------------------------------------------------------------------


class Fleet:
    """A fleet source reporting each host's group with its readings (as the promql source's group_label does)."""

    def __init__(self, groups: dict[str, str]) -> None:
        self.name, self.interval, self.timeout, self.demo = "host:fleet", 2.0, 1.0, False
        self.values: dict[str, float] = {}
        self.groups = groups

    async def poll(self) -> Reading:
        return Reading(dict(self.values), {"groups": dict(self.groups)})

    async def close(self) -> None:
        return None


CONFIG = """
[monitor]
interval = "2s"
state_dir = "{state}"

[[host]]
name = "fleet"
source = "promql"
url = "http://127.0.0.1:9"

[[traffic]]
name = "site-0"
source = "json"
url = "http://127.0.0.1:9/x"
value = "v"

[[campaign]]
name = "camp-0"
traffic = "site-0"
hosts = ["pool-0"]

[[rule]]
name = "unexplained-load"
series = "host:*/cpu.percent"
anomaly = "unexplained"
severity = "warning"
"""


async def drive(engine: Engine, src: Fleet, sc: FleetScenario, ticks: range, now: list[float]) -> list:
    events = []
    for t in ticks:
        now[0] = float(sc.ts[t])
        src.values = {n: float(v) for n, v in zip(sc.names, sc.values[:, t], strict=True)
                      if not math.isnan(v) and not n.startswith("traffic:") and not n.startswith("campaign:")}
        traffic = {n: float(v) for n, v in zip(sc.names, sc.values[:, t], strict=True)
                   if not math.isnan(v) and (n.startswith("traffic:") or n.startswith("campaign:"))}
        src.values.update(traffic)
        await engine.collector.poll_once(src)
        events.extend(engine.tick(now[0]))
    return events


def fleet_engine(tmp_path: Path, sc: FleetScenario, keep_models: bool | None = None) -> tuple[Engine, Fleet, list]:
    cfg = parse_config(CONFIG.format(state=tmp_path / "state"), "fleet.toml")
    src = Fleet(sc.groups)
    now = [float(sc.ts[0])]
    engine = Engine(cfg, EngineOptions(clock=lambda: now[0], dispatcher=ReplayDispatcher(()),
                                       keep_models=keep_models), sources=[src])
    return engine, src, now


async def test_a_departing_host_fires_the_unexplained_rule_and_groups_show_on_the_campaign(tmp_path: Path) -> None:
    sc = fleet_scenario(7, hosts=12, groups=1, tick=2.0, ticks=320, departs=1)
    (host, start), = sc.departs.items()
    engine, src, now = fleet_engine(tmp_path, sc)
    events = await drive(engine, src, sc, range(320), now)
    firing = [e for e in events if e.event == "firing" and e.rule == "unexplained-load"]
    assert [e.series for e in firing] == [f"host:{host}/cpu.percent"]
    assert firing[0].ts >= sc.ts[start] and "its group pool-0 runs at" in firing[0].explanation
    view = next(c for c in engine.snapshot().campaigns if c.name == "camp-0")
    (g,) = [g for g in view.groups if g.metric == "cpu.percent"]
    assert g.group == "pool-0" and g.hosts == 12 and g.departing == (host,) and not g.restored
    assert g.slope == pytest.approx(sc.slope["pool-0"], rel=0.15) and g.headroom > 0
    assert not (tmp_path / "state" / "models.json").exists()  # an injected clock keeps no models by default


def test_the_campaign_screen_names_each_group_its_model_headroom_and_the_hosts_above_it() -> None:
    from rich.style import Style

    from surgewatch.snapshot import GroupView
    from surgewatch.tui.screens.detail import group_lines

    def sty(_name: str) -> Style:
        return Style()

    learned = GroupView("pool-0", "cpu.percent", 412, 55.0, 45.0, 0.032, 8.2, 0.98, 54.0, 1.7, 630.0,
                        ("web-0417",), restored=True)
    learning = GroupView("pool-1", "cpu.percent", 3, 20.0, float("nan"), float("nan"), float("nan"), float("nan"),
                         float("nan"), float("nan"), float("nan"))
    lines = group_lines((learned, learning), sty).plain.splitlines()
    assert lines[0].startswith("group pool-0 (412 hosts) CPU 55%  lag 45s  8.2 + 0.032·visitors (r² 0.98, saved)")
    assert "headroom 1.7x, limit in 10m30s" in lines[0] and lines[0].endswith("above group: web-0417")
    assert lines[1] == "group pool-1 (3 hosts) CPU 20%  no group model yet  headroom unknown"


def test_group_means_kept_tick_by_tick_fit_the_same_models_as_gathering_every_hosts_window() -> None:
    sc = fleet_scenario(9, hosts=12, groups=2, ticks=300, departs=0)
    kept, _ = run(sc)
    gathered = Analyzer(default_detector(sc.tick), sc.specs, sc.tick)
    gathered.groups = GroupModels.for_analyzer(gathered)
    gathered.groups.set_groups(sc.groups)
    gathered.groups.keep_means = False
    list(replay(gathered, sc.ts, sc.names, sc.values))
    assert kept.groups is not None and gathered.groups is not None
    a = {(s.campaign, s.group): s.model for s in kept.groups.states}
    b = {(s.campaign, s.group): s.model for s in gathered.groups.states}
    assert a.keys() == b.keys() and all(m is not None for m in a.values())
    for key, m in a.items():
        assert m is not None and b[key] is not None
        assert (m.lag_ticks, m.n) == (b[key].lag_ticks, b[key].n)  # type: ignore[union-attr]
        assert m.slope == pytest.approx(b[key].slope) and m.intercept == pytest.approx(b[key].intercept)  # type: ignore[union-attr]


def test_a_host_leaving_its_group_keeps_the_groups_model_and_its_kept_means() -> None:
    sc = fleet_scenario(10, hosts=12, groups=1, ticks=400, departs=0)
    an = Analyzer(default_detector(sc.tick), sc.specs, sc.tick)
    an.groups = GroupModels.for_analyzer(an)
    an.groups.set_groups(sc.groups)
    steps = replay(an, sc.ts, sc.names, sc.values)
    for _ in range(300):
        next(steps)
    before = an.groups.learned()
    assert len(before) == 1 and before[0].hosts == 12
    an.groups.set_groups({h: g for h, g in sc.groups.items() if h != "web-0005"})  # it left the pool
    next(steps)
    (state,) = [s for s in an.groups.states if s.campaign is not None]
    assert state.hosts == 11 and state.model is not None and state.model.slope == before[0].slope  # not refitted
    assert an.groups.learned()[0].slope == before[0].slope
    for _ in steps:
        pass
    (after,) = an.groups.learned()
    assert after.hosts == 11 and after.slope == pytest.approx(sc.slope["pool-0"], rel=0.1)
