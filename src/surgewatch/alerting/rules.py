"""Rules → alert life cycle (inactive → pending → firing → resolved), vectorised across series.

Conditions are computed for every matching series at once with numpy; Python-level work happens only
for series that are pending or firing, and a rule with nothing active and nothing entering costs a
few array operations. Threshold rules use `clear` for hysteresis; anomaly rules clear when the score
falls below 60% of their threshold; forecast rules clear when the forecast time grows past 1.5 x
`within`. A series that is no longer reported (value gone, or its source stale) resolves with reason
"stale"; so does one the store evicts (`forget_rows`), whose row a new series may then take. Which
transitions become notifications (silences, acks, repeat, min interval, grouping) is decided in notify.py;
the per-series state here stays exact.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..analysis.analyzer import AnalysisResult
from ..config import RuleConfig
from ..describe import format_value, metric_label
from ..model import AlertEvent, AlertState, Cause, CauseCode, fingerprint, split_series
from ..units import format_duration
from .notify import Current, Notifier
from .silences import Silence, SilenceError, SilenceStore
from .tickdata import TickData

if TYPE_CHECKING:
    from ..analysis.preflight import Preflight  # plans arrive only with scheduled campaigns

log = logging.getLogger("surgewatch.alerting")

# The enums' values as plain ints for the per-series arrays: numpy compares an array with an IntEnum member (an
# int subclass) ~10x slower than with an int, and `.value` is a lookup on every use.
_INACTIVE, _PENDING, _FIRING = AlertState.INACTIVE.value, AlertState.PENDING.value, AlertState.FIRING.value
_UNEXPLAINED = CauseCode.UNEXPLAINED.value
_EXPLAINED = np.array([c.value for c in (CauseCode.CAMPAIGN, CauseCode.SCHEDULE, CauseCode.RECURRING)], dtype=np.int8)

ANOMALY_CLEAR_FRACTION = 0.6
FORECAST_CLEAR_FACTOR = 1.5
DEFAULT_WITHIN = 900.0
PREFLIGHT_WITHIN = 24 * 3600.0  # preflight_above: campaigns starting within this long (rule key `within`)
FORECAST_REFRESH = 5.0  # seconds a forecast is reused (forecasts look minutes ahead; computing one costs ms)


@dataclass
class ActiveAlert:
    """An alert that is pending or firing now."""

    rule: RuleConfig
    series: str
    state: AlertState
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
    row: int = -1

    @property
    def state_name(self) -> str:
        return str(AlertState.FIRING if self.state == AlertState.FIRING else AlertState.PENDING)


class _RuleState:
    """One rule's matched store rows (ascending) and, by position in them, each one's state and since."""

    def __init__(self, rule: RuleConfig) -> None:
        self.rule = rule
        self.match = re.compile(fnmatch.translate(rule.series)).match
        self.rows = np.zeros(0, dtype=np.intp)
        self.seen = 0
        self.state = np.zeros(0, dtype=np.int8)
        self.since = np.zeros(0)
        self.live = 0  # positions that are pending or firing
        self.pending = 0  # positions that are pending
        self.recheck: set[int] = set()  # freed rows, matched again once a new series takes them

    def forget(self, rows: np.ndarray) -> None:
        """Drop freed rows (none of them pending or firing any more) and match them again when reused."""
        keep = ~np.isin(self.rows, rows)
        if not keep.all():
            self.rows, self.state, self.since = self.rows[keep], self.state[keep], self.since[keep]
        self.recheck.update(r for r in rows.tolist() if r < self.seen)

    def _rematch(self, names: Sequence[str]) -> None:
        taken = [r for r in self.recheck if names[r]]
        if not taken:
            return
        self.recheck.difference_update(taken)
        new = np.array(sorted(r for r in taken if self.match(names[r])), dtype=np.intp)
        if new.shape[0]:
            at = np.searchsorted(self.rows, new)
            self.rows = np.insert(self.rows, at, new)
            self.state = np.insert(self.state, at, np.zeros(new.shape[0], dtype=np.int8))
            self.since = np.insert(self.since, at, np.zeros(new.shape[0]))

    def refresh(self, names: Sequence[str], renamed: bool = True) -> None:
        """Match the names added since the last call, and (when `renamed`) freed rows a new series took."""
        n = len(names)
        if renamed and self.recheck and n >= self.seen:
            self._rematch(names)
        if n == self.seen:
            return
        if n < self.seen:  # a different store: start over
            self.rows, self.seen, self.recheck = np.zeros(0, dtype=np.intp), 0, set()
            self.state, self.since, self.live, self.pending = np.zeros(0, dtype=np.int8), np.zeros(0), 0, 0
        match = self.match
        new = [i for i in range(self.seen, n) if match(names[i])]
        if new:
            self.rows = np.concatenate([self.rows, np.array(new, dtype=np.intp)])
            self.state = np.concatenate([self.state, np.zeros(len(new), dtype=np.int8)])
            self.since = np.concatenate([self.since, np.zeros(len(new))])
        self.seen = n

    def position(self, row: int) -> int | None:
        """Where a store row sits in this rule's arrays (None if the rule does not match it)."""
        i = int(np.searchsorted(self.rows, row))
        return i if i < self.rows.shape[0] and self.rows[i] == row else None


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
        self._silence_version = -1
        self._silence_expiry = float("inf")
        self._store_error: str | None = None
        self._resolved_fps: list[str] = []
        self._data: TickData | None = None
        self._names: Sequence[str] = ()
        self._forecasts: tuple[float, dict[float, np.ndarray]] | None = None
        self._version = -1
        self._forgotten: list[AlertEvent] = []  # transitions made by forget_rows, reported with the next tick
        # scheduled campaigns' plans by host series, set by the engine before each tick (preflight_above rules)
        self.preflights: Mapping[str, Sequence[Preflight]] = {}

    # -- the tick -------------------------------------------------------------------------------

    def evaluate(self, now: float, names: Sequence[str], version: int, values: np.ndarray,
                 analysis: AnalysisResult | None, stale: np.ndarray | None = None) -> list[AlertEvent]:
        """One tick: `values` are the fresh latest values by row (NaN = not reported), `stale` marks dead
        sources. Returns the notifications due now; `transitions` holds every state change. `version` (the
        store's) says when freed rows may have been taken by new series and must be matched again."""
        n = min(len(names), values.shape[0])
        self._sync_silences(now)
        reuse = None
        if self._forecasts is not None and now - self._forecasts[0] < FORECAST_REFRESH:
            reuse = self._forecasts[1]
        data = self._data = TickData(n, values[:n], analysis, stale, reuse)
        data.now, data.names, data.preflights = now, names, self.preflights
        self._names = names
        self.transitions, self._forgotten = self._forgotten, []
        renamed, self._version = version != self._version, version
        for st in self._states:
            st.refresh(names, renamed)
            if st.rows.shape[0]:
                self._evaluate_rule(st, now, names, data)
        if reuse is None and data.forecasts:
            self._forecasts = (now, data.forecasts)
        if self._resolved_fps:
            self._forget_acks(self._resolved_fps)
            self._resolved_fps = []
        return self.notifier.due(now, self._current_at(now), self._is_silenced)

    @staticmethod
    def _enter(rule: RuleConfig, rows: np.ndarray, data: TickData) -> np.ndarray:
        """Whether each matched row meets the rule's condition now (False where unknown)."""
        kind = rule.kind
        if kind == "threshold":
            v = data.values_of(rule.series, rows)
            return v > rule.above if rule.above is not None else v < rule.below
        if kind == "anomaly":
            enter = data.gathered("score", rule.series, rows) >= rule.threshold
            if rule.anomaly == "unexplained" and enter.any():
                enter &= data.gathered("cause", rule.series, rows) == _UNEXPLAINED
            if enter.any():  # practical significance: a departure below the floor fires nothing
                enter &= data.significant(rows, rule.floor)
            return enter
        if kind == "preflight":
            return data.preflight(rule.preflight_above or 0.0, rule.within or PREFLIGHT_WITHIN, rows)
        within = rule.within or DEFAULT_WITHIN
        return data.gathered(rule.forecast_above or 0.0, rule.series, rows) <= within

    @staticmethod
    def _hold(rule: RuleConfig, rows: np.ndarray, data: TickData) -> tuple[np.ndarray, np.ndarray]:
        """(hold, known) for a few rows that are pending or firing: hold is the condition with hysteresis."""
        kind = rule.kind
        if kind == "threshold":
            v = data.values[rows]
            level = rule.clear if rule.clear is not None else rule.above if rule.above is not None else rule.below
            return (v > level if rule.above is not None else v < level), ~np.isnan(v)
        if kind == "anomaly":
            raw = data.score()[rows]
            hold = raw >= rule.threshold * ANOMALY_CLEAR_FRACTION
            if rule.anomaly == "unexplained":  # explained (campaign, schedule, recurring) ends it
                hold &= ~np.isin(data.causes()[rows], _EXPLAINED)
            return hold, ~np.isnan(raw)
        if kind == "preflight":  # holds until launch, or until the plan no longer reaches the level
            return data.preflight(rule.preflight_above or 0.0, rule.within or PREFLIGHT_WITHIN, rows), \
                np.ones(rows.shape[0], dtype=bool)
        secs = data.forecast(rule.forecast_above or 0.0)[rows]
        return secs <= (rule.within or DEFAULT_WITHIN) * FORECAST_CLEAR_FACTOR, ~np.isnan(secs)

    def _evaluate_rule(self, st: _RuleState, now: float, names: Sequence[str], data: TickData) -> None:
        rule, rows = st.rule, st.rows
        enter = self._enter(rule, rows, data)
        if st.live == 0 and not enter.any():
            return
        if st.live:
            live = st.state.nonzero()[0]
            lrows = rows[live]
            gone = data.gone[lrows]
            if gone.any():
                for p in live[gone]:
                    self._leave(st, int(p), now, "stale")
                live, lrows = live[~gone], lrows[~gone]
            hold, known = self._hold(rule, lrows, data)
            if st.pending:
                lstate = st.state[live]
                lenter = enter[live]
                pending = lstate == _PENDING
                for p in live[pending & known & ~lenter]:
                    self._leave(st, int(p), now, None)
                due = pending & lenter & ((now - st.since[live]) >= rule.for_ - 1e-9)
                for p in live[due]:
                    self._fire(st, int(p), now)
                clearing = (lstate == _FIRING) & known & ~hold
            else:  # every live row is firing
                clearing = known & ~hold
            for p in live[clearing]:
                self._leave(st, int(p), now, None)
        new = (enter if st.live == 0 else enter & (st.state == _INACTIVE)).nonzero()[0]
        if new.shape[0]:
            new = new[~data.gone[rows[new]]]
            st.state[new], st.since[new] = _PENDING, now
            st.live += int(new.shape[0])
            st.pending += int(new.shape[0])
            for p in new:
                self._create(st, int(p), names[rows[p]], data, now)
            if rule.for_ <= 1e-9:
                for p in new:
                    self._fire(st, int(p), now)

    def _fire(self, st: _RuleState, pos: int, now: float) -> None:
        st.state[pos] = _FIRING
        st.pending -= 1
        alert = self.active[(st.rule.name, self._names[st.rows[pos]])]
        alert.state, alert.fired_at = AlertState.FIRING, now
        self._emit(alert, "firing", now)

    def _create(self, st: _RuleState, pos: int, name: str, data: TickData, now: float) -> None:
        """A new pending alert for one matched row."""
        rule = st.rule
        row = int(st.rows[pos])
        fp = fingerprint(rule.name, name)
        alert = ActiveAlert(rule, name, AlertState.PENDING, now, None, math.nan, None, "", None, None, fp,
                            self.is_demo(name), row=row)
        self._update(alert, data)
        alert.silenced = self._silenced(rule.name, name, now)
        alert.acked = self.store is not None and self.store.acked(fp)
        self.active[(rule.name, name)] = alert
        self.by_fp[fp] = alert

    def _update(self, alert: ActiveAlert, data: TickData | None) -> None:
        """Refresh an alert's value, expectation and explanation from a tick (done lazily: on transitions
        and when views are asked for, not for every active alert every tick)."""
        row = alert.row
        if data is None or row >= data.n:
            return
        rule = alert.rule
        alert.value = float(data.values[row])
        analysis = data.analysis
        explanation: str | None = None
        if analysis is not None and row < analysis.expected.shape[0]:
            e = float(analysis.expected[row])
            alert.expected = e if not math.isnan(e) else None
            explanation = analysis.explanation.get(row)
            if explanation is not None:
                alert.cause, alert.campaign = analysis.cause.get(row, (None, None))
        if rule.kind == "forecast":
            explanation = _forecast_text(rule, alert.series, float(data.forecast(rule.forecast_above or 0.0)[row]))
        elif rule.kind == "preflight":
            entry = data.preflight_entry(rule.preflight_above or 0.0, row)
            if entry is not None:
                explanation = f"campaign {entry.campaign}: {entry.text}"
                alert.campaign, alert.value = entry.campaign, entry.peak
        if explanation is not None:
            alert.explanation = explanation
        elif not alert.explanation:
            alert.explanation = _threshold_text(rule, alert.series, alert.value)

    def refresh_views(self) -> None:
        """Bring every active alert's value and explanation up to the last tick (call before showing them)."""
        for alert in self.active.values():
            self._update(alert, self._data)

    def _leave(self, st: _RuleState, pos: int, now: float, reason: str | None, name: str | None = None) -> None:
        was = int(st.state[pos])  # a plain int: numpy scalars compare with an IntEnum member slowly
        st.state[pos] = _INACTIVE
        st.live -= 1
        if was == AlertState.PENDING:
            st.pending -= 1
        alert = self.active.pop((st.rule.name, self._names[st.rows[pos]] if name is None else name), None)
        if alert is None:
            return
        self.by_fp.pop(alert.fingerprint, None)
        if was == AlertState.FIRING:
            self._emit(alert, "resolved", now, reason)
            if alert.acked:
                self._resolved_fps.append(alert.fingerprint)

    def _emit(self, alert: ActiveAlert, event: str, now: float, reason: str | None = None) -> None:
        if reason is None:
            self._update(alert, self._data)
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

    def _is_silenced(self, fp: str) -> bool:
        alert = self.by_fp.get(fp)
        return alert is not None and alert.silenced

    def _current_at(self, now: float) -> Callable[[str], Current]:
        def current(fp: str) -> Current:
            alert = self.by_fp.get(fp)
            if alert is None:
                return Current(None, False, False)
            firing = None
            if alert.state == AlertState.FIRING:
                self._update(alert, self._data)
                firing = self._event(alert, "firing", now)
            return Current(firing, alert.silenced, alert.acked)

        return current

    # -- evicted series and clock steps ------------------------------------------------------------

    def forget_rows(self, rows: np.ndarray, names: Sequence[str], now: float) -> None:
        """Forget evicted series (`names` by `rows`, already freed in the store): their pending alerts end and
        firing ones resolve with reason "stale", as for any series no longer reported; the rows are matched
        again when new series take them."""
        if not rows.shape[0]:
            return
        name_of = dict(zip(rows.tolist(), names, strict=True))
        saved, self.transitions = self.transitions, []
        for st in self._states:
            if st.live:
                for pos in np.flatnonzero(np.isin(st.rows, rows) & (st.state != _INACTIVE)).tolist():
                    self._leave(st, pos, now, "stale", name_of[int(st.rows[pos])])
            st.forget(rows)
        self._forgotten.extend(self.transitions)
        self.transitions = saved
        if self._resolved_fps:
            self._forget_acks(self._resolved_fps)
            self._resolved_fps = []

    def shift_time(self, delta: float) -> None:
        """Move every held time by `delta` seconds after a wall-clock step, so for-durations, repeats and
        group waits keep their length (see clock.py)."""
        for st in self._states:
            st.since += delta
        for alert in self.active.values():
            alert.since += delta
            if alert.fired_at is not None:
                alert.fired_at += delta
        self.notifier.shift_time(delta)
        if self._forecasts is not None:
            self._forecasts = (self._forecasts[0] + delta, self._forecasts[1])

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
            if was and not alert.silenced and alert.state == AlertState.FIRING:
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
            for pos in np.flatnonzero(st.state):
                self._leave(st, int(pos), now, "rule removed")
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
        why = {Cause.CAMPAIGN: f"explained by {alert.campaign}", Cause.UNEXPLAINED: "unexplained",
               Cause.SCHEDULE: "inside a declared schedule", Cause.RECURRING: "recurring load"}.get(
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
