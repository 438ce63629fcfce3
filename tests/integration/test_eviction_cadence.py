"""Eviction is looked at only from the first tick a series can be due, and still forgets on time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_churn import Rig


def _count_evict_calls(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    store = rig.engine.store
    real = store.evict_idle

    def counted(limit: object) -> object:
        calls.append(store.ticks)
        return real(limit)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "evict_idle", counted)
    return calls


async def test_steady_series_are_not_looked_at_every_tick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig(tmp_path)
    calls = _count_evict_calls(rig, monkeypatch)
    for _ in range(60):
        await rig.tick({"web-1": 50.0, "web-2": 50.0})
    assert 3 <= len(calls) <= 10  # about every eleventh tick (10 intervals idle), not 60 times
    assert rig.engine.evicted == 0


async def test_an_idle_series_is_forgotten_on_the_tick_it_is_due(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig(tmp_path)
    calls = _count_evict_calls(rig, monkeypatch)
    for _ in range(7):
        await rig.tick({"web-1": 50.0, "web-2": 50.0})
    kept = 0
    while "host:web-1/cpu.percent" in rig.engine.store.index:
        await rig.tick({"web-2": 50.0})
        kept += 1
    assert kept == 12  # idle past 10 of its 2 s intervals: the tick at which looking every tick forgets it too
    assert len(calls) < 7 + kept


async def test_a_source_that_recovers_has_its_idle_series_forgotten_on_time(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    await rig.tick({"web-1": 50.0, "web-2": 50.0})
    rig.src.partial = {"cpu.percent": "query for 'cpu.percent' failed: timeout"}
    for _ in range(20):
        await rig.tick({"web-2": 50.0})
    assert "host:web-1/cpu.percent" in rig.engine.store.index  # kept while its source fails in part
    rig.src.partial = {}
    await rig.tick({"web-2": 50.0})
    assert "host:web-1/cpu.percent" not in rig.engine.store.index  # long idle: gone at the first whole poll
