"""What the live analysis tells ops: floors in the metric's units, sustained incidents held, recurring bursts."""

from __future__ import annotations

import numpy as np
import pytest

from surgewatch.analysis.analyzer import AnalysisResult, Analyzer, default_detector, replay
from surgewatch.analysis.recurring import RecurringBursts
from surgewatch.analysis.significance import LOAD, POINTS, RELATIVE, Floors, Significance, describe_size
from surgewatch.model import Cause
from tests.support.analysis_scenarios import OPS_KINDS, evaluate_ops, ops_scenario

T0 = 1_800_000_000.0


def run(values: np.ndarray, names: list[str], tick: float, floors: Floors | None = None) -> list[AnalysisResult]:
    ts = T0 + tick * np.arange(values.shape[1])
    an = Analyzer(default_detector(tick), [], tick, floors=floors)
    return list(replay(an, ts, names, values, details_every=10**9))


def test_sizes_are_in_points_load_per_core_and_relative_change() -> None:
    names = ["host:a/cpu.percent", "host:a/load.1", "host:a/net.rx_bps", "host:a/cpu.core0.percent",
             "host:a/cpu.core1.percent", "campaign:c/visitors"]
    sig = Significance.build(names, Floors())
    assert sig.kind.tolist() == [POINTS, LOAD, RELATIVE, POINTS, POINTS, RELATIVE]
    size = sig.size(np.array([12.0, 3.0, 150.0, 1, 1, 0.0]), np.array([10.0, 1.0, 100.0, 1, 1, 0.0]))
    assert size[:3].tolist() == [2.0, 1.0, 0.5]  # load 2 above on 2 cores: 1 per core
    assert sig.floor[:3].tolist() == [5.0, 0.5, 0.5]
    assert describe_size(POINTS, 2.0, 5.0) == "+2.0 points, below the 5-point floor"
    assert describe_size(POINTS, -31.0) == "-31 points"
    assert describe_size(RELATIVE, 0.35, 0.5) == "+35%, below the 50% floor"


def test_idle_jitter_from_2_to_4_percent_is_noted_as_too_small_and_fires_nothing() -> None:
    rng = np.random.default_rng(4)
    cpu = 2.0 + rng.normal(0, 0.05, 1200)
    cpu[900:906] = 4.0  # a few seconds at 4%: many sigmas, two points
    res = run(cpu[None, :], ["host:idle/cpu.percent"], 1.0)
    hot = [r for r in res[900:906] if 0 in r.explanation]
    assert hot, "the detector does see it"
    assert all("below the 5-point floor" in r.explanation[0] and abs(r.size[0]) < r.floor[0] for r in hot)


def test_a_sustained_60_point_incident_stays_anomalous_for_minutes_not_one_tick() -> None:
    rng = np.random.default_rng(5)
    cpu = 20.0 + rng.normal(0, 1.0, 2400)
    cpu[1500:1800] += 60.0  # five minutes at 1 s ticks
    res = run(cpu[None, :], ["host:db/cpu.percent"], 1.0)
    during = np.array([r.score[0] for r in res[1500:1800]])
    assert (during >= 0.9).sum() >= 240  # a `for = "2m"` rule fires
    causes = {r.cause[0][0] for r in res[1500:1800] if 0 in r.cause}
    assert causes == {Cause.UNEXPLAINED}
    after = np.array([r.score[0] for r in res[1900:2400]])
    assert (after >= 0.9).sum() == 0  # and ends with it


def test_a_15_minute_cron_burst_becomes_recurring_after_three_runs_and_a_far_larger_one_does_not() -> None:
    tick = 10.0
    n = int(3 * 3600 / tick)
    rng = np.random.default_rng(6)
    cpu = 5.0 + rng.normal(0, 0.3, n)
    starts = list(range(30, n, 90))  # every 15 minutes, a minute at +25 points
    for s in starts:
        cpu[s: s + 6] += 25.0
    cpu[starts[-2]: starts[-2] + 6] += 50.0  # one run three times the usual size
    res = run(cpu[None, :], ["host:batch/cpu.percent"], tick)
    recurring = [k for k, r in enumerate(res) if r.cause.get(0, (None,))[0] == Cause.RECURRING]
    assert recurring and min(recurring) >= starts[3]  # not before the 4th run
    text = res[recurring[0]].explanation[0]
    assert "recurring every 15m, as at" in text and "(+" in text
    big = [r for r in res[starts[-2]: starts[-2] + 6] if 0 in r.cause]
    assert big and all(r.cause[0][0] == Cause.UNEXPLAINED for r in big)
    assert "its usual size" in big[0].explanation[0]


def test_recurrence_needs_three_earlier_starts_on_one_period() -> None:
    rb = RecurringBursts(tick=1.0)
    one = np.ones(1)
    up, down = np.array([10.0]), np.array([0.0])
    for k, t in enumerate((100.0, 400.0, 700.0, 1000.0)):
        rb.step(t, up, up, one, np.array([True]))
        verdict = rb.verdict.get(0)
        assert (verdict is not None) == (k == 3)
        rb.step(t + 5, down, down, one, np.array([True]))
    rb.forget_rows(np.array([0]))
    assert rb.starts == {} and rb.verdict == {} and not rb.active.any()


def test_a_rule_floor_overrides_the_monitor_floor() -> None:
    from surgewatch.alerting.tickdata import TickData

    rng = np.random.default_rng(7)
    cpu = 2.0 + rng.normal(0, 0.05, 1200)
    cpu[900:960] = 5.0  # three points for a minute
    res = run(cpu[None, :], ["host:idle/cpu.percent"], 1.0)
    hot = next(r for r in res[900:960] if 0 in r.explanation)
    data = TickData(1, cpu[:1], hot, None)
    rows = np.array([0])
    assert not data.significant(rows, None)[0]  # [monitor] floor 5 points
    assert data.significant(rows, 2.0)[0]  # a rule with floor = 2
    assert not data.significant(rows, 4.0)[0]


@pytest.mark.parametrize("kind", OPS_KINDS)
def test_ops_scenarios_call_incidents_unexplained_and_harmless_events_not(kind: str) -> None:
    r = evaluate_ops(ops_scenario(kind, seed=3, tick=20.0, hours=5.0 if kind == "cron" else 4.0))
    assert r.unexplained == r.incidents
    assert r.false_events == 0


@pytest.mark.parametrize(("period", "text"), [(86400.0, "recurring every 1d"), (7 * 86400.0, "recurring every 1w")])
def test_a_nightly_or_weekly_burst_is_recurring_from_its_fourth_run(period: float, text: str) -> None:
    rb = RecurringBursts(tick=60.0)
    watch, one = np.array([True]), np.ones(1)
    up, down = np.array([30.0]), np.array([0.0])
    for k in range(4):
        t = T0 + k * period + (90.0 if k == 2 else 0.0)  # a run a minute and a half late is still on schedule
        rb.step(t, up, up, one, watch)
        verdict = rb.verdict.get(0)
        assert (verdict is not None) == (k == 3)
        rb.step(t + 1800.0, down, down, one, watch)
    assert verdict is not None and verdict.ordinary and verdict.text().startswith(text)


def test_a_busy_host_going_quiet_is_not_held_as_an_incident_but_a_busy_spell_is() -> None:
    rng = np.random.default_rng(8)
    quiet_after_build = np.concatenate([95.0 + rng.normal(0, 1.0, 400), 3.0 + rng.normal(0, 0.3, 200)])
    res = run(quiet_after_build[None, :], ["host:ci/cpu.percent"], 10.0)
    held = [r.score[0] >= 0.9 and r.cause.get(0, (None,))[0] == Cause.UNEXPLAINED for r in res[400:]]
    assert sum(held) <= 1  # at most the detector's one onset score, never held for a `for` duration
    busy = np.concatenate([3.0 + rng.normal(0, 0.3, 400), 95.0 + rng.normal(0, 1.0, 200)])
    res = run(busy[None, :], ["host:ci/cpu.percent"], 10.0)
    assert sum(r.score[0] >= 0.9 and r.cause[0][0] == Cause.UNEXPLAINED for r in res[400:460] if 0 in r.cause) >= 30


def test_a_spike_early_in_a_launch_at_60_s_ticks_is_unexplained_while_the_load_model_still_learns() -> None:
    # 10 minutes into a launch the load model is not mature, but +30 points on a host whose load at baseline
    # traffic times the traffic lift is far lower cannot be the campaign
    r = evaluate_ops(ops_scenario("peak-spike", seed=201, tick=60.0, hours=24.0, lag_seconds=120.0))
    assert (r.incidents, r.unexplained, r.false_events) == (1, 1, 0)
