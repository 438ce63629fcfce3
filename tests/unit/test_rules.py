"""The alert state machine with injected time: for, clear, stale, repeat, min interval, grouping, forecast."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from surgewatch.alerting.rules import RuleEngine
from surgewatch.analysis.analyzer import AnalysisResult
from surgewatch.analysis.detectors import DetectorOutput
from surgewatch.config import RuleConfig
from surgewatch.model import AlertEvent, Cause, Severity

CPU = ["host:web-1/cpu.percent", "host:web-2/cpu.percent", "host:web-1/mem.percent"]


def rule(**kw: object) -> RuleConfig:
    base: dict[str, object] = {"name": "cpu-high", "series": "host:*/cpu.percent", "above": 90.0,
                               "severity": Severity.CRITICAL}
    base.update(kw)
    return RuleConfig(**base)  # type: ignore[arg-type]


class Harness:
    """Drives a RuleEngine over a fixed set of series with explicit times and values."""

    def __init__(self, rules: Sequence[RuleConfig], names: Sequence[str] = CPU) -> None:
        self.names = list(names)
        self.engine = RuleEngine(rules)
        self.sent: list[AlertEvent] = []

    def tick(self, now: float, values: Sequence[float], analysis: AnalysisResult | None = None,
             stale: Sequence[bool] | None = None) -> list[tuple[str, str]]:
        out = self.engine.evaluate(now, self.names, 1, np.array(values, dtype=float), analysis,
                                   None if stale is None else np.array(stale, dtype=bool))
        self.sent.extend(out)
        return [(e.event, e.series) for e in out]


def test_threshold_waits_for_its_duration_before_firing() -> None:
    h = Harness([rule(for_=10.0)])
    assert h.tick(0, [95, 50, 50]) == []
    assert h.engine.active[("cpu-high", CPU[0])].state_name == "pending"
    assert h.tick(5, [96, 50, 50]) == []
    assert h.tick(10, [97, 50, 50]) == [("firing", CPU[0])]
    assert h.engine.active[("cpu-high", CPU[0])].state_name == "firing"


def test_pending_alert_that_dips_never_fires() -> None:
    h = Harness([rule(for_=10.0)])
    h.tick(0, [95, 50, 50])
    h.tick(5, [85, 50, 50])
    assert h.engine.active == {}
    assert h.tick(12, [95, 50, 50]) == []  # the clock started again at 12


def test_clear_level_gives_hysteresis() -> None:
    h = Harness([rule(clear=80.0)])
    assert h.tick(0, [95, 50, 50]) == [("firing", CPU[0])]
    assert h.tick(1, [85, 50, 50]) == []  # below `above` but not below `clear`: still firing
    assert h.tick(2, [79, 50, 50]) == [("resolved", CPU[0])]


def test_below_rule_fires_under_the_level() -> None:
    h = Harness([rule(name="mem-low", series="host:*/mem.percent", above=None, below=10.0, clear=20.0)])
    assert h.tick(0, [50, 50, 5]) == [("firing", CPU[2])]
    assert h.tick(1, [50, 50, 15]) == []
    assert h.tick(2, [50, 50, 25]) == [("resolved", CPU[2])]


def test_series_that_stops_reporting_resolves_as_stale() -> None:
    h = Harness([rule()])
    h.tick(0, [95, 50, 50])
    assert h.tick(1, [math.nan, 50, 50]) == [("resolved", CPU[0])]
    doc = h.sent[-1].to_json()
    assert doc["reason"] == "stale" and doc["labels"]["reason"] == "stale"
    assert "no longer reported" in doc["summary"]


def test_dead_source_resolves_its_firing_alerts_as_stale() -> None:
    h = Harness([rule()])
    h.tick(0, [95, 95, 50])
    assert h.tick(1, [95, 95, 50], stale=[True, False, False]) == [("resolved", CPU[0])]
    assert h.sent[-1].labels["reason"] == "stale"
    assert ("cpu-high", CPU[1]) in h.engine.active


def test_events_keep_the_issue_2_json_contract() -> None:
    h = Harness([rule(for_=0.0, labels={"team": "ops"})])
    h.tick(1_700_000_000.0, [95, 50, 50])
    doc = h.sent[0].to_json()
    for key in ("ts", "event", "rule", "severity", "series", "value", "summary", "fingerprint"):
        assert key in doc
    assert (doc["event"], doc["rule"], doc["severity"], doc["series"], doc["value"]) == (
        "firing", "cpu-high", "critical", CPU[0], 95.0)
    assert doc["host"] == "web-1" and doc["labels"] == {"team": "ops"}
    assert "group" not in doc and "reason" not in doc


def test_summary_template_fills_fields() -> None:
    h = Harness([rule(summary="{host} at {value} ({rule}, {severity})")])
    h.tick(0, [95, 50, 50])
    assert h.sent[0].summary == "web-1 at 95% (cpu-high, critical)"


def test_repeat_renotifies_a_still_firing_alert() -> None:
    h = Harness([rule(repeat=60.0)])
    assert h.tick(0, [95, 50, 50]) == [("firing", CPU[0])]
    assert h.tick(30, [95, 50, 50]) == []
    assert h.tick(60, [96, 50, 50]) == [("firing", CPU[0])]
    assert h.sent[-1].value == 96 and h.sent[-1].started == 0
    assert h.tick(90, [96, 50, 50]) == []
    assert h.tick(120, [96, 50, 50]) == [("firing", CPU[0])]
    assert h.tick(121, [10, 50, 50]) == [("resolved", CPU[0])]
    assert h.tick(200, [10, 50, 50]) == []


def test_acknowledged_alert_stops_repeating_until_it_resolves() -> None:
    h = Harness([rule(repeat=60.0)])
    h.tick(0, [95, 50, 50])
    fp = h.sent[0].fingerprint
    assert h.engine.acknowledge(fp)
    assert h.engine.active[("cpu-high", CPU[0])].acked
    assert h.tick(60, [95, 50, 50]) == []
    assert h.tick(180, [95, 50, 50]) == []
    assert h.tick(181, [10, 50, 50]) == [("resolved", CPU[0])]
    assert not h.engine.acknowledge(fp)  # nothing active to acknowledge any more
    h.tick(182, [95, 50, 50])
    assert not h.engine.active[("cpu-high", CPU[0])].acked  # a new episode is not acknowledged


def test_min_interval_collapses_a_flap_and_sends_the_final_state() -> None:
    h = Harness([rule(min_interval=60.0)])
    assert h.tick(0, [95, 50, 50]) == [("firing", CPU[0])]
    assert h.tick(10, [50, 50, 50]) == []  # resolved, but too soon to notify
    assert h.tick(20, [95, 50, 50]) == []  # fired again: receivers still think it fires: nothing to say
    assert [e.event for e in h.engine.transitions] == ["firing"]
    assert h.tick(30, [50, 50, 50]) == []
    assert h.tick(59, [50, 50, 50]) == []
    sent = h.tick(60, [50, 50, 50])
    assert sent == [("resolved", CPU[0])]
    assert h.sent[-1].ts == 30  # the resolve carries the time it happened


def test_alerts_of_one_rule_firing_together_are_one_group() -> None:
    names = [f"host:web-{i}/cpu.percent" for i in range(30)] + ["host:db/cpu.percent"]
    h = Harness([rule()], names)
    out = h.tick(0, [95.0] * 30 + [10.0])
    assert len(out) == 30  # one event per series: per-series state and stdout lines stay exact
    groups = {e.group for e in h.sent}
    assert len(groups) == 1
    (group,) = groups
    assert sorted(group) == sorted(names[:30])
    assert h.sent[0].to_json()["group"] == list(group)


def test_group_wait_collects_transitions_of_later_ticks() -> None:
    names = ["host:a/cpu.percent", "host:b/cpu.percent", "host:c/cpu.percent"]
    h = Harness([rule(group_wait=10.0)], names)
    assert h.tick(0, [95, 10, 10]) == []
    assert h.tick(4, [95, 95, 10]) == []
    out = h.tick(10, [95, 95, 10])
    assert sorted(out) == [("firing", names[0]), ("firing", names[1])]
    assert {e.group for e in h.sent} == {(names[0], names[1])}
    assert [e.ts for e in h.sent] == [0, 4]
    assert h.tick(11, [95, 95, 95]) == []
    assert h.tick(21, [95, 95, 95]) == [("firing", names[2])]
    assert h.sent[-1].group == ()


def test_alert_that_resolves_within_group_wait_is_never_announced() -> None:
    h = Harness([rule(group_wait=10.0)])
    h.tick(0, [95, 50, 50])
    h.tick(5, [50, 50, 50])
    assert h.tick(10, [50, 50, 50]) == []
    assert [e.event for e in h.engine.transitions] == []
    assert h.engine.notifier.notes == {}


def test_unexplained_anomaly_rule_ignores_campaign_explained_load() -> None:
    r = RuleConfig(name="unexplained", series="host:*/cpu.percent", anomaly="unexplained", for_=0.0)
    h = Harness([r])
    a = analysis(3, {0: 0.95, 1: 0.95}, {0: Cause.CAMPAIGN, 1: Cause.UNEXPLAINED})
    assert h.tick(0, [60, 60, 50], a) == [("firing", CPU[1])]
    # score falls to 0.7 (above 0.6 * 0.9): holds; becomes explained: resolves
    assert h.tick(1, [60, 60, 50], analysis(3, {1: 0.7}, {1: Cause.UNEXPLAINED})) == []
    assert h.tick(2, [60, 60, 50], analysis(3, {1: 0.7}, {1: Cause.CAMPAIGN})) == [("resolved", CPU[1])]


def test_any_anomaly_rule_uses_its_threshold() -> None:
    r = RuleConfig(name="odd", series="host:*/cpu.percent", anomaly="any", threshold=0.8)
    h = Harness([r])
    assert h.tick(0, [60, 60, 50], analysis(3, {0: 0.79, 1: 0.81}, {})) == [("firing", CPU[1])]
    assert h.tick(1, [60, 60, 50], analysis(3, {1: 0.5}, {})) == []
    assert h.tick(2, [60, 60, 50], analysis(3, {1: 0.4}, {})) == [("resolved", CPU[1])]


def test_forecast_rule_fires_when_the_limit_comes_within_reach() -> None:
    r = RuleConfig(name="soon", series="host:*/cpu.percent", forecast_above=80.0, within=900.0)
    h = Harness([r])
    # cpu = 10 + 0.05 * traffic: 80 % at 1400 visitors. At 1000 visitors growing 0.1 %/s: ~336 s away.
    assert h.tick(0, [60, 20, 50], forecast_analysis(1000.0, 0.001)) == [("firing", CPU[0])]
    assert "reaches 80% in about 5m36s" in h.sent[-1].summary
    # traffic flat: never reaches it (inf > 1.5 x within): resolves
    assert h.tick(10, [60, 20, 50], forecast_analysis(1000.0, 0.0)) == [("resolved", CPU[0])]
    # 30 min away: outside `within`, no alert
    assert h.tick(20, [60, 20, 50], forecast_analysis(1000.0, math.log(1.4) / 1800)) == []
    # no usable model: no forecast, nothing changes
    assert h.tick(30, [60, 20, 50], forecast_analysis(1000.0, 0.001, usable=False)) == []


def test_forecasts_are_reused_for_a_few_seconds() -> None:
    r = RuleConfig(name="soon", series="host:*/cpu.percent", forecast_above=80.0, within=900.0)
    h = Harness([r])
    assert h.tick(0, [60, 20, 50], forecast_analysis(1000.0, 0.0)) == []
    assert h.tick(1, [60, 20, 50], forecast_analysis(1000.0, 0.001)) == []  # 1 s later: last forecast still used
    assert h.tick(5, [60, 20, 50], forecast_analysis(1000.0, 0.001)) == [("firing", CPU[0])]


def analysis(n: int, scores: dict[int, float], causes: dict[int, Cause]) -> AnalysisResult:
    score = np.full(n, np.nan)
    score[:] = 0.1
    for row, s in scores.items():
        score[row] = s
    det = DetectorOutput(score=score, z=np.full(n, np.nan), expected=np.full(n, np.nan), low=np.full(n, np.nan),
                         high=np.full(n, np.nan))
    return AnalysisResult(0.0, det, score, np.full(n, np.nan), {r: (c, "spring") for r, c in causes.items()},
                          {r: "why" for r in causes})


def forecast_analysis(traffic: float, growth: float, usable: bool = True) -> AnalysisResult:
    """Row 0 modelled as cpu = 10 + 0.05 * traffic, traffic growing at `growth` per second."""
    base = analysis(3, {}, {})
    forecasts: Any
    try:
        from surgewatch.analysis.analyzer import ForecastTable  # type: ignore[attr-defined]
    except ImportError:  # the per-row form of the forecast accessor
        from surgewatch.analysis.analyzer import HostForecast  # type: ignore[attr-defined]

        forecasts = {0: HostForecast(10.0, np.array([0.05]), np.array([traffic]), np.array([growth]),
                                     10.0 + 0.05 * traffic, usable)}
    else:
        forecasts = ForecastTable(pos={0: 0}, intercept=np.array([10.0]), coefs=np.array([[0.05]]),
                                  x_now=np.array([[traffic]]), growth=np.array([[growth]]),
                                  value_now=np.array([10.0 + 0.05 * traffic]), usable=np.array([usable]))
    return AnalysisResult(0.0, base.detector, base.score, base.expected, forecasts=forecasts)


def test_rule_keys_for_notifications_and_forecasts_parse() -> None:
    from surgewatch.config import parse_config

    cfg = parse_config('[[rule]]\nname = "soon"\nseries = "host:*/cpu.percent"\nforecast_above = 90\n'
                       'within = "10m"\nrepeat = "4h"\nmin_interval = "5m"\ngroup_wait = "30s"\n')
    (r,) = cfg.rules
    assert (r.kind, r.within, r.repeat, r.min_interval, r.group_wait) == ("forecast", 600.0, 14400.0, 300.0, 30.0)


def test_within_on_a_threshold_rule_is_a_config_error() -> None:
    import pytest

    from surgewatch.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="within only applies to forecast_above and preflight_above rules"):
        parse_config('[[rule]]\nname = "x"\nseries = "host:*/cpu.percent"\nabove = 9\nwithin = "1m"\n')
