"""Load models per campaign × host group, and hosts that depart from their group.

Hosts behind one balancer share their traffic, so they share a load model: for every campaign and every host
group it lands on (a campaign's `hosts` may name hosts or groups), the group's mean load of each modelled metric
is fitted against the campaign's traffic (lag by cross-correlation, then the robust fit of correlation.py), on
the analyzer's refit cadence. The group model gives headroom (traffic multiple to the metric's limit) and time
to saturation at the traffic's current growth, per group.

Each tick every grouped host is compared with its peers at that instant (the same traffic by construction): a
host above its group's median by more than the analyzer's residual limit in robust sigmas of the group's spread
*and* by its metric's practical floor, for 3 ticks in a row (at once when twice both), departs from its group,
and that is the finding ("web-417 CPU 91% — its group web runs at 55% for the same traffic; unexplained"): its
score is raised and its cause is `unexplained` (so `anomaly = "unexplained"` rules fire on it) unless a schedule
or a recurrence already explains it. The other way round, a hot host with no usable model of its own (a host that
just joined, a plateau too flat to fit, a campaign naming a fleet's group the analyzer cannot see into) that is
not above its group, whose group sits where its model puts it with the campaign's traffic carrying at least the
metric's floor, is explained by that campaign ("likely explained" while the group's model still learns a surge).
Only excess load departs: a host below its group is spare capacity, not an incident.

Everything per tick is a few array operations over the grouped rows (a padded [group-metric, hosts] matrix, medians
by sorting); each group's mean is kept tick by tick, so a refit of campaigns that land on whole groups reads one row
per group (else it pools the window with one `np.add.reduceat`). Pure numpy, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..describe import format_value, metric_label
from ..model import Cause
from ..units import format_duration, format_number
from .correlation import LoadModel, baselines, best_lags, fit_host_models, lag_correlations, lift
from .detectors import z_to_score
from .forecast import DEFAULT_LIMITS, UNKNOWN, Capacity, growth_rate, seconds_to_level_many
from .grouplayout import GroupLayout, LayoutKeeper
from .seriesrows import SeriesRows
from .significance import Floors, describe_size

if TYPE_CHECKING:
    from .analyzer import Analyzer, CampaignSpec, CampaignState
    from .loadmodels import LearnedModel, ModelStore

MIN_PEERS = 4  # a group of fewer hosts reporting now has no "usual level" to depart from
RESIDUAL_ONSET, RESIDUAL_SCALE = 3.0, 2.5  # z → score, as the analyzer maps a load model's residual
PERSIST_TICKS = 3  # a host must stay above its group this many ticks in a row (one noisy poll is no finding)
LIFTED = 1.5  # traffic at this multiple of its baseline is a campaign surge (as the analyzer counts one)
SPREAD_ALPHA = 0.05  # the group's spread is smoothed over about 20 ticks (one tick's MAD of a few hosts is noisy)


@dataclass(frozen=True, slots=True)
class GroupState:
    """A host group's metric under one campaign (campaign None: a group no campaign lands on)."""

    campaign: str | None
    group: str
    metric: str
    hosts: int  # hosts of the group reporting this metric now
    model: LoadModel | None  # group mean ≈ intercept + slope · traffic(t − lag); None: none usable yet
    restored: bool  # the model was learned before a restart (the models file), not yet refitted live
    mean_now: float
    median_now: float
    expected_now: float  # the model's group mean at the current traffic (NaN without a model)
    capacity: Capacity  # headroom (traffic multiple) and time to the metric's limit, for the group's mean
    departing: tuple[str, ...] = ()  # hosts above their group now (the finding)
    lag_seconds: float = float("nan")  # how long after traffic the group's load follows


@dataclass(frozen=True, slots=True)
class Departure:
    """A host above its group now."""

    host: str
    group: str
    metric: str
    value: float
    group_level: float  # the group's median now
    z: float  # in robust sigmas of the group's spread
    text: str


def _median_rows(vals: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The median of each row's non-NaN values (NaN for an empty row); np.nanmedian is far slower on short rows."""
    s = np.sort(vals, axis=1)  # NaNs sort last
    lo = np.clip((count - 1) // 2, 0, None)[:, None]
    hi = np.clip(count // 2, 0, None)[:, None]
    hi = np.minimum(hi, max(vals.shape[1] - 1, 0))
    med = 0.5 * (np.take_along_axis(s, lo, axis=1)[:, 0] + np.take_along_axis(s, hi, axis=1)[:, 0])
    return np.where(count > 0, med, np.nan)


class GroupModels:
    """Fits campaign × group load models on a cadence and checks every grouped host against its group each tick."""

    def __init__(self, campaigns: Sequence[CampaignSpec], tick: float, *, metrics: Sequence[str] | None,
                 limits: Mapping[str, float] | None = None, floors: Floors | None = None, refit_every: int = 10,
                 fit_ticks: int = 120, max_lag_ticks: int = 30, report_score: float = 0.5, learn_ticks: int = 100,
                 store: ModelStore | None = None, rows: SeriesRows | None = None) -> None:
        self.campaigns = list(campaigns)
        self.tick = tick
        self.metrics = None if metrics is None else frozenset(metrics)
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self.floors = floors or Floors()
        self.refit_every = max(1, refit_every)
        self.fit_ticks = fit_ticks
        self.max_lag_ticks = max(1, max_lag_ticks)
        self.report_score = report_score
        self.learn_ticks = learn_ticks
        self.z_limit = RESIDUAL_ONSET + RESIDUAL_SCALE * math.log(1.0 / (1.0 - min(report_score, 0.999)))
        self.store = store
        self._groups: dict[str, str] = {}
        self._topo: GroupLayout | None = None
        self._forgotten: set[int] = set()  # rows forgotten since the last step (their counts start over)
        # the names split once (shared with the analyzer's when built for one, see for_analyzer)
        self.series_rows = rows if rows is not None and rows.floors == self.floors else SeriesRows(self.floors)
        self._keeper = LayoutKeeper(self.campaigns, self.metrics, self.limits)
        self._sig = self.series_rows.sig
        self._ticks = 0
        self._last_fit = -10**9
        # (campaign index, group, metric) -> (model, learned at, hosts pooled): kept when hosts come and go
        self._live: dict[tuple[int, str, str], tuple[LoadModel, float, int]] = {}
        self._restored: dict[int, LoadModel] = {}
        self._growth: dict[int, float] = {}  # driver row -> traffic growth per second
        self._base: dict[int, float] = {}  # traffic and campaign rows -> baseline (a low quantile of the window)
        self._lifted_since: dict[int, int] = {}  # campaign index -> tick its traffic surged
        self._lift_now: dict[int, float] = {}
        self._models_now: list[LoadModel | None] = []
        self.states: tuple[GroupState, ...] = ()
        self.departures: dict[int, Departure] = {}
        self._spread = np.zeros(0)  # per group-metric: smoothed robust spread of its hosts
        self._streak = np.zeros(0, dtype=np.int64)  # per member row: ticks in a row above its group
        self._above = np.zeros(0, dtype=bool)  # per member row: above its group this tick
        self._off = np.zeros(0, dtype=np.int64)  # per group-metric: ticks in a row off its model by its floor
        # per group-metric: its mean of each past tick (NaN where under half its hosts reported), newest last, so a
        # refit of campaigns that land on whole groups reads G rows instead of gathering every host's window
        self._hist = np.zeros((0, 0))
        self._hist_keys: list[tuple[str, str]] = []
        self._hist_n = 0
        self.keep_means = True  # off: every refit gathers each host's window (the same means, at more cost)

    @classmethod
    def for_analyzer(cls, analyzer: Analyzer, store: ModelStore | None = None) -> GroupModels:
        """Group models on the analyzer's campaigns, cadence, window, limits and floors."""
        return cls(analyzer.campaigns, analyzer.tick, metrics=analyzer.metrics, limits=analyzer.limits,
                   floors=analyzer.floors, refit_every=analyzer.refit_every, fit_ticks=analyzer.fit_ticks,
                   max_lag_ticks=analyzer.max_lag_ticks, report_score=analyzer.report_score,
                   learn_ticks=analyzer.learn_ticks, store=store, rows=analyzer.series_rows)

    def set_groups(self, groups: Mapping[str, str]) -> None:
        """Which group each host is in (hosts without one are left out); the layout follows at the next step."""
        if groups != self._groups:
            self._groups = dict(groups)

    def forget_rows(self, rows: np.ndarray) -> None:
        """Rows evicted or taken by new series: the layout follows the names at the next step, and what is counted
        for those rows starts over."""
        self._forgotten.update(rows.tolist())

    # -- layout --------------------------------------------------------------------------

    def _layout(self, names: Sequence[str], index: Mapping[str, int]) -> GroupLayout:
        self.series_rows.sync(names)  # a no-op when the analyzer sharing them synced this tick
        topo = self._keeper.update(self.series_rows, index, self._groups)
        self._sig = self.series_rows.sig
        if topo is self._topo and not self._forgotten:
            return topo
        # hosts come and go (churn): live models, the refit cadence and the kept means carry over, and so does what
        # is counted per staying host and group (with a join every few ticks, starting those counts over held
        # back every departure that takes PERSIST_TICKS to show)
        self._carry(self._topo, topo)
        self._topo = topo
        self._restored = {}
        cg, gm = topo.cg, topo.gm
        if self.store is not None:
            for e, (ci, g) in enumerate(cg):
                c = self.campaigns[ci]
                saved = self.store.get(c.name, gm[g][0], gm[g][1], scope="group", traffic=c.traffic_series)
                if saved is not None and saved.usable:
                    self._restored[e] = saved.load_model(self.tick)
        return topo

    def _carry(self, old: GroupLayout | None, new: GroupLayout) -> None:
        """Each member row's ticks above its group (while it stays in its group-metric and was not forgotten), and
        each group-metric's smoothed spread and ticks off its model, into the new layout's order."""
        forgotten, self._forgotten = self._forgotten, set()
        streak = np.zeros(new.rows.shape[0], dtype=np.int64)
        spread = np.full(len(new.gm), np.nan)  # NaN: the next step starts it at that tick's spread
        off = np.zeros(len(new.gm), dtype=np.int64)
        if old is None or not old.gm or not new.gm:
            self._streak, self._spread, self._off = streak, spread, off
            return
        at = {key: g for g, key in enumerate(old.gm)}
        moved = np.array([at.get(key, -1) for key in new.gm], dtype=np.intp)  # new gm -> old gm (-1: none)
        have = moved >= 0
        if self._spread.shape[0] == len(old.gm):
            spread[have] = self._spread[moved[have]]
        if self._off.shape[0] == len(old.gm):
            off[have] = self._off[moved[have]]
        if self._streak.shape[0] == old.rows.shape[0] and old.rows.shape[0]:
            where = np.full(max(int(old.rows.max()), int(new.rows.max())) + 1, -1, dtype=np.intp)
            where[old.rows] = np.arange(old.rows.shape[0])
            i = where[new.rows]  # each new member row's place in the old layout (-1: new to it)
            keep = (i >= 0) & (moved[new.row_gm] == old.row_gm[np.maximum(i, 0)])
            if forgotten:
                keep &= ~np.isin(new.rows, np.fromiter(forgotten, dtype=np.intp, count=len(forgotten)))
            streak[keep] = self._streak[i[keep]]
        self._streak, self._spread, self._off = streak, spread, off

    # -- the tick ------------------------------------------------------------------------

    def step(self, ts: float, names: Sequence[str], index: Mapping[str, int], column: np.ndarray,
             window_ts: np.ndarray, window: np.ndarray, score: np.ndarray,
             cause: dict[int, tuple[Cause, str | None]], explanation: MutableMapping[int, str],
             campaigns: Sequence[CampaignState], residual_z: Mapping[int, float], details: bool = True) -> np.ndarray:
        """Check grouped hosts against their groups (changing `cause` and `explanation` in place) and return the
        scores with departures raised; refit group models when due; `states` then holds every group's state."""
        self._ticks += 1
        topo = self._layout(names, index)
        self.departures = {}
        if not topo.gm:
            self.states = ()
            return score
        n_rows = column.shape[0]
        vals = np.where(topo.pad >= 0, column[np.clip(topo.pad, 0, max(n_rows - 1, 0))], np.nan) if n_rows \
            else np.full(topo.pad.shape, np.nan)
        count = np.sum(~np.isnan(vals), axis=1)
        med = _median_rows(vals, count)
        spread = 1.4826 * _median_rows(np.abs(vals - med[:, None]), count)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, np.nansum(vals, axis=1) / np.maximum(count, 1), np.nan)
        if self._spread.shape != spread.shape:
            self._spread = np.array(spread, copy=True)
        else:
            self._spread = np.where(np.isnan(spread), self._spread, np.where(
                np.isnan(self._spread), spread, (1 - SPREAD_ALPHA) * self._spread + SPREAD_ALPHA * spread))
        spread = np.fmax(spread, self._spread)
        self._remember(topo, mean, count)
        if topo.cg and self._ticks - self._last_fit >= self.refit_every and window.shape[1] >= min(
                40, 3 * self.max_lag_ticks // 2 + 10):  # as the analyzer: enough for a lag search, or 40 ticks
            self._refit(topo, ts, window_ts, window)
        models, restored = self._models(topo)
        self._models_now = models
        score = self._departures(topo, column, score, cause, explanation, med, spread, count)
        lifts = self._lifts(topo, window, campaigns)
        verdicts = self._verdicts(topo, med, count, models, window, lifts)
        self._explained_by_group(topo, column, cause, explanation, med, count, residual_z, verdicts)
        if details:
            self.states = self._states(topo, window, med, mean, count, models, restored)
        return score

    @staticmethod
    def _key(topo: GroupLayout, e: int) -> tuple[int, str, str]:
        ci, g = topo.cg[e]
        return (ci, topo.gm[g][0], topo.gm[g][1])

    def _models(self, topo: GroupLayout) -> tuple[list[LoadModel | None], list[bool]]:
        """The model of each campaign × group entry: the live one when usable, else the one restored."""
        out: list[LoadModel | None] = []
        restored = []
        for e in range(len(topo.cg)):
            live = self._live.get(self._key(topo, e))
            if live is not None and live[0].usable:
                out.append(live[0])
                restored.append(False)
            elif e in self._restored:
                out.append(self._restored[e])
                restored.append(True)
            else:
                out.append(live[0] if live is not None else None)
                restored.append(False)
        return out, restored

    def _lifts(self, topo: GroupLayout, window: np.ndarray, campaigns: Sequence[CampaignState]) -> list[float]:
        """Each campaign's lift: the analyzer's where it has one, else from its traffic's baselines (the analyzer
        has none for a campaign whose hosts it does not know: one that names a fleet's group)."""
        out = []
        for ci, (own, site) in enumerate(topo.traffic_rows):
            known = campaigns[ci].lift if ci < len(campaigns) else float("nan")
            if math.isnan(known):
                nan = float("nan")
                camp = (self._lagged(window, own, 0), self._base.get(own, nan)) if own is not None else (nan, nan)
                if site is not None and site != own:
                    known = lift(self._lagged(window, site, 0), self._base.get(site, nan), *camp)
                else:
                    known = lift(nan, nan, *camp)
            out.append(known if not math.isnan(known) else 0.0)
            self._lift_now[ci] = out[-1]
            if out[-1] >= LIFTED:
                self._lifted_since.setdefault(ci, self._ticks)
            elif out[-1] < 0.5 * (1.0 + LIFTED):  # hysteresis: a dip is no new launch
                self._lifted_since.pop(ci, None)
        return out

    @staticmethod
    def _level_text(topo: GroupLayout, g: int, level: float, count: int) -> str:
        group, metric = topo.gm[g]
        when = "for the same traffic" if topo.gm_campaigns[g] else "now"
        return f"its group {group} runs at {format_value(metric, level)} {when} (median of {count} hosts"

    def _departures(self, topo: GroupLayout, column: np.ndarray, score: np.ndarray,
                    cause: dict[int, tuple[Cause, str | None]], explanation: MutableMapping[int, str], med: np.ndarray,
                    spread: np.ndarray, count: np.ndarray) -> np.ndarray:
        rows = topo.rows[topo.rows < column.shape[0]]
        self._above = np.zeros(rows.shape[0], dtype=bool)
        if not rows.shape[0]:
            return score
        gmi = topo.row_gm[: rows.shape[0]]
        v = column[rows]
        ref = med[gmi]
        base = np.full(column.shape[0], np.nan)
        base[rows] = ref
        size = self._sig.size(column, base)[rows]
        floor = self._sig.floor[rows] if self._sig.floor.shape[0] >= column.shape[0] else np.zeros(rows.shape[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma = np.maximum(spread[gmi], 1e-9 * (np.abs(ref) + 1.0))
            z = (v - ref) / sigma
            hit = (z >= self.z_limit) & (size >= floor) & (count[gmi] >= MIN_PEERS)
        if self._streak.shape[0] != topo.rows.shape[0]:
            self._streak = np.zeros(topo.rows.shape[0], dtype=np.int64)
        streak = self._streak[: rows.shape[0]]
        streak[:] = np.where(hit, streak + 1, 0)
        self._above = hit.copy()  # above its group this tick, held long enough or not
        with np.errstate(invalid="ignore"):
            clear = (z >= 2.0 * self.z_limit) & (size >= 2.0 * floor)  # far above: no need to wait for it
        hit &= (streak >= PERSIST_TICKS) | clear
        if not hit.any():
            return score
        score = np.array(score, copy=True)
        idx = np.flatnonzero(hit)
        raised = z_to_score(z[idx], RESIDUAL_ONSET, RESIDUAL_SCALE)
        score[rows[idx]] = np.fmax(score[rows[idx]], raised)
        for k in idx.tolist():
            r, g = int(rows[k]), int(gmi[k])
            group, metric = topo.gm[g]
            host = topo.hosts[k]
            kind = int(self._sig.kind[r])
            text = (f"{host} {metric_label(metric)} {format_value(metric, float(v[k]))} — "
                    f"{self._level_text(topo, g, float(ref[k]), int(count[g]))}, "
                    f"{describe_size(kind, float(size[k]))}, {float(z[k]):.1f}σ above its spread); unexplained")
            self.departures[r] = Departure(host, group, metric, float(v[k]), float(ref[k]), float(z[k]), text)
            old = cause.get(r)
            if old is None or old[0] in (Cause.CAMPAIGN, Cause.UNEXPLAINED):
                cause[r] = (Cause.UNEXPLAINED, None)
                explanation[r] = text
        return score

    def _gm_size(self, g: int, value: float, expected: float) -> float:
        """A group-metric's departure in its unit (as Significance.size for one of its rows), without arrays."""
        r = int(self._topo.pad[g, 0]) if self._topo is not None else -1
        if r < 0 or math.isnan(value) or math.isnan(expected):
            return float("nan")
        return self._sig.size_of(r, value, expected)

    def _gm_floor(self, g: int) -> float:
        r = int(self._topo.pad[g, 0]) if self._topo is not None else -1
        return float(self._sig.floor[r]) if 0 <= r < self._sig.floor.shape[0] else 0.0

    def _verdicts(self, topo: GroupLayout, med: np.ndarray, count: np.ndarray, models: list[LoadModel | None],
                  window: np.ndarray, lifts: Sequence[float]) -> list[tuple[int, float, float] | int | None]:
        """Per group-metric, what explains its load now: (entry, traffic at the lag, expected) for the campaign
        whose usable model carries the most of it, a campaign index while a surging campaign's model learns, or
        None. A group off every model by its floor for PERSIST_TICKS in a row has none (a bad deploy to the
        whole pool); a moment off (a traffic blip the lag smears) keeps its campaign."""
        n = len(topo.gm)
        if self._off.shape[0] != n:
            self._off = np.zeros(n, dtype=np.int64)
        out: list[tuple[int, float, float] | int | None] = [None] * n
        carried_best = np.full(n, -np.inf)
        off = np.zeros(n, dtype=bool)
        fits = np.zeros(n, dtype=bool)
        learning: dict[int, list[int]] = {}
        for e, (ci, g) in enumerate(topo.cg):
            m = models[e]
            if m is None or not m.usable:
                learning.setdefault(g, []).append(ci)
                continue
            x = self._lagged(window, int(topo.cg_driver[e]), m.lag_ticks)
            expected = m.expected(x)
            floor = self._gm_floor(g)
            if abs(self._gm_size(g, float(med[g]), expected)) < floor:
                fits[g] = True
            else:
                off[g] = True
            carried = self._gm_size(g, expected, m.intercept)
            if not math.isnan(carried) and carried >= floor and carried > carried_best[g]:
                carried_best[g] = carried
                out[g] = (e, x, expected)
        self._off = np.where(off & ~fits, self._off + 1, 0)
        for g in range(n):
            if count[g] < MIN_PEERS or (out[g] is not None and self._off[g] >= PERSIST_TICKS):
                out[g] = None
            elif out[g] is None and g in learning:
                surging = [ci for ci in learning[g] if lifts[ci] >= LIFTED
                           and self._ticks - self._lifted_since.get(ci, self._ticks) <= self.learn_ticks]
                if surging:
                    out[g] = max(surging, key=lambda i: lifts[i])
        return out

    def _explained_by_group(self, topo: GroupLayout, column: np.ndarray, cause: dict[int, tuple[Cause, str | None]],
                            explanation: MutableMapping[int, str], med: np.ndarray, count: np.ndarray,
                            residual_z: Mapping[int, float],
                            verdicts: list[tuple[int, float, float] | int | None]) -> None:
        """Hot hosts called unexplained for want of a usable model of their own (a host that just joined, a
        plateau too flat to fit, a campaign naming a fleet's group) that are not above their group, whose group
        a campaign explains (`_verdicts`): explained by that campaign."""
        if not topo.cg:
            return
        unexplained = Cause.UNEXPLAINED
        for r in [r for r, c in cause.items() if c[0] is unexplained]:
            k = topo.pos.get(r)
            if k is None or r in residual_z or r in self.departures:
                continue
            g = int(topo.row_gm[k])
            verdict = verdicts[g]
            if verdict is None or (k < self._above.shape[0] and self._above[k]):
                continue
            group, metric = topo.gm[g]
            value, level = float(column[r]), float(med[g])
            head = (f"{topo.hosts[k]} {metric_label(metric)} {format_value(metric, value)} — its group {group} runs "
                    f"at {format_value(metric, level)}")
            if isinstance(verdict, int):
                name = self.campaigns[verdict].name
                cause[r] = (Cause.CAMPAIGN, name)
                explanation[r] = (f"{head} (median of {int(count[g])} hosts); traffic from {name} is "
                                  f"{self._lift_now.get(verdict, 0.0):.1f}x its baseline (group model still "
                                  f"learning); likely explained")
                continue
            e, x, expected = verdict
            m = self._models_now[e]
            assert m is not None
            name = self.campaigns[topo.cg[e][0]].name
            cause[r] = (Cause.CAMPAIGN, name)
            explanation[r] = (f"{head} for the same traffic (median of {int(count[g])} hosts), as its group model "
                              f"expects ({format_value(metric, expected)} at {format_number(x)} visitors from "
                              f"{name}, lag {format_duration(m.lag_ticks * self.tick)}); explained")

    @staticmethod
    def _lagged(window: np.ndarray, row: int, lag: int) -> float:
        """The latest value of `row` at or just before `lag` ticks ago."""
        w = window.shape[1]
        seg = window[row, max(0, w - 1 - lag - 2): max(0, w - lag)]
        seg = seg[~np.isnan(seg)]
        return float(seg[-1]) if seg.shape[0] else float("nan")

    # -- refits and states ---------------------------------------------------------------

    def _remember(self, topo: GroupLayout, mean: np.ndarray, count: np.ndarray) -> None:
        """Append this tick's group means to the history (a tick where fewer than half reported: NaN)."""
        if self._hist_keys != topo.gm or self._hist.shape[1] != self.fit_ticks:
            old = {k: i for i, k in enumerate(self._hist_keys)} if self._hist.shape[1] == self.fit_ticks else {}
            hist = np.full((len(topo.gm), self.fit_ticks), np.nan)
            for g, key in enumerate(topo.gm):  # a group that stays keeps its past means; a new one starts empty
                if key in old:
                    hist[g] = self._hist[old[key]]
            if any(key not in old for key in topo.gm):
                self._hist_n = 0
            self._hist, self._hist_keys = hist, list(topo.gm)
        self._hist[:, :-1] = self._hist[:, 1:]
        self._hist[:, -1] = np.where(count >= np.maximum(1, topo.gm_size / 2), mean, np.nan)
        self._hist_n += 1

    def _refit(self, topo: GroupLayout, ts: float, window_ts: np.ndarray, window: np.ndarray) -> None:
        self._last_fit = self._ticks
        w = window[:, -self.fit_ticks:]
        wts = window_ts[-self.fit_ticks:]
        sizes = np.diff(np.append(topo.cg_starts, topo.cg_rows.shape[0]))
        width = w.shape[1]
        if self.keep_means and topo.whole.all() and self._hist_n >= width:  # campaigns on whole groups: kept
            means = self._hist[np.array([g for _ci, g in topo.cg], dtype=np.intp)][:, -width:]
        else:
            sub = w[topo.cg_rows]
            ok = ~np.isnan(sub)
            sums = np.add.reduceat(np.where(ok, sub, 0.0), topo.cg_starts, axis=0)
            counts = np.add.reduceat(ok.astype(np.float64), topo.cg_starts, axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                # a tick where fewer than half the members reported is left out (a partial poll moves the mean)
                means = np.where(counts >= np.maximum(1, sizes[:, None] / 2), sums / counts, np.nan)
        drivers, px = np.unique(topo.cg_driver, return_inverse=True)
        x = w[drivers]
        py = np.arange(len(topo.cg), dtype=np.intp)
        lag, _peak = best_lags(lag_correlations(x, means, px.astype(np.intp), py, self.max_lag_ticks))
        good = np.flatnonzero(lag >= 0)
        if good.shape[0]:
            stacked = np.vstack([x, means[good]])
            fitted = fit_host_models(stacked, drivers.shape[0] + np.arange(good.shape[0], dtype=np.intp),
                                     px[good].astype(np.intp)[:, None], lag[good].astype(np.intp)[:, None])
            for e, m in zip(good.tolist(), fitted, strict=True):
                model = m.pair_model(0) if m is not None else None
                old = self._live.get(self._key(topo, e))
                # a flat window (a plateau, a quiet night) fits nothing: the last usable model stays
                if model is not None and (model.usable or old is None or not old[0].usable):
                    self._live[self._key(topo, e)] = (model, ts, int(sizes[e]))
        rows = sorted({r for pair in topo.traffic_rows for r in pair if r is not None})
        if rows:
            self._base = {r: float(b) for r, b in zip(rows, baselines(w[rows]), strict=True)}
        recent = max(10, int(600 / self.tick))
        self._growth = {int(d): growth_rate(wts[-recent:], x[j, -recent:]) for j, d in enumerate(drivers.tolist())}

    def _states(self, topo: GroupLayout, window: np.ndarray, med: np.ndarray, mean: np.ndarray, count: np.ndarray,
                models: list[LoadModel | None], restored: list[bool]) -> tuple[GroupState, ...]:
        departing: dict[int, list[str]] = {}
        for d in self.departures.values():
            departing.setdefault(topo.gm.index((d.group, d.metric)), []).append(d.host)
        out = []
        n = len(topo.cg)
        if n:
            a = np.array([m.intercept if m is not None and m.usable else np.nan for m in models])
            b = np.array([m.slope if m is not None and m.usable else np.nan for m in models])
            x_now = np.array([self._lagged(window, int(d), 0) for d in topo.cg_driver])
            x_lag = np.array([self._lagged(window, int(d), m.lag_ticks if m is not None else 0)
                              for d, m in zip(topo.cg_driver.tolist(), models, strict=True)])
            growth = np.array([self._growth.get(int(d), np.nan) for d in topo.cg_driver])
            with np.errstate(invalid="ignore", divide="ignore"):
                contrib = b * x_now
                head = np.where(contrib > 0, np.maximum((topo.cg_limit - a) / contrib, 0.0), np.nan)
                expected = a + b * x_lag
            known = ~np.isnan(a) & ~np.isnan(topo.cg_limit)
            secs = np.full(n, np.nan)
            if known.any():
                secs[known] = seconds_to_level_many(a[known], b[known][:, None], x_now[known][:, None],
                                                    growth[known][:, None], topo.cg_limit[known])
            for e, (ci, g) in enumerate(topo.cg):
                m = models[e]
                usable = m is not None and m.usable
                cap = UNKNOWN
                if usable and not math.isnan(head[e]):
                    assert m is not None
                    cap = Capacity(float(topo.cg_limit[e]), (float(topo.cg_limit[e]) - m.intercept) / m.slope,
                                   float(head[e]), float(secs[e]), float(growth[e]))
                group, metric = topo.gm[g]
                out.append(GroupState(self.campaigns[ci].name, group, metric, int(count[g]), m if usable else None,
                                      restored[e] and usable, float(mean[g]), float(med[g]), float(expected[e]),
                                      cap, tuple(departing.get(g, ())),
                                      m.lag_ticks * self.tick if usable and m is not None else float("nan")))
        for g, (group, metric) in enumerate(topo.gm):
            if not topo.gm_campaigns[g]:
                out.append(GroupState(None, group, metric, int(count[g]), None, False, float(mean[g]),
                                      float(med[g]), float("nan"), UNKNOWN, tuple(departing.get(g, ()))))
        return tuple(out)

    # -- what to keep --------------------------------------------------------------------

    def learned(self, baselines: Mapping[str, float] | None = None) -> list[LearnedModel]:
        """The usable live group models, as models to keep in the models file (`baselines` as in learned_from)."""
        from .loadmodels import GROUP, LearnedModel

        out = []
        for (ci, group, metric), (m, at, hosts) in self._live.items():
            if m.usable:
                c = self.campaigns[ci]
                out.append(LearnedModel.of(c.name, GROUP, group, metric, c.traffic_series, m, self.tick, at, hosts,
                                           (baselines or {}).get(c.traffic_series)))
        return out
