"""The analyzer on scenarios with known truth: classification, forecasts, causality, gaps (about 25 s)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surgewatch.analysis.analyzer import Analyzer, CampaignSpec, default_detector, replay
from surgewatch.model import Cause
from surgewatch.sources.demo import LAG, SPIKE_AT, SPIKE_LEN, DemoScenario
from tests.support.analysis_scenarios import Rates, evaluate, make_scenario

TICK = 2.0


def _rates(seeds: range, **kw: float) -> Rates:
    total = Rates()
    for s in seeds:
        total.add(evaluate(make_scenario(s, ticks=1300, **kw)))  # type: ignore[arg-type]
    return total


def test_injected_spikes_unexplained_and_launches_explained_over_seeds() -> None:
    r = _rates(range(200, 204))
    assert r.injected >= 6
    assert r.detection_rate >= 0.8
    assert r.unexplained_rate >= 0.8
    assert r.explained_rate >= 0.95
    assert r.false_unexplained_runs <= 1
    assert r.lag_within_one >= 0.75 and r.gain_within_10pct >= 0.75


def test_two_campaigns_on_one_host_are_modelled_jointly() -> None:
    r = _rates(range(300, 302), campaigns=2, spikes=1)
    assert r.explained_rate >= 0.9
    assert r.lag_within_one >= 0.5 and r.gain_within_10pct >= 0.5


def _demo(start: float, end: float) -> tuple[np.ndarray, list[str], np.ndarray, list[CampaignSpec]]:
    sc = DemoScenario()
    t = np.arange(start, end, TICK)
    host = sc.host(t)
    names = ["traffic:site/visitors", "campaign:launch/visitors", "host:web/cpu.percent", "host:web/mem.percent"]
    values = np.vstack([sc.site_visitors(t), sc.campaign_visitors(t), host["cpu.percent"], host["mem.percent"]])
    spec = CampaignSpec("launch", names[1], names[0], ("web",))
    return 1_800_000_000.0 + t, names, values, [spec]


def test_demo_launch_is_explained_and_its_cpu_spike_is_not() -> None:
    ts, names, values, specs = _demo(-1500.0, SPIKE_AT + SPIKE_LEN + 20)
    analyzer = Analyzer(default_detector(TICK), specs, TICK)
    launch, spike = [], []
    for i, res in enumerate(replay(analyzer, ts, names, values)):
        tau = ts[i] - 1_800_000_000.0
        c = res.cause.get(2)
        if c is None:
            continue
        if 0 <= tau < SPIKE_AT:
            launch.append(c[0])
        elif SPIKE_AT + 10 <= tau < SPIKE_AT + SPIKE_LEN:
            spike.append(c[0])
    assert launch, "the launch moves CPU enough to be noticed"
    assert launch.count(Cause.UNEXPLAINED) == 0
    assert spike.count(Cause.UNEXPLAINED) >= 0.9 * len(spike) > 0
    pair = next(p for p in res.campaigns[0].pairs if p.metric == "cpu.percent")
    assert pair.model is not None and abs(pair.lag_seconds - LAG) <= 2 * TICK + 1
    assert pair.model.slope == pytest.approx(0.22, rel=0.1)


def test_explanations_read_as_sentences() -> None:
    ts, names, values, specs = _demo(-1500.0, SPIKE_AT + 30)
    texts = [res.explanation.get(2, "") for res in replay(Analyzer(default_detector(TICK), specs, TICK), ts,
                                                           names, values)]
    explained = [t for t in texts if t.endswith("; explained")]
    assert explained and "expected" in explained[-1] and "(lag " in explained[-1]
    assert texts[-1].startswith("web CPU") and texts[-1].endswith("unexplained")


def test_host_without_campaign_is_unexplained() -> None:
    rng = np.random.default_rng(0)
    n = 400
    values = np.vstack([100 + rng.normal(0, 5, n), 20 + rng.normal(0, 1, n)])
    values[1, 350:] += 30
    names = ["campaign:c/visitors", "host:lonely/cpu.percent"]
    spec = CampaignSpec("c", names[0], names[0], ("elsewhere",))
    res = list(replay(Analyzer(default_detector(TICK), [spec], TICK), np.arange(n) * TICK, names, values))
    assert res[-1].cause[1] == (Cause.UNEXPLAINED, None)
    assert "no campaign lands on this host" in res[-1].explanation[1]


def test_forecast_accessor_follows_growth() -> None:
    rng = np.random.default_rng(4)
    n, g = 1200, 0.0004
    t = np.arange(n) * TICK
    x = 200 * np.exp(g * t) * (1 + rng.normal(0, 0.01, n))
    y = 10 + 0.05 * x + rng.normal(0, 0.5, n)
    names = ["campaign:grow/visitors", "host:web/cpu.percent"]
    spec = CampaignSpec("grow", names[0], names[0], ("web",))
    *_, res = replay(Analyzer(default_detector(TICK), [spec], TICK), t, names, np.vstack([x, y]))
    truth = math.log((90 - 10) / (0.05 * x[-1])) / g
    assert res.forecast("host:web/cpu.percent", 90.0) == pytest.approx(truth, rel=0.2)
    assert res.forecast(1, 90.0) == res.forecast("host:web/cpu.percent", 90.0)
    assert res.forecast(1, 5.0) == 0.0
    assert math.isnan(res.forecast("host:nope/cpu.percent", 90.0))
    assert math.isnan(res.forecast(0, 90.0))  # traffic itself has no load model
    arr = res.seconds_to_level(np.array([0, 1]), 90.0)
    assert math.isnan(arr[0]) and arr[1] == pytest.approx(truth, rel=0.2)
    pair = res.campaigns[0].pairs[0]
    assert pair.capacity.headroom == pytest.approx((90 - 10) / (0.05 * x[-1]), rel=0.1)


def test_flat_traffic_forecast_is_never_and_unknown_without_model() -> None:
    rng = np.random.default_rng(5)
    n = 900
    x = 300 + rng.normal(0, 10, n)
    y = 20 + rng.normal(0, 1, n)
    names = ["campaign:flat/visitors", "host:web/cpu.percent"]
    spec = CampaignSpec("flat", names[0], names[0], ("web",))
    *_, res = replay(Analyzer(default_detector(TICK), [spec], TICK), np.arange(n) * TICK, names,
                     np.vstack([x, y]))
    assert math.isnan(res.forecast(1, 90.0))  # load does not follow traffic: no usable model, no forecast


def test_new_series_mid_run_join_the_models() -> None:
    sc = make_scenario(7, ticks=1100, hosts=2, spikes=0)
    analyzer = Analyzer(default_detector(TICK), sc.specs, TICK, metrics=None)
    late = sc.names[-1]
    for t in range(sc.values.shape[1]):
        names = sc.names if t >= 300 else sc.names[:-1]
        rows = len(names)
        lo = max(0, t + 1 - analyzer.fit_ticks)
        window = sc.values[:rows, lo: t + 1].copy()
        if t >= 300:
            window[-1, : max(0, 300 - lo)] = np.nan
        res = analyzer.step(float(sc.ts[t]), names, {n: i for i, n in enumerate(names)}, window[:, -1],
                            sc.ts[lo: t + 1], window)
    hosts = {p.host for p in res.campaigns[0].pairs if p.model is not None}
    assert late.split(":")[1].split("/")[0] in hosts


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cut=st.integers(200, 500), gap=st.floats(0.0, 0.4))
def test_causal_and_gap_tolerant(seed: int, cut: int, gap: float) -> None:
    sc = make_scenario(seed, ticks=600, missing=gap)
    other = sc.values.copy()
    rng = np.random.default_rng(seed + 1)
    other[:, cut:] = other[:, cut:] * rng.uniform(0.2, 3.0) + rng.normal(0, 5, other[:, cut:].shape)
    a = list(replay(Analyzer(default_detector(TICK), sc.specs, TICK, metrics=None), sc.ts, sc.names, sc.values))
    b = list(replay(Analyzer(default_detector(TICK), sc.specs, TICK, metrics=None), sc.ts, sc.names, other))
    for ra, rb in zip(a[:cut], b[:cut], strict=True):
        np.testing.assert_array_equal(ra.score, rb.score)
        assert ra.cause == rb.cause
    for r in a:
        s = r.score[~np.isnan(r.score)]
        assert np.all((s >= 0) & (s <= 1))


def test_a_forgotten_row_taken_by_a_new_host_is_modelled_under_its_new_name() -> None:
    sc = make_scenario(7, ticks=1100, hosts=2, spikes=0)
    spec = sc.specs[0]
    specs = [CampaignSpec(spec.name, spec.series, spec.traffic_series, (*spec.hosts, "web-9"))]
    analyzer = Analyzer(default_detector(TICK), specs, TICK, metrics=None)
    names = list(sc.names)
    for t in range(sc.values.shape[1]):
        if t == 500:  # web-1 left the fleet and was evicted; web-9 arrives and takes its row
            analyzer.forget_rows(np.array([2]))
            names[2] = "host:web-9/cpu.percent"
        lo = max(0, t + 1 - analyzer.fit_ticks)
        window = sc.values[:, lo: t + 1].copy()
        if t >= 500:
            window[2, : max(0, 500 - lo)] = np.nan  # the freed row holds no history of web-1
        res = analyzer.step(float(sc.ts[t]), names, {n: i for i, n in enumerate(names)}, window[:, -1],
                            sc.ts[lo: t + 1], window)
    hosts = {p.host for p in res.campaigns[0].pairs if p.model is not None}
    assert hosts == {"web-0", "web-9"}


def _counting_refits(analyzer: Analyzer) -> list[int]:
    """Wrap the analyzer's refit (on the instance) to record the tick of each call."""
    ticks: list[int] = []
    inner = analyzer._refit

    def counted(*args: object) -> None:
        ticks.append(analyzer.ticks)
        inner(*args)  # type: ignore[arg-type]

    analyzer._refit = counted  # type: ignore[method-assign]
    return ticks


def test_calm_traffic_at_a_one_second_tick_refits_at_most_about_every_20_seconds() -> None:
    sc = DemoScenario()
    t = np.arange(-2400.0, -180.0, 1.0)  # the demo's baseline: traffic wanders with its noise, no launch
    host = sc.host(t)
    names = ["traffic:site/visitors", "campaign:launch/visitors", "host:web/cpu.percent"]
    values = np.vstack([sc.site_visitors(t), sc.campaign_visitors(t), host["cpu.percent"]])
    analyzer = Analyzer(default_detector(1.0), [CampaignSpec("launch", names[1], names[0], ("web",))], 1.0)
    refits = _counting_refits(analyzer)
    for _ in replay(analyzer, t + 1_800_000_000.0, names, values):
        pass
    late = [k for k in refits if k > 1200]  # after the first 20 minutes (the window filling, the first fits)
    minutes = (len(t) - 1200) / 60.0
    assert late and len(late) <= 4.0 * minutes, (len(late), minutes)  # at a 10-tick cadence: 6 or more a minute


def test_a_campaign_states_pairs_are_those_of_its_tick_when_read_later() -> None:
    ts, names, values, specs = _demo(-1500.0, 600.0)
    index = {n: i for i, n in enumerate(names)}
    a, b = (Analyzer(default_detector(TICK), specs, TICK) for _ in range(2))
    mid = values.shape[1] - 60  # during the launch: refits follow, models move
    early = None
    for k in range(values.shape[1]):
        lo = max(0, k + 1 - a.fit_ticks)
        ra = a.step(float(ts[k]), names, index, values[:, k], ts[lo:k + 1], values[:, lo:k + 1])
        rb = b.step(float(ts[k]), names, index, values[:, k], ts[lo:k + 1], values[:, lo:k + 1])
        if k == mid:
            early, expected = ra, repr(rb.campaigns[0].pairs)  # b's read at once, a's only at the end
    assert early is not None and early.campaigns[0].pairs and repr(early.campaigns[0].pairs) == expected
    assert repr(ra.campaigns[0].pairs) != expected  # the later tick says something else
