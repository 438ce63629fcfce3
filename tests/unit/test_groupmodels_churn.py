"""Group models while other hosts join and leave every tick: a host above its group is still found, as soon as
without churn (what is counted per staying host and group carries over a change of layout)."""

from __future__ import annotations

import numpy as np

from surgewatch.analysis.analyzer import Analyzer, default_detector
from surgewatch.analysis.groupmodels import GroupModels
from tests.support.analysis_scenarios import fleet_scenario


def departures(churn: bool) -> tuple[str, int, list[int]]:
    """(the departing host, the tick it leaves its group, the ticks it is found above its group)."""
    sc = fleet_scenario(5, hosts=24, groups=2, ticks=420, departs=1, excess=18.0, noise=1.0, missing=0.0)
    (host, start), = sc.departs.items()
    names = [*sc.names, ""]  # one more row: a host that comes and goes every tick with churn
    values = np.vstack([sc.values, np.full((1, sc.values.shape[1]), np.nan)])
    ghost = len(names) - 1
    an = Analyzer(default_detector(sc.tick), sc.specs, sc.tick)
    an.groups = GroupModels.for_analyzer(an)
    row = sc.names.index(f"host:{host}/cpu.percent")
    found = []
    for t in range(values.shape[1]):
        groups = dict(sc.groups)
        if churn and t >= 100:  # a new host every tick on the freed row, in the departing host's group
            names[ghost] = f"host:ghost-{t}/cpu.percent"
            groups[f"ghost-{t}"] = sc.groups[host]
            an.forget_rows(np.array([ghost]))
        an.groups.set_groups(groups)
        lo = max(0, t + 1 - an.fit_ticks)
        index = {n: i for i, n in enumerate(names) if n}
        res = an.step(float(sc.ts[t]), names, index, values[:, t].copy(), sc.ts[lo: t + 1], values[:, lo: t + 1])
        if row in an.groups.departures:
            assert res.explanation[row].endswith("unexplained")
            found.append(t)
    return host, start, found


def test_a_host_above_its_group_is_found_while_other_hosts_join_and_leave_every_tick() -> None:
    _host, start, calm = departures(churn=False)
    assert calm and start <= calm[0] <= start + 5  # found, a few ticks after it left its group
    _host, _start, churned = departures(churn=True)
    assert churned == calm
