"""Rules → alert life cycle (inactive → pending → firing → resolved), vectorised across series.

Conditions are computed for every matching series at once with numpy; Python-level work happens only
for series that are pending or firing, and a rule with nothing active and nothing entering costs a
few array operations. Threshold rules use `clear` for hysteresis; anomaly rules clear when the score
falls below 60% of their threshold; forecast rules clear when the forecast time grows past 1.5 x
`within`. A series that is no longer reported (value gone, or its source stale) resolves with reason
"stale". Which transitions become notifications (silences, acks, repeat, min interval, grouping) is
decided in notify.py; the per-series state here stays exact.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..analysis.analyzer import AnalysisResult
from ..config import RuleConfig
from ..describe import format_value, metric_label
from ..model import AlertEvent, Cause, fingerprint, split_series
from ..units import format_duration
from .notify import Current, Notifier
from .silences import Silence, SilenceError, SilenceStore

log = logging.getLogger("surgewatch.alerting")

INACTIVE, PENDING, FIRING = 0, 1, 2
ANOMALY_CLEAR_FRACTION = 0.6
FORECAST_CLEAR_FACTOR = 1.5
DEFAULT_WITHIN = 900.0
_CAUSE_CODE = {Cause.CAMPAIGN: 1, Cause.UNEXPLAINED: 2}


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
    silenced: bool = False
    acked: bool = False

    @property
    def state_name(self) -> str:
        return "firing" if self.state == FIRING else "pending"


class _RuleState:
    """Per-rule arrays: state and since, one entry per store row; rows matched incrementally."""

    def __init__(self, rule: RuleConfig) -> None:
        self.rule = rule
        self.match = re.compile(fnmatch.translate(rule.series)).match
        self.rows = np.zeros(0, dtype=np.intp)
        self.seen = 0
        self.state = np.zeros(0, dtype=np.int8)
        self.since = np.zeros(0)
        self.live = 0  # rows that are pending or firing

    def refresh(self, names: Sequence[str]) -> None:
        """Match the names added since the last call (store rows are append-only)."""
        n = len(names)
        if n == self.seen:
            return
        if n < self.seen:  # a different store: start over
            self.rows, self.seen = np.zeros(0, dtype=np.intp), 0
            self.state, self.since, self.live = np.zeros(0, dtype=np.int8), np.zeros(0), 0
        if n > self.state.shape[0]:
            grow = max(n, 2 * self.state.shape[0]) - self.state.shape[0]
            self.state = np.concatenate([self.state, np.zeros(grow, dtype=np.int8)])
            self.since = np.concatenate([self.since, np.zeros(grow)])
        new = [i for i in range(self.seen, n) if self.match(names[i])]
        if new:
            self.rows = np.concatenate([self.rows, np.array(new, dtype=np.intp)])
        self.seen = n


class _TickData:
    """What every rule reads in one tick, computed once: scores, cause codes, forecasts."""

    def __init__(self, n: int, values: np.ndarray, analysis: AnalysisResult | None,
                 stale: np.ndarray | None) -> None:
        self.values = values
        gone = np.isnan(values)
        if stale is not None:
            gone |= stale[:n]
        self.gone = gone
        self.analysis = analysis
        self._score: np.ndarray | None = None
        self._causes: np.ndarray | None = None
        self._forecasts: dict[float, np.ndarray] = {}
        self.n = n

    def score(self) -> np.ndarray:
        """Anomaly score by row (NaN where unknown), padded to the store's size."""
        if self._score is None:
            s = np.full(self.n, np.nan)
            if self.analysis is not None:
                m = min(self.n, self.analysis.score.shape[0])
                s[:m] = self.analysis.score[:m]
            self._score = s
        return self._score

    def causes(self) -> np.ndarray:
        """0 = no cause known, 1 = campaign, 2 = unexplained, by row."""
        if self._causes is None:
            c = np.zeros(self.n, dtype=np.int8)
            if self.analysis is not None:
                for row, (cause, _campaign) in self.analysis.cause.items():
                    if row < self.n:
                        c[row] = _CAUSE_CODE.get(cause, 0)
            self._causes = c
        return self._causes

    def forecast(self, level: float) -> np.ndarray:
        """Seconds until each series reaches `level` per its load model's forecast (NaN = unknown)."""
        out = self._forecasts.get(level)
        if out is not None:
            return out
        out = np.full(self.n, np.nan)
        if self.analysis is not None:
            for row, f in self.analysis.forecasts.items():
                if row < self.n:
                    out[row] = f.seconds_to(level)
        self._forecasts[level] = out
        return out


class RuleEngine:
    """Evaluates every rule each tick and returns the notifications (firing, resolved) to send."""

    def __init__(self, rules: Sequence[RuleConfig], is_demo: Callable[[str], bool] = lambda _s: False,
                 silences: SilenceStore | None = None) -> None:
        self.rules = list(rules)
        self.is_demo = is_demo
        self.store = silences
        self._states = [_RuleState(r) for r in self.rules]
        self.active: dict[tuple[str, str], ActiveAlert] = {}
        self.by_fp: dict[str, ActiveAlert] = {}
        self.notifier = Notifier()
        self.transitions: list[AlertEvent] = []  # the last tick's exact per-series transitions
        self._index: dict[str, int] = {}
        self._silence_version = -1
        self._silence_expiry = float("inf")
        self._store_error: str | None = None
        self._resolved_fps: list[str] = []

    # -- the tick -------------------------------------------------------------------------------

    def evaluate(self, now: float, names: Sequence[str], version: int, values: np.ndarray,
                 analysis: AnalysisResult | None, stale: np.ndarray | None = None) -> list[AlertEvent]:
        """One tick: `values` are the fresh latest values by row (NaN = not reported), `stale` marks dead
        sources. Returns the notifications due now; `transitions` holds every state change."""
        n = min(len(names), values.shape[0])
        if len(self._index) != len(names):
            self._index = {name: i for i, name in enumerate(names)}
        self._sync_silences(now)
        data = _TickData(n, values[:n], analysis, stale)
        self.transitions = []
        for st in self._states:
            st.refresh(names)
            if st.rows.shape[0]:
                self._evaluate_rule(st, now, names, data)
        if self._resolved_fps:
            self._forget_acks(self._resolved_fps)
            self._resolved_fps = []
        return self.notifier.due(now, self._current_at(now))

    def _conditions(self, rule: RuleConfig, rows: np.ndarray,
                    data: _TickData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(enter, hold, known) for each matched row."""
        v = data.values[rows]
        known = ~np.isnan(v)
        with np.errstate(invalid="ignore"):
            if rule.kind == "threshold":
                if rule.above is not None:
                    enter = v > rule.above
                    hold = enter if rule.clear is None else v > rule.clear
                else:
                    assert rule.below is not None
                    enter = v < rule.below
                    hold = enter if rule.clear is None else v < rule.clear
                return enter, hold, known
            if rule.kind == "anomaly":
                raw = data.score()[rows]
                known &= ~np.isnan(raw)
                enter = raw >= rule.threshold
                hold = raw >= rule.threshold * ANOMALY_CLEAR_FRACTION
                if rule.anomaly == "unexplained":
                    code = data.causes()[rows]
                    enter &= code == 2
                    hold &= code != 1
                return enter, hold, known
            assert rule.forecast_above is not None
            secs = data.forecast(rule.forecast_above)[rows]
            within = rule.within or DEFAULT_WITHIN
            known &= ~np.isnan(secs)
            return secs <= within, secs <= within * FORECAST_CLEAR_FACTOR, known

    def _evaluate_rule(self, st: _RuleState, now: float, names: Sequence[str], data: _TickData) -> None:
        rule, rows = st.rule, st.rows
        enter, hold, known = self._conditions(rule, rows, data)
        enter &= known
        if st.live == 0 and not enter.any():
            return
        gone = data.gone[rows]
        state = st.state[rows]
        for r in rows[(state != INACTIVE) & gone]:
            self._leave(st, int(r), names[r], now, "stale")
        state = st.state[rows]
        starting = (state == INACTIVE) & enter & ~gone
        if starting.any():
            started = rows[starting]
            st.state[started], st.since[started] = PENDING, now
            st.live += int(started.shape[0])
            state = st.state[rows]
        for r in rows[(state == PENDING) & known & ~enter]:
            self._leave(st, int(r), names[r], now, None)
        state = st.state[rows]
        pending = state == PENDING
        if pending.any():
            due = pending & ((now - st.since[rows]) >= rule.for_ - 1e-9)
            for r in rows[pending]:
                self._touch(st, int(r), names[r], data, now)
            for r in rows[due]:
                st.state[r] = FIRING
                alert = self.active[(rule.name, names[r])]
                alert.state, alert.fired_at = FIRING, now
                self._emit(alert, "firing", now)
        firing = (st.state[rows] == FIRING) & known
        if firing.any():
            for r in rows[firing]:
                self._touch(st, int(r), names[r], data, now)
            for r in rows[firing & ~hold]:
                self._leave(st, int(r), names[r], now, None)

    def _touch(self, st: _RuleState, row: int, name: str, data: _TickData, now: float) -> None:
        """Create or refresh the ActiveAlert with this tick's value and explanation."""
        rule = st.rule
        key = (rule.name, name)
        value = float(data.values[row])
        analysis = data.analysis
        expected = None
        explanation: str | None = None
        cause: Cause | None = None
        campaign: str | None = None
        if analysis is not None and row < analysis.expected.shape[0]:
            e = float(analysis.expected[row])
            expected = e if e == e else None
            explanation = analysis.explanation.get(row)
            if row in analysis.cause:
                cause, campaign = analysis.cause[row]
        if rule.kind == "forecast":
            explanation = _forecast_text(rule, name, float(data.forecast(rule.forecast_above or 0.0)[row]))
        alert = self.active.get(key)
        if alert is None:
            fp = fingerprint(rule.name, name)
            alert = ActiveAlert(rule, name, PENDING, float(st.since[row]), None, value, expected,
                                explanation or _threshold_text(rule, name, value), cause, campaign, fp,
                                self.is_demo(name))
            alert.silenced = self._silenced(rule.name, name, now)
            alert.acked = self.store is not None and self.store.acked(fp)
            self.active[key] = alert
            self.by_fp[fp] = alert
        else:
            alert.value, alert.expected = value, expected
            if explanation is not None:
                alert.explanation, alert.cause, alert.campaign = explanation, cause, campaign

    def _leave(self, st: _RuleState, row: int, name: str, now: float, reason: str | None) -> None:
        was = st.state[row]
        st.state[row] = INACTIVE
        st.live -= 1
        alert = self.active.pop((st.rule.name, name), None)
        if alert is None:
            return
        self.by_fp.pop(alert.fingerprint, None)
        if was == FIRING:
            self._emit(alert, "resolved", now, reason)
            if alert.acked:
                self._resolved_fps.append(alert.fingerprint)

    def _emit(self, alert: ActiveAlert, event: str, now: float, reason: str | None = None) -> None:
        e = self._event(alert, event, now, reason)
        self.transitions.append(e)
        self.notifier.transition(e, alert.rule, alert.silenced, now)

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

    def _current_at(self, now: float) -> Callable[[str], Current]:
        def current(fp: str) -> Current:
            alert = self.by_fp.get(fp)
            if alert is None:
                return Current(None, False, False)
            firing = self._event(alert, "firing", now) if alert.state == FIRING else None
            return Current(firing, alert.silenced, alert.acked)

        return current

    # -- silences and acknowledgements ------------------------------------------------------------

    def _silenced(self, rule: str, series_name: str, now: float) -> bool:
        return self.store is not None and self.store.matching(rule, series_name, now) is not None

    def _sync_silences(self, now: float) -> None:
        """Pick up silence file changes and expiries; release alerts whose silence ended."""
        if self.store is None:
            return
        try:
            self.store.refresh()
            if self._store_error is not None:
                log.info("silences: %s readable again", self.store.path)
                self._store_error = None
        except SilenceError as exc:
            if str(exc) != self._store_error:
                log.error("%s; keeping the silences read before", exc)
                self._store_error = str(exc)
        if self.store.version == self._silence_version and now < self._silence_expiry:
            return
        self._silence_version = self.store.version
        self._silence_expiry = self.store.next_expiry(now)
        for alert in self.active.values():
            was = alert.silenced
            alert.silenced = self._silenced(alert.rule.name, alert.series, now)
            alert.acked = self.store.acked(alert.fingerprint)
            if was and not alert.silenced and alert.state == FIRING:
                self.notifier.release(alert.fingerprint, now)

    def _forget_acks(self, fps: list[str]) -> None:
        if self.store is None:
            return
        try:
            self.store.forget_acks(fps)
        except SilenceError as exc:
            log.error("%s", exc)

    def acknowledge(self, fp: str) -> bool:
        """Acknowledge a pending or firing alert: no repeats until it resolves. False if no such alert."""
        alert = self.by_fp.get(fp)
        if alert is None:
            return False
        alert.acked = True
        if self.store is not None:
            self.store.acknowledge(fp)
        return True

    def add_silence(self, rule_glob: str, series_glob: str, until: float, comment: str, now: float) -> Silence:
        """Store a silence and apply it to the active alerts at once."""
        if self.store is None:
            raise SilenceError("silences need a state directory")
        s = self.store.add(rule_glob, series_glob, until, comment)
        self._sync_silences(now)
        return s

    def remove_silence(self, silence_id: str, now: float) -> bool:
        """Delete a silence; alerts it covered notify again (a still-firing one is announced at once)."""
        if self.store is None:
            return False
        removed = self.store.remove(silence_id)
        self._sync_silences(now)
        return removed

    # -- reload ---------------------------------------------------------------------------------

    def replace_rules(self, rules: Sequence[RuleConfig], now: float) -> None:
        """Switch to reloaded rules: a rule kept by name and series glob keeps its alerts (re-judged next
        tick against its new settings); alerts of removed rules resolve with reason "rule removed"."""
        old = {st.rule.name: st for st in self._states}
        states = []
        for rule in rules:
            st = old.pop(rule.name, None)
            if st is not None and st.rule.series == rule.series:
                st.rule = rule
                for alert in self.active.values():
                    if alert.rule.name == rule.name:
                        alert.rule = rule
                        self.notifier.rename(alert.fingerprint, rule)
            else:
                if st is not None:
                    old[rule.name + "\x00old"] = st
                st = _RuleState(rule)
            states.append(st)
        for st in old.values():
            names = [a.series for a in self.active.values() if a.rule is st.rule]
            index = self._index
            for name in names:
                row = index.get(name)
                if row is not None:
                    self._leave(st, row, name, now, "rule removed")
        self.rules = list(rules)
        self._states = states


def _threshold_text(rule: RuleConfig, name: str, value: float) -> str:
    _kind, who, metric = split_series(name)
    label = f"{who} {metric_label(metric)} {format_value(metric, value)}"
    if rule.above is not None:
        return f"{label} is above {format_value(metric, rule.above)}"
    if rule.below is not None:
        return f"{label} is below {format_value(metric, rule.below)}"
    return label


def _forecast_text(rule: RuleConfig, name: str, secs: float) -> str:
    _kind, who, metric = split_series(name)
    level = format_value(metric, rule.forecast_above or 0.0)
    if math.isnan(secs):
        return f"{who} {metric_label(metric)}: no forecast to {level}"
    if secs <= 0:
        return f"{who} {metric_label(metric)} is at {level} for the current campaign traffic"
    if secs == float("inf"):
        return f"{who} {metric_label(metric)} does not reach {level} at the campaign's growth"
    return f"{who} {metric_label(metric)} reaches {level} in about {format_duration(secs)} at the campaign's growth"


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
    elif rule.kind == "forecast":
        text = alert.explanation
    else:
        why = {Cause.CAMPAIGN: f"explained by {alert.campaign}", Cause.UNEXPLAINED: "unexplained"}.get(
            alert.cause, "anomaly") if alert.cause else "anomaly"
        text = f"{who} {metric_label(metric)} {value_txt}: {why}"
    if event == "resolved":
        if reason == "stale":
            text = f"resolved (stale): {who} {metric_label(metric)} no longer reported ({rule.name})"
        elif reason:
            text = f"resolved ({reason}): {who} {metric_label(metric)} ({rule.name})"
        else:
            text = f"resolved: {who} {metric_label(metric)} back to {value_txt} ({rule.name})"
    if alert.demo:
        text = "[DEMO] " + text
    return text
