"""Rules → alert life cycle (inactive → pending → firing → resolved), vectorised across series.

Conditions are computed for every matching series at once with numpy; Python-level work happens only for
series whose state changes. Threshold rules use `clear` for hysteresis; anomaly rules clear when the score
falls below 60% of their threshold; a series whose source went stale resolves with reason "stale".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..analysis.analyzer import AnalysisResult
from ..config import RuleConfig
from ..describe import format_value, metric_label
from ..model import AlertEvent, Cause, fingerprint, glob_match, split_series
from ..units import format_duration

INACTIVE, PENDING, FIRING = 0, 1, 2
ANOMALY_CLEAR_FRACTION = 0.6


@dataclass
class ActiveAlert:
    """An alert that is pending or firing now."""

    rule: RuleConfig
    series: str
    state: int
    since: float
    fired_at: float | None
    value: float
    expected: float | None
    explanation: str
    cause: Cause | None
    campaign: str | None
    fingerprint: str
    demo: bool

    @property
    def state_name(self) -> str:
        return "firing" if self.state == FIRING else "pending"


class _RuleState:
    """Per-rule arrays: state and since, one entry per store row."""

    def __init__(self, rule: RuleConfig) -> None:
        self.rule = rule
        self.rows = np.zeros(0, dtype=np.intp)
        self.version = -1
        self.state = np.zeros(0, dtype=np.int8)
        self.since = np.zeros(0)

    def refresh(self, names: Sequence[str], version: int) -> None:
        if version == self.version and len(names) == self.state.shape[0]:
            return
        n = len(names)
        if n > self.state.shape[0]:
            self.state = np.concatenate([self.state, np.zeros(n - self.state.shape[0], dtype=np.int8)])
            self.since = np.concatenate([self.since, np.zeros(n - self.since.shape[0])])
        pattern = self.rule.series
        self.rows = np.array([i for i, name in enumerate(names) if glob_match(pattern, name)], dtype=np.intp)
        self.version = version


class RuleEngine:
    """Evaluates every rule each tick and returns the alert events (firing, resolved) that happened."""

    def __init__(self, rules: Sequence[RuleConfig], is_demo: Callable[[str], bool] = lambda _s: False) -> None:
        self.rules = list(rules)
        self.is_demo = is_demo
        self._states = [_RuleState(r) for r in self.rules]
        self.active: dict[tuple[str, str], ActiveAlert] = {}

    def evaluate(self, now: float, names: Sequence[str], version: int, values: np.ndarray,
                 analysis: AnalysisResult | None, stale: np.ndarray | None = None) -> list[AlertEvent]:
        """One tick: `values` are the fresh latest values by row (NaN = unknown), `stale` marks dead sources."""
        events: list[AlertEvent] = []
        for st in self._states:
            st.refresh(names, version)
            if st.rows.shape[0] == 0:
                continue
            events.extend(self._evaluate_rule(st, now, names, values, analysis, stale))
        return events

    def _conditions(self, rule: RuleConfig, rows: np.ndarray, values: np.ndarray,
                    analysis: AnalysisResult | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(enter, hold, known) for each matched row."""
        v = values[rows]
        known = ~np.isnan(v)
        with np.errstate(invalid="ignore"):
            if rule.kind == "threshold":
                if rule.above is not None:
                    enter = v > rule.above
                    hold = v > (rule.clear if rule.clear is not None else rule.above)
                else:
                    assert rule.below is not None
                    enter = v < rule.below
                    hold = v < (rule.clear if rule.clear is not None else rule.below)
                return enter, hold, known
            if analysis is None or rule.kind != "anomaly":
                false = np.zeros(rows.shape[0], dtype=bool)
                return false, false, known
            score = analysis.score
            s = np.nan_to_num(score[rows] if rows.max(initial=-1) < score.shape[0] else np.zeros(rows.shape[0]),
                              nan=0.0)
            enter = s >= rule.threshold
            hold = s >= rule.threshold * ANOMALY_CLEAR_FRACTION
            if rule.anomaly == "unexplained":
                explained = np.array([analysis.cause.get(int(r), (None, None))[0] == Cause.CAMPAIGN for r in rows])
                unexplained = np.array([analysis.cause.get(int(r), (None, None))[0] == Cause.UNEXPLAINED
                                        for r in rows])
                enter = enter & unexplained
                hold = hold & ~explained
            known = known & ~np.isnan(score[rows]) if rows.max(initial=-1) < score.shape[0] else known
            return enter, hold, known

    def _evaluate_rule(self, st: _RuleState, now: float, names: Sequence[str], values: np.ndarray,
                       analysis: AnalysisResult | None, stale: np.ndarray | None) -> list[AlertEvent]:
        rule, rows = st.rule, st.rows
        enter, hold, known = self._conditions(rule, rows, values, analysis)
        state = st.state[rows]
        events: list[AlertEvent] = []
        if stale is not None:
            dead = stale[rows] & (state != INACTIVE)
            for r in rows[dead]:
                events.extend(self._leave(st, int(r), names[r], now, "stale"))
            state = st.state[rows]
        starting = (state == INACTIVE) & enter & known
        for r in rows[starting]:
            st.state[r], st.since[r] = PENDING, now
        state = st.state[rows]
        dropping = (state == PENDING) & known & ~enter
        for r in rows[dropping]:
            st.state[r] = INACTIVE
            self.active.pop((rule.name, names[r]), None)
        state = st.state[rows]
        pending = state == PENDING
        if pending.any():
            due = pending & ((now - st.since[rows]) >= rule.for_ - 1e-9)
            for r in rows[pending]:
                self._touch(st, int(r), names[r], values, analysis, now)
            for r in rows[due]:
                st.state[r] = FIRING
                alert = self.active[(rule.name, names[r])]
                alert.state, alert.fired_at = FIRING, now
                events.append(self._event(alert, "firing", now))
        firing = (st.state[rows] == FIRING) & known
        if firing.any():
            clearing = firing & ~hold
            for r in rows[firing & hold]:
                self._touch(st, int(r), names[r], values, analysis, now)
            for r in rows[clearing]:
                self._touch(st, int(r), names[r], values, analysis, now)
                events.extend(self._leave(st, int(r), names[r], now, None))
        return events

    def _touch(self, st: _RuleState, row: int, name: str, values: np.ndarray, analysis: AnalysisResult | None,
               now: float) -> None:
        """Create or refresh the ActiveAlert with this tick's value and explanation."""
        rule = st.rule
        key = (rule.name, name)
        value = float(values[row])
        expected = None
        explanation = ""
        cause: Cause | None = None
        campaign: str | None = None
        if analysis is not None and row < analysis.expected.shape[0]:
            e = float(analysis.expected[row])
            expected = e if e == e else None
            explanation = analysis.explanation.get(row, "")
            if row in analysis.cause:
                cause, campaign = analysis.cause[row]
        if not explanation:
            explanation = _threshold_text(rule, name, value)
        alert = self.active.get(key)
        if alert is None:
            alert = ActiveAlert(rule, name, PENDING, float(st.since[row]), None, value, expected, explanation,
                                cause, campaign, fingerprint(rule.name, name), self.is_demo(name))
            self.active[key] = alert
        else:
            alert.value, alert.expected = value, expected
            if analysis is not None and row in analysis.explanation:
                alert.explanation, alert.cause, alert.campaign = explanation, cause, campaign

    def _leave(self, st: _RuleState, row: int, name: str, now: float, reason: str | None) -> list[AlertEvent]:
        was = st.state[row]
        st.state[row] = INACTIVE
        alert = self.active.pop((st.rule.name, name), None)
        if was != FIRING or alert is None:
            return []
        return [self._event(alert, "resolved", now, reason)]

    def _event(self, alert: ActiveAlert, event: str, now: float, reason: str | None = None) -> AlertEvent:
        summary = _summary(alert, event, reason)
        labels = dict(alert.rule.labels)
        if reason:
            labels["reason"] = reason
        return AlertEvent(
            ts=now, event=event, rule=alert.rule.name, severity=alert.rule.severity, series=alert.series,
            value=alert.value, expected=alert.expected, summary=summary, explanation=alert.explanation,
            fingerprint=alert.fingerprint, started=alert.fired_at or alert.since, cause=alert.cause,
            campaign=alert.campaign, demo=alert.demo, labels=labels,
        )


def _threshold_text(rule: RuleConfig, name: str, value: float) -> str:
    _kind, who, metric = split_series(name)
    label = f"{who} {metric_label(metric)} {format_value(metric, value)}"
    if rule.above is not None:
        return f"{label} is above {format_value(metric, rule.above)}"
    if rule.below is not None:
        return f"{label} is below {format_value(metric, rule.below)}"
    return label


class _SafeDict(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _summary(alert: ActiveAlert, event: str, reason: str | None) -> str:
    rule = alert.rule
    kind, who, metric = split_series(alert.series)
    value_txt = format_value(metric, alert.value)
    if rule.summary:
        fields = _SafeDict(rule=rule.name, series=alert.series, value=value_txt, name=who, metric=metric,
                           kind=kind, severity=str(rule.severity), campaign=alert.campaign or "",
                           expected=format_value(metric, alert.expected) if alert.expected is not None else "")
        fields[kind] = who
        text = rule.summary.format_map(fields)
    elif rule.kind == "threshold":
        level = rule.above if rule.above is not None else rule.below
        word = "above" if rule.above is not None else "below"
        text = f"{who} {metric_label(metric)} {value_txt} {word} {format_value(metric, level or 0.0)}"
        if rule.for_:
            text += f" for {format_duration(rule.for_)}"
    else:
        why = {Cause.CAMPAIGN: f"explained by {alert.campaign}", Cause.UNEXPLAINED: "unexplained"}.get(
            alert.cause, "anomaly") if alert.cause else "anomaly"
        text = f"{who} {metric_label(metric)} {value_txt}: {why}"
    if event == "resolved":
        if reason:
            text = f"resolved ({reason}): {who} {metric_label(metric)} no longer reported ({rule.name})"
        else:
            text = f"resolved: {who} {metric_label(metric)} back to {value_txt} ({rule.name})"
    if alert.demo:
        text = "[DEMO] " + text
    return text
