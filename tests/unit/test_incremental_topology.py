"""Hosts joining and leaving: the structures analysis updates where names changed equal those built from scratch."""

from __future__ import annotations

import random
from dataclasses import fields
from typing import Any

import pytest

from surgewatch.analysis.analyzer import CampaignSpec
from surgewatch.analysis.grouplayout import GroupLayout, LayoutKeeper
from surgewatch.analysis.seriesrows import SeriesRows
from surgewatch.analysis.significance import Floors, Significance
from surgewatch.analysis.topology import TopologyKeeper
from tests.support.fields import assert_same_fields

METRICS = ("cpu.percent", "load.1", "mem.percent", "net.rx_bps", "disk.read_bps", "cpu.core0.percent",
           "cpu.core1.percent", "cpu.core2.percent")
MODELLED = ("cpu.percent", "load.1", "mem.percent", "net.rx_bps")


def campaigns(hosts: list[str]) -> list[CampaignSpec]:
    """Three campaigns: two on overlapping host lists (one naming a host twice), one on hosts that never report."""
    return [CampaignSpec("a", "campaign:a/visitors", "site:a/visitors", (*tuple(hosts[0::2]), hosts[4])),
            CampaignSpec("b", "campaign:b/visitors", "site:b/visitors", tuple(reversed(hosts[0::3]))),
            CampaignSpec("c", "campaign:c/visitors", "campaign:c/visitors", ("ghost-1", "ghost-2"))]


class Churn:
    """A store's names under churn: hosts join (rows appended or freed rows taken), leave (rows freed to ""),
    gain metrics, lose single series; traffic and campaign series come and go now and then."""

    def __init__(self, seed: int, hosts: int = 24) -> None:
        self.rng = random.Random(seed)
        self.hosts = [f"web-{i:02d}" for i in range(hosts)]
        self.names: list[str] = ["site:a/visitors", "campaign:a/visitors", "site:b/visitors",
                                 "campaign:b/visitors", "campaign:c/visitors"]
        for h in self.hosts[: hosts // 2]:
            self.join(h)

    def free(self) -> list[int]:
        return [i for i, n in enumerate(self.names) if n == ""]

    def add(self, name: str) -> None:
        if name in self.names:
            return
        free = self.free()
        if free and self.rng.random() < 0.7:
            self.names[min(free)] = name
        else:
            self.names.append(name)

    def join(self, host: str) -> None:
        for m in self.rng.sample(METRICS, self.rng.randint(1, len(METRICS))):
            self.add(f"host:{host}/{m}")

    def step(self) -> None:
        r = self.rng.random()
        held = sorted({n.split("/")[0][5:] for n in self.names if n.startswith("host:")})
        if r < 0.4 or not held:
            self.join(self.rng.choice([*self.hosts, f"new-{self.rng.randint(0, 99)}"]))
        elif r < 0.55:
            gone = self.rng.choice(held)
            self.names = ["" if n.startswith(f"host:{gone}/") else n for n in self.names]
        elif r < 0.7:  # a new metric on a host that is there
            self.add(f"host:{self.rng.choice(held)}/{self.rng.choice(METRICS)}")
        elif r < 0.85:  # one series disappears
            live = [i for i, n in enumerate(self.names) if n.startswith("host:")]
            self.names[self.rng.choice(live)] = ""
        elif r < 0.92:  # a traffic or campaign series goes or comes back
            name = self.rng.choice(["site:a/visitors", "campaign:b/visitors", "site:b/visitors"])
            if name in self.names:
                self.names[self.names.index(name)] = ""
            else:
                self.add(name)
        # else: nothing changed this tick

    @property
    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names) if n}


def assert_same_significance(a: Significance, b: Significance) -> None:
    assert_same_fields(a, b)


def assert_same_topology(a: object, b: object) -> None:
    for f in fields(a):  # type: ignore[arg-type]
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert x == y, f.name
        if f.name in ("host_drivers", "host_campaigns"):  # their order too: the refit cadence staggers host rows in it
            assert list(x.items()) == list(y.items()), f.name


@pytest.mark.parametrize("seed", range(6))
def test_series_rows_and_significance_follow_joins_and_leaves_as_a_rebuild(seed: int) -> None:
    churn, floors = Churn(seed), Floors(points=4.0, load=0.25, relative=0.4)
    rows = SeriesRows(floors)
    for _ in range(150):
        churn.step()
        rows.sync(churn.names)
        assert rows.names == churn.names
        assert rows.parts == [tuple(n.partition(":")[:1]) + tuple(n.partition(":")[2].partition("/")[::2])
                              for n in churn.names]
        assert_same_significance(rows.sig, Significance.build(churn.names, floors))
        assert rows.host.tolist() == [n.startswith("host:") for n in churn.names]


@pytest.mark.parametrize("seed", range(8))
def test_topology_follows_joins_and_leaves_as_a_rebuild_in_the_same_order(seed: int) -> None:
    churn = Churn(seed)
    specs = campaigns(churn.hosts)
    rows = SeriesRows(Floors())
    kept = TopologyKeeper(specs, MODELLED)
    incremental = 0
    for _ in range(200):
        churn.step()
        rows.sync(churn.names)
        topo, changed = kept.update(rows, churn.index)
        incremental += changed is not None
        scratch = TopologyKeeper(specs, MODELLED)
        assert_same_topology(topo, scratch.update(rows, churn.index)[0])
    assert incremental > 100  # most ticks were updates, not rebuilds


def test_a_reader_too_far_behind_builds_from_all_names() -> None:
    churn = Churn(3)
    rows = SeriesRows(Floors())
    kept = TopologyKeeper(campaigns(churn.hosts), MODELLED)
    rows.sync(churn.names)
    kept.update(rows, churn.index)
    for _ in range(60):  # more changes than the rows keep
        churn.step()
        churn.join(f"extra-{rows.version}")
        rows.sync(churn.names)
    topo, changed = kept.update(rows, churn.index)
    assert changed is None
    assert_same_topology(topo, TopologyKeeper(campaigns(churn.hosts), MODELLED).update(rows, churn.index)[0])


def assert_same_layout(a: GroupLayout, b: GroupLayout) -> None:
    assert_same_fields(a, b, same_in_order)


def same_in_order(name: str, x: Any, y: Any) -> None:
    assert x == y, name
    if isinstance(x, dict):
        assert list(x.items()) == list(y.items()), name


@pytest.mark.parametrize("seed", range(8))
def test_group_layout_follows_joins_leaves_and_regrouping_as_a_rebuild(seed: int) -> None:
    churn = Churn(seed)
    rng = random.Random(seed)
    specs = [*campaigns(churn.hosts), CampaignSpec("d", "campaign:b/visitors", "site:b/visitors", ("pool-1",))]
    pools = ("pool-0", "pool-1", "pool-2")
    groups = {h: pools[i % 3] for i, h in enumerate(churn.hosts[:-3])}  # the last three hosts in no group
    rows = SeriesRows(Floors())
    limits = {"cpu.percent": 100.0, "mem.percent": 100.0}
    kept = LayoutKeeper(specs, frozenset(MODELLED), limits)
    last, updates = None, 0
    for _ in range(200):
        churn.step()
        for n in churn.names:  # hosts that join come with their group (the source's label)
            h = n[5:].split("/")[0] if n.startswith("host:") else None
            if h is not None and h not in groups and h not in churn.hosts[-3:]:
                groups[h] = rng.choice(pools)
        if rng.random() < 0.1:  # a host moves to another group
            h = rng.choice(sorted(groups))
            groups[h] = rng.choice(pools)
        rows.sync(churn.names)
        layout = kept.update(rows, churn.index, groups)
        updates += layout is not last
        last = layout
        assert_same_layout(layout, LayoutKeeper(specs, frozenset(MODELLED), limits).update(rows, churn.index, groups))
    assert updates > 80  # the layout changed at most ticks
