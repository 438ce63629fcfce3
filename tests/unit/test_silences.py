"""Silences and acknowledgements: persistence in the state dir, matching, and their effect on notifications."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from surgewatch.alerting.rules import RuleEngine
from surgewatch.alerting.silences import SilenceError, SilenceStore
from surgewatch.config import RuleConfig

NAMES = ["host:web-1/cpu.percent", "host:web-2/cpu.percent"]
RULE = RuleConfig(name="cpu-high", series="host:*/cpu.percent", above=90.0, repeat=60.0)


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def engine_with(store: SilenceStore) -> RuleEngine:
    return RuleEngine([RULE], silences=store)


def tick(engine: RuleEngine, clock: Clock, t: float, values: list[float]) -> list[tuple[str, str]]:
    clock.t = t
    out = engine.evaluate(t, NAMES, 1, np.array(values), None)
    return [(e.event, e.series) for e in out]


def test_silences_survive_a_restart_and_expire(tmp_path: Path) -> None:
    clock = Clock()
    a = SilenceStore(tmp_path, clock=clock)
    s = a.add("cpu-*", "host:web-1/*", until=2000.0, comment="maintenance")
    b = SilenceStore(tmp_path, clock=clock)
    b.refresh()
    (got,) = b.silences()
    assert (got.id, got.rule, got.series, got.until, got.comment) == (s.id, "cpu-*", "host:web-1/*", 2000.0,
                                                                      "maintenance")
    assert got.matches("cpu-high", "host:web-1/cpu.percent")
    assert not got.matches("mem-high", "host:web-1/mem.percent")
    assert not got.matches("cpu-high", "host:web-2/cpu.percent")
    clock.t = 2000.0
    assert b.silences() == [] and len(b.silences(include_expired=True)) == 1
    assert b.remove(s.id) and not b.remove(s.id)


def test_store_picks_up_changes_made_by_another_process(tmp_path: Path) -> None:
    clock = Clock()
    daemon = SilenceStore(tmp_path, clock=clock, poll_every=1.0)
    daemon.refresh()
    cli = SilenceStore(tmp_path, clock=clock)
    cli.add("*", "*", until=5000.0)
    assert not daemon.refresh()  # polled less than a second ago
    clock.t += 1.0
    assert daemon.refresh() and len(daemon.silences()) == 1


def test_unreadable_silence_file_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "silences.json").write_text("{not json")
    with pytest.raises(SilenceError, match=r"silences\.json: not a surgewatch silence file") as info:
        SilenceStore(tmp_path).refresh(force=True)
    assert "\n" not in str(info.value)
    (tmp_path / "silences.json").write_text(json.dumps({"silences": [{"id": "x"}]}))
    with pytest.raises(SilenceError, match="KeyError"):
        SilenceStore(tmp_path).refresh(force=True)


def test_silence_in_the_past_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SilenceError, match="future"):
        SilenceStore(tmp_path, clock=Clock(100.0)).add("*", "*", until=50.0)


def test_silenced_alert_changes_state_but_is_not_notified(tmp_path: Path) -> None:
    clock = Clock()
    store = SilenceStore(tmp_path, clock=clock)
    engine = engine_with(store)
    store.add("cpu-high", "host:web-1/*", until=1100.0, comment="deploy")
    assert tick(engine, clock, 1000, [95, 95]) == [("firing", NAMES[1])]
    alert = engine.active[("cpu-high", NAMES[0])]
    assert alert.state_name == "firing" and alert.silenced
    assert [e.series for e in engine.transitions] == NAMES  # both transitions happened
    assert tick(engine, clock, 1060, [95, 95]) == [("firing", NAMES[1])]  # repeats only for the unsilenced
    # the silence ends while web-1 still fires: it is announced then
    assert tick(engine, clock, 1100, [95, 95]) == [("firing", NAMES[0])]
    assert not engine.active[("cpu-high", NAMES[0])].silenced


def test_resolve_of_an_alert_silenced_all_along_is_not_sent(tmp_path: Path) -> None:
    clock = Clock()
    store = SilenceStore(tmp_path, clock=clock)
    engine = engine_with(store)
    store.add("*", "host:web-1/*", until=5000.0)
    tick(engine, clock, 1000, [95, 10])
    assert tick(engine, clock, 1010, [10, 10]) == []
    assert [e.event for e in engine.transitions] == ["resolved"]


def test_resolve_after_a_silence_started_still_closes_what_was_announced(tmp_path: Path) -> None:
    clock = Clock()
    store = SilenceStore(tmp_path, clock=clock)
    engine = engine_with(store)
    assert tick(engine, clock, 1000, [95, 10]) == [("firing", NAMES[0])]
    engine.add_silence("cpu-high", "*", 5000.0, "too noisy", clock.t)
    assert engine.active[("cpu-high", NAMES[0])].silenced
    assert tick(engine, clock, 1060, [95, 10]) == []  # no repeat while silenced
    assert tick(engine, clock, 1070, [10, 10]) == [("resolved", NAMES[0])]


def test_removing_a_silence_announces_a_still_firing_alert(tmp_path: Path) -> None:
    clock = Clock()
    store = SilenceStore(tmp_path, clock=clock)
    engine = engine_with(store)
    s = engine.add_silence("*", "*", 5000.0, "", clock.t)
    assert tick(engine, clock, 1000, [95, 10]) == []
    assert engine.remove_silence(s.id, 1005.0)
    assert tick(engine, clock, 1005, [95, 10]) == [("firing", NAMES[0])]


def test_acknowledgement_is_kept_across_restarts_until_the_alert_resolves(tmp_path: Path) -> None:
    clock = Clock()
    engine = engine_with(SilenceStore(tmp_path, clock=clock))
    tick(engine, clock, 1000, [95, 10])
    fp = engine.active[("cpu-high", NAMES[0])].fingerprint
    assert engine.acknowledge(fp)
    restarted = engine_with(SilenceStore(tmp_path, clock=clock))
    tick(restarted, clock, 1001, [95, 10])
    assert restarted.active[("cpu-high", NAMES[0])].acked
    assert tick(restarted, clock, 1100, [95, 10]) == []  # acknowledged: no repeat
    assert tick(restarted, clock, 1101, [10, 10]) == [("resolved", NAMES[0])]
    again = SilenceStore(tmp_path, clock=clock)
    again.refresh(force=True)
    assert not again.acked(fp)
