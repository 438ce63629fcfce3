"""Hosts joining and leaving mid-run: the analyzer and its group models, updating their topology, layout and
packed models where names changed, say exactly what they say when all of those are rebuilt from scratch."""

from __future__ import annotations

import numpy as np
import pytest

from surgewatch.analysis import state
from surgewatch.analysis.analyzer import AnalysisResult, Analyzer, CampaignSpec, default_detector
from surgewatch.analysis.groupmodels import GroupModels
from tests.support.analysis_scenarios import fleet_scenario

TICKS = 300


def churned(seed: int) -> tuple[list[str], np.ndarray, dict[int, list[tuple[int, str]]], list[CampaignSpec],
                                dict[str, str], float]:
    """A fleet scenario whose hosts come and go: (names at the start, values of every row that ever exists,
    events by tick as (row, its new name; "" when freed), campaign specs naming every host, groups)."""
    sc = fleet_scenario(seed, hosts=12, groups=2, ticks=TICKS, departs=1, metrics=("cpu.percent", "load.1"))
    names = list(sc.names)
    row = {n: i for i, n in enumerate(names)}
    rng = np.random.default_rng(seed)
    extra = [("host:web-0100/cpu.percent", sc.values[row["host:web-0000/cpu.percent"]] + 1.0),
             ("host:web-0100/load.1", sc.values[row["host:web-0000/load.1"]] + 0.1),
             ("host:web-0001/mem.percent", 0.5 * sc.values[row["host:web-0001/cpu.percent"]])]
    values = np.vstack([sc.values] + [v + rng.normal(0, 0.5, TICKS) for _n, v in extra])
    events: dict[int, list[tuple[int, str]]] = {}

    def at(t: int, r: int, name: str) -> None:
        events.setdefault(t, []).append((r, name))

    for host, leave in (("web-0003", 140), ("web-0007", 215), ("web-0010", 260)):
        for m in ("cpu.percent", "load.1"):
            r = row[f"host:{host}/{m}"]
            at(leave, r, "")  # the host leaves; its rows are freed
            at(leave + 3, r, f"host:{host}-r1/{m}")  # and taken by its replacement
    at(170, len(names), extra[0][0])  # a new host on new rows
    at(170, len(names) + 1, extra[1][0])
    at(190, len(names) + 2, extra[2][0])  # a new metric on a host that is there
    at(235, row["host:web-0005/load.1"], "")  # one series disappears
    groups = dict(sc.groups)
    for host in ("web-0003", "web-0007", "web-0010"):
        groups[f"{host}-r1"] = groups[host]
    groups["web-0100"] = groups["web-0000"]
    specs = [CampaignSpec(s.name, s.series, s.traffic_series,
                          (*s.hosts, *sorted(h for h, g in groups.items() if g == s.hosts[0])))
             for s in sc.specs]
    return names, values, events, specs, groups, sc.tick


def run(seed: int, incremental: bool) -> list[tuple[object, ...]]:
    names, values, events, specs, groups, tick = churned(seed)
    an = Analyzer(default_detector(tick), specs, tick)
    an.groups = GroupModels.for_analyzer(an)
    an.series_rows.incremental = an._shape.incremental = an.groups._keeper.incremental = incremental
    ts = 1_800_000_000.0 + tick * np.arange(TICKS)
    since = np.zeros(values.shape[0], dtype=np.intp)  # the tick each row's current series started
    out = []
    for t in range(TICKS):
        changed = []
        for r, name in events.get(t, []):
            if r == len(names):
                names.append(name)
            else:
                names[r] = name
            since[r] = t
            changed.append(r)
        if changed:  # as the engine: freed rows, and rows new series took, start over
            an.forget_rows(np.array(changed, dtype=np.intp))
        n = len(names)
        an.groups.set_groups({h: g for h, g in groups.items() if any(x.startswith(f"host:{h}/") for x in names)})
        lo = max(0, t + 1 - an.fit_ticks)
        window = values[:n, lo: t + 1].copy()
        cols = np.arange(lo, t + 1)[None, :]
        window[(cols < since[:n, None]) | (np.array([not x for x in names])[:, None])] = np.nan
        index = {x: i for i, x in enumerate(names) if x}
        res = an.step(float(ts[t]), names, index, window[:, -1].copy(), ts[lo: t + 1], window)
        out.append(summary(res, an, n))
    return out


def summary(res: AnalysisResult, an: Analyzer, n: int) -> tuple[object, ...]:
    """What a tick says, in a form that compares NaN as equal."""
    assert an.groups is not None
    arrays = [np.nan_to_num(a, nan=-7.0) for a in (res.score, res.expected, res.size, res.floor,
                                                    res.seconds_to_level(np.arange(n), 80.0))]
    return (tuple(a.tobytes() for a in arrays), sorted(res.cause.items()),
            sorted((r, res.explanation[r]) for r in res.explanation), repr(res.campaigns),
            repr(sorted(res.residual_z.items())), repr(an.groups.states), repr(sorted(an.groups.departures.items())))


@pytest.mark.parametrize("seed", [0, 1])
def test_churn_gives_the_same_results_as_rebuilding_from_scratch(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = run(seed, incremental=True)
    build = state.PackedModels.build.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(state.PackedModels, "build", classmethod(
        lambda cls, models, limits=None, growth=None, reuse=None: build(cls, models, limits, growth)))
    scratch = run(seed, incremental=False)
    assert len(fast) == len(scratch) == TICKS
    for t, (a, b) in enumerate(zip(fast, scratch, strict=True)):
        assert a == b, f"tick {t}"
    # the run is worth comparing: modelled pairs, group models and causes after the hosts changed
    last = fast[-1]
    assert "LoadModel(" in str(last[3]) and "GroupState(" in str(last[5])
    assert any(len(s[1]) for s in fast[150:])
