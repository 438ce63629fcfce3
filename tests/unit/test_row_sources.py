"""RowSources follows churn row by row and gives what a rebuild from all names gives (rowsources.py)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from surgewatch.rowsources import RowSources, Timing


@dataclass
class Health:
    name: str
    interval: float
    series: set[str] = field(default_factory=set)


def same(a: RowSources, b: RowSources, names: list[str]) -> None:
    n = len(names)
    assert a.row_source[:n].tolist() == b.row_source[:n].tolist()
    assert a.stale_after[:n].tolist() == b.stale_after[:n].tolist()
    assert a.evict_ticks[:n].tolist() == b.evict_ticks[:n].tolist()
    assert {k: a.series_source.get(k) for k in names} == {k: b.series_source.get(k) for k in names}
    assert set(a.hosts()) == set(b.hosts())
    for who, row in a.hosts().items():  # the row kept for a host is one of that host's rows
        assert names[row].startswith(f"host:{who}/")


def test_rows_follow_joins_leaves_and_reused_rows_as_a_rebuild_does() -> None:
    rng = random.Random(7)
    fleet = Health("host:fleet", 15.0)
    web = Health("traffic:web", 60.0)
    health = {"host:fleet": fleet, "traffic:web": web}
    timing = Timing(15.0, None)
    names: list[str] = ["traffic:web/visitors"]
    web.series.add(names[0])
    hosts = [f"web-{k}" for k in range(30)]
    for who in hosts:
        for m in ("cpu.percent", "mem.percent", "load.1"):
            names.append(f"host:{who}/{m}")
            fleet.series.add(names[-1])
    live = RowSources()
    next_host = 30
    for tick in range(120):
        version = tick
        if tick % 3 == 0:  # a host leaves: its rows are freed ("")
            who = rng.choice([n.split("/")[0][5:] for n in names if n.startswith("host:")])
            gone = [n for n in names if n.startswith(f"host:{who}/")]
            live.forget(gone)
            fleet.series.difference_update(gone)
            names = ["" if n in gone else n for n in names]
        if tick % 3 == 1:  # a host joins: free rows first, then new ones
            who = f"web-{next_host}"
            next_host += 1
            for m in ("cpu.percent", "mem.percent", "load.1"):
                name = f"host:{who}/{m}"
                fleet.series.add(name)
                free = [r for r, n in enumerate(names) if n == ""]
                if free:
                    names[free[0]] = name
                else:
                    names.append(name)
        if tick % 10 == 5:  # one series of a host goes, its others stay (the row kept for it may be this one)
            row = next(r for r, n in enumerate(names) if n.startswith("host:") and n.endswith("/cpu.percent"))
            live.forget([names[row]])
            fleet.series.discard(names[row])
            names[row] = ""
        if tick == 60:  # a series whose source reports it only a tick later
            names.append("host:late/cpu.percent")
        if tick == 61:
            fleet.series.add("host:late/cpu.percent")
        live.update(names, version, health, timing)
        rebuilt = RowSources()
        rebuilt.update(names, version, health, timing)
        same(live, rebuilt, names)
    assert live.hosts()["late"] == names.index("host:late/cpu.percent")
    assert live.row_source[names.index("host:late/cpu.percent")] == 0


def test_a_reset_takes_new_intervals_and_evict_after() -> None:
    fleet = Health("host:fleet", 15.0, {"host:a/cpu.percent"})
    rows = RowSources()
    rows.update(["host:a/cpu.percent"], 1, {"host:fleet": fleet}, Timing(15.0, None))
    assert rows.stale_after.tolist() == [46.0] and rows.evict_ticks.tolist() == [10]
    fleet.interval = 60.0  # a reload: the same names, a longer interval
    rows.reset()
    rows.update(["host:a/cpu.percent"], 1, {"host:fleet": fleet}, Timing(15.0, 3600.0))
    assert rows.stale_after.tolist() == [181.0] and rows.evict_ticks.tolist() == [240]


def test_an_unchanged_store_is_not_looked_at_again() -> None:
    fleet = Health("host:fleet", 15.0, {"host:a/cpu.percent"})
    rows = RowSources()
    assert rows.update(["host:a/cpu.percent"], 1, {"host:fleet": fleet}, Timing(15.0, None))
    before = rows.version
    assert not rows.update(["host:a/cpu.percent"], 1, {"host:fleet": fleet}, Timing(15.0, None))
    assert rows.version == before
    assert np.array_equal(rows.row_source, [0])
