"""Analysis work at a launch: sentences written when read, and the opt-in refit budget (a few seconds)."""

from __future__ import annotations

import numpy as np

from surgewatch.analysis.analyzer import Analyzer, CampaignSpec, default_detector, replay
from surgewatch.analysis.explain import Explanations
from surgewatch.model import Cause
from tests.support.analysis_scenarios import make_scenario


def test_explanations_read_ticks_later_are_those_read_at_once() -> None:
    sc = make_scenario(11, ticks=900, campaigns=2, hosts=3, spikes=3)
    at_once, later = (replay(Analyzer(default_detector(sc.tick), sc.specs, sc.tick), sc.ts, sc.names, sc.values)
                      for _ in range(2))
    now = [dict(res.explanation) for res in at_once]  # read as each tick ends
    kept = list(later)  # read only once every tick has run: episodes, bursts and models have moved on
    assert [dict(res.explanation) for res in kept] == now
    texts = [t for tick in now for t in tick.values()]
    causes = {c for res in kept for c, _who in res.cause.values()}
    # the check covers sentences of several forms: explained, learning, unexplained with sizes and floors
    assert {Cause.CAMPAIGN, Cause.UNEXPLAINED} <= causes
    assert any(t.endswith("; explained") for t in texts) and any("likely explained" in t for t in texts)
    assert any(t.endswith("; unexplained") for t in texts) and any("floor" in t for t in texts)


def test_explanations_are_a_mapping_that_writes_a_sentence_once_read() -> None:
    sc = make_scenario(11, ticks=700, campaigns=1, hosts=2, spikes=2)
    res = next(r for r in replay(Analyzer(default_detector(sc.tick), sc.specs, sc.tick), sc.ts, sc.names,
                                 sc.values) if len(r.explanation) >= 2)
    ex = res.explanation
    assert isinstance(ex, Explanations)
    first, second = list(ex)
    assert first in ex and all(not isinstance(v, str) for v in ex.pending.values())  # `in` writes nothing
    text = ex[first]
    assert isinstance(ex.pending[first], str) and ex[first] is text  # written once, then kept
    ex[second] = "set by a later stage"  # group models, schedules and annotations rewrite rows as in a dict
    assert list(ex) == [first, second] and ex[second] == "set by a later stage"
    assert dict(ex) == {first: text, second: "set by a later stage"} and len(ex) == 2
    del ex[first]
    assert first not in ex and list(ex) == [second]


def _fleet(hosts: int, ticks: int, tick: float) -> tuple[np.ndarray, list[str], np.ndarray, list[CampaignSpec]]:
    """One campaign on `hosts` hosts (CPU and memory follow its traffic, lag 2 ticks): calm, a launch to 4x
    over 20 ticks, then it holds."""
    rng = np.random.default_rng(5)
    k = np.arange(ticks)
    traffic = 200.0 * (1.0 + 3.0 * np.clip((k - 150) / 20.0, 0.0, 1.0)) + rng.normal(0, 4.0, ticks)
    lagged = np.concatenate([np.full(2, traffic[0]), traffic[:-2]])
    names = ["traffic:site/visitors", "campaign:launch/visitors"]
    rows = [traffic, np.maximum(traffic - 200.0, 0.0) + rng.normal(0, 2.0, ticks)]
    for h in range(hosts):
        gain = 0.05 + 0.01 * h
        names += [f"host:web-{h}/cpu.percent", f"host:web-{h}/mem.percent"]
        rows += [10.0 + gain * lagged + rng.normal(0, 0.8, ticks),
                 30.0 + 0.5 * gain * lagged + rng.normal(0, 0.5, ticks)]
    spec = CampaignSpec("launch", names[1], names[0], tuple(f"web-{h}" for h in range(hosts)))
    return 1_800_000_000.0 + k * tick, names, np.vstack(rows), [spec]


def _models(res: object) -> list[tuple[str, str, object]]:
    return [(p.host, p.metric, p.model) for c in res.campaigns for p in c.pairs]  # type: ignore[attr-defined]


def test_a_budgeted_refit_schedule_converges_to_the_same_models() -> None:
    tick = 15.0
    ts, names, values, specs = _fleet(32, 330, tick)  # 64 host rows: two phases of 32 on the calm cadence
    full = list(replay(Analyzer(default_detector(tick), specs, tick), ts, names, values))
    budgeted = list(replay(Analyzer(default_detector(tick), specs, tick, refit_budget=40), ts, names, values))
    launch = range(150, 200)
    # at the launch every row is due at once, more than the budget: some refits wait a tick or more
    assert any(_models(full[t]) != _models(budgeted[t]) for t in launch)
    assert all(m is not None for _h, _m, m in _models(full[-1]))
    # once traffic holds, calm refits (32 rows a tick) fit the budget: the same rows refit on the same ticks
    # from the same window, so the models are the same
    assert _models(budgeted[-1]) == _models(full[-1])
    assert [r.cause for r in budgeted[-20:]] == [r.cause for r in full[-20:]]


def _run(analyzer: Analyzer, ts: np.ndarray, names: list[str], values: np.ndarray, rows_at: dict[int, int]) -> list:
    """Step through the ticks; `rows_at` maps a tick to how many rows (series) exist from then on."""
    out, n = [], len(names)
    for t in range(ts.shape[0]):
        n = rows_at.get(t, n)
        lo = max(0, t + 1 - analyzer.fit_ticks)
        index = {name: i for i, name in enumerate(names[:n])}
        out.append(analyzer.step(float(ts[t]), names[:n], index, values[:n, t].copy(), ts[lo: t + 1],
                                 values[:n, lo: t + 1].astype(np.float32)))
    return out


def test_a_host_joining_the_fleet_is_fitted_without_refitting_the_others() -> None:
    tick = 15.0
    ts, names, values, specs = _fleet(9, 320, tick)  # web-8 (the last two rows) joins at 285, between calm refits
    steady = _run(Analyzer(default_detector(tick), specs, tick), ts, names[:-2], values[:-2], {})
    joined = _run(Analyzer(default_detector(tick), specs, tick), ts, names, values,
                  {0: len(names) - 2, 285: len(names)})

    def fitted(res: object, host: str) -> list[tuple[str, int, float, float, int] | None]:
        return [(m, p.lag_ticks, p.slope, p.intercept, p.n) if p is not None else None
                for h, m, p in _models(res) if h == host]

    others = [f"web-{h}" for h in range(8)]
    # the others keep the models (and the refit cadence) they had: a join does not refit the fleet
    for t in range(285, 320):
        assert [fitted(joined[t], h) for h in others] == [fitted(steady[t], h) for h in others], t
    # while the newcomer gets models as soon as it has the history a fit needs
    assert all(f is not None for f in fitted(joined[-1], "web-8")) and fitted(joined[-1], "web-8")
