"""One tick of analysis over every series: detector scores, campaign load models, causes and explanations.

Every host metric a campaign lands on gets a load model against the traffic that drives it (one driver per
distinct traffic series; several when several campaigns share a host). Models are refitted on a cadence and
sooner for hosts whose traffic moved; between refits the expected value, its spread and the forecast are
computed for all modelled rows at once. An anomalous host value is *explained* when traffic carries it (the
residual against a mature model is small, or traffic is clearly lifted while the model is still learning) and
*unexplained* otherwise.

The state it keeps is typed in state.py (packed models, topology, what it remembers between ticks, each tick's
model arrays); the sentences and the causes they name are written by explain.py.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..model import Cause
from ..units import format_duration
from . import DEFAULT_LIVE_DETECTOR, LIFTED
from .baseline import SlowBaseline
from .correlation import HostFits, HostModel, LoadModel, baselines, fit_hosts, lag_correlations, lift
from .declared import DeclaredCauses
from .detectors import DetectorOutput, StreamingDetector, z_to_score
from .episodes import HOLD_SECONDS, Episodes
from .explain import Explanations, TickFacts, judge
from .forecast import DEFAULT_LIMITS, UNKNOWN, Capacity, seconds_to_level_many
from .forecast import growth_rate as _growth_rate
from .recurring import RecurringBursts
from .rowstats import median_of
from .seriesrows import SeriesRows
from .significance import Floors, Significance
from .state import FitMemory, ModelsNow, PackedModels, Topology
from .topology import TopologyKeeper

if TYPE_CHECKING:
    from .groupmodels import GroupModels

MODELLED_METRICS = ("cpu.percent", "load.1", "mem.percent", "net.rx_bps", "net.tx_bps")
RESIDUAL_ONSET, RESIDUAL_SCALE = 3.0, 2.5  # residual z → score, as the detectors map z
# A model explains a traffic level once it has seen about that level (and stayed put) this long: about a minute,
# counted in ticks within bounds so that a fast tick (a sped-up demo) or a slow one keeps sensible statistics.
MIN_SUPPORT_SECONDS, MIN_SUPPORT_TICKS = 60.0, (10, 30)
# After a launch, this long without a usable model means load does not follow traffic.
LEARN_SECONDS, LEARN_TICKS = 600.0, (100, 300)
TREND_TICKS = 5
_TREND_OFFSETS = np.arange(-2 * TREND_TICKS + 1, 1)
STAGGER_ROWS = 32  # host rows per refit phase before refits are spread over the refit cadence
# While traffic holds still, models are refitted on the cadence but no more often than this: at a 1 s tick ten
# new points of a half-hour window tell a model little (traffic that moves is refitted on sooner, as ever). From a
# 2 s tick on, the cadence is what it was.
CALM_REFIT_SECONDS = 20.0
# Whether traffic moved is judged on its mean over this long (at least 3 samples, as from a 2 s tick on): at a 1 s
# tick three samples of a few visitors a second wander past the threshold every few seconds, and each time every
# model on that traffic refits.
MOVE_SECONDS = 6.0


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """What analysis needs of a campaign: its series, its site's traffic series and the hosts it lands on."""

    name: str
    series: str
    traffic_series: str
    hosts: tuple[str, ...]
    expected_lift: float | None = None
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True, slots=True)
class PairState:
    """The load model of one campaign on one host metric, with its forecast."""

    campaign: str
    host: str
    metric: str
    model: LoadModel | None
    lag_seconds: float
    expected_now: float
    capacity: Capacity
    sigma_now: float = float("nan")
    mature: bool = False


class LazyPairs:
    """A campaign's per-host pairs, built on first read from what the tick knew (most ticks nobody reads them)."""

    __slots__ = ("_build", "_pairs")

    def __init__(self, pairs: tuple[PairState, ...] | Callable[[], tuple[PairState, ...]] = ()) -> None:
        self._build: Callable[[], tuple[PairState, ...]] | None = None
        self._pairs: tuple[PairState, ...] | None = None
        if callable(pairs):
            self._build = pairs
        else:
            self._pairs = tuple(pairs)

    def get(self) -> tuple[PairState, ...]:
        if self._pairs is None:
            assert self._build is not None
            self._pairs, self._build = self._build(), None
        return self._pairs

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LazyPairs) and self.get() == other.get()

    def __hash__(self) -> int:
        return hash(self.get())

    def __repr__(self) -> str:
        return repr(self.get())


@dataclass(frozen=True, slots=True)
class CampaignState:
    """A campaign now: visitors, baselines, lift and trend, and its per-host models (`pairs`)."""

    name: str
    visitors: float
    baseline: float
    lift: float
    growth_per_s: float
    lazy_pairs: LazyPairs = field(default_factory=LazyPairs)

    @property
    def pairs(self) -> tuple[PairState, ...]:
        return self.lazy_pairs.get()


@dataclass(frozen=True, slots=True)
class ForecastTable:
    """What the load models say about the future at one tick, for every modelled host row."""

    pos: Mapping[int, int]  # store row -> index into the arrays
    intercept: np.ndarray
    coefs: np.ndarray  # [H, K], padding drivers have coefficient 0
    x_now: np.ndarray
    growth: np.ndarray
    value_now: np.ndarray
    usable: np.ndarray

    def seconds_to(self, rows: np.ndarray, level: float) -> np.ndarray:
        """Seconds until each row reaches `level`: 0 if there, inf if never, nan if unknown or unmodelled."""
        out = np.full(rows.shape[0], np.nan)
        idx = np.array([self.pos.get(int(r), -1) for r in rows], dtype=np.intp)
        have = idx >= 0
        if not have.any():
            return out
        i = idx[have]
        secs = seconds_to_level_many(self.intercept[i], self.coefs[i], self.x_now[i], self.growth[i],
                                     np.full(i.shape[0], float(level)))
        with np.errstate(invalid="ignore"):
            there = self.value_now[i] >= level
        out[have] = np.where(there, 0.0, np.where(self.usable[i], secs, np.nan))
        return out


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """A tick's analysis: detector arrays by row, causes for anomalous rows, campaign states."""

    ts: float
    detector: DetectorOutput
    score: np.ndarray  # the detector's score, raised where a load model's residual is anomalous
    expected: np.ndarray  # the detector's expected value, or the load model's where one applies
    cause: dict[int, tuple[Cause, str | None]] = field(default_factory=dict)
    # each anomalous row's sentence (an `Explanations`: written when first read)
    explanation: Mapping[int, str] = field(default_factory=dict)
    campaigns: tuple[CampaignState, ...] = ()
    forecasts: ForecastTable | None = None
    residual_z: dict[int, float] = field(default_factory=dict)
    rows: Mapping[str, int] = field(default_factory=dict)
    # departure from the expected level in each row's unit (points, load per core, relative) and its floor
    size: np.ndarray = field(default_factory=lambda: np.zeros(0))
    floor: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def forecast(self, row_or_series: int | str, level: float) -> float:
        """Seconds until a series reaches `level` at the current traffic growth: 0 if it is there, inf if
        never, nan if unknown (no usable, mature load model for it)."""
        row = self.rows.get(row_or_series) if isinstance(row_or_series, str) else row_or_series
        if row is None:
            return float("nan")
        return float(self.seconds_to_level(np.array([row]), level)[0])

    def seconds_to_level(self, rows: np.ndarray, level: float) -> np.ndarray:
        """`forecast` for an array of store rows at once."""
        if self.forecasts is None:
            return np.full(np.asarray(rows).shape[0], np.nan)
        return self.forecasts.seconds_to(np.asarray(rows), level)


class Analyzer:
    """Runs the detector every tick and keeps campaign load models fitted on a cadence."""

    def __init__(self, detector: StreamingDetector, campaigns: Sequence[CampaignSpec], tick: float,
                 report_score: float = 0.5, refit_every: int = 10, fit_window: float = 1800.0,
                 max_lag: float = 300.0, metrics: Sequence[str] | None = MODELLED_METRICS,
                 limits: Mapping[str, float] | None = None, floors: Floors | None = None,
                 refit_budget: int = 0) -> None:
        self.detector = detector
        # Host rows refitted per tick at most (0: no limit). When campaigns launch, every host of a moving campaign
        # is due every other tick; with a budget the rest wait in a backlog (moved traffic first, then oldest) and
        # no tick's refits cost more than the budget's worth. Off by default: a model left stale at a launch calls
        # load it would have learned unexplained (analysis_scale_bench.py --refit-budget shows how often).
        self.refit_budget = max(0, refit_budget)
        self.floors = floors or Floors()
        self._sig = Significance.build([], self.floors)
        self._episodes = Episodes(int(np.clip(HOLD_SECONDS / tick, 10, 10**6)))
        self._bursts = RecurringBursts(tick)
        self._slow = SlowBaseline(tick)
        self._slow_now: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.campaigns = list(campaigns)
        self.tick = tick
        self.report_score = report_score
        self.refit_every = max(1, refit_every)
        self.calm_every = max(self.refit_every, math.ceil(CALM_REFIT_SECONDS / tick - 1e-9))  # ticks between refits
        self.move_span = max(3, math.ceil(MOVE_SECONDS / tick - 1e-9))  # samples in the mean that says it moved
        # at least 120 ticks: at a 60 s tick half an hour is too little to see a launch against its baseline
        self.fit_ticks = max(120, int(fit_window / tick))
        self.max_lag_ticks = max(1, min(int(max_lag / tick), self.fit_ticks // 3))
        self.metrics = None if metrics is None else tuple(metrics)
        self.series_rows = SeriesRows(self.floors)  # the names split once, shared with the group models
        self._shape = TopologyKeeper(self.campaigns, self.metrics)
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self.min_support = int(np.clip(MIN_SUPPORT_SECONDS / tick, *MIN_SUPPORT_TICKS))
        self.learn_ticks = int(np.clip(LEARN_SECONDS / tick, *LEARN_TICKS))
        # A value is unexplained when its residual alone would be reported: residual score >= report_score.
        self.residual_limit = RESIDUAL_ONSET + RESIDUAL_SCALE * math.log(1.0 / (1.0 - min(report_score, 0.999)))
        self.ticks = 0
        self._ts = 0.0
        self._host_mask = np.zeros(0, dtype=bool)
        self._topo: Topology | None = None
        self._built: Topology | None = None  # the last topology built (kept when forget_rows drops _topo)
        self._phase_cache: tuple[Topology, list[int], list[list[int]]] | None = None
        self._memory = FitMemory()
        self._parts: dict[str, tuple[str, str, str]] = {}  # split_series of anomalous rows' names (per topology)
        self._packed = PackedModels.build([])
        self._repack: PackedModels | None = None  # the packing forget_rows dropped, to copy from (see _reusable)
        self.declared: DeclaredCauses | None = None  # schedules and annotations (see declared.py), set by callers
        self.groups: GroupModels | None = None  # campaign × host-group models (see groupmodels.py), set by callers
        window = getattr(detector, "window", None)
        # what the detector's expected value is, in words: a windowed median, or a seasonal baseline
        self.baseline_label = f"{format_duration(window * tick)} median" if window else "expected level"

    # -- the tick ----------------------------------------------------------------------------

    def step(self, ts: float, names: Sequence[str], index: Mapping[str, int], column: np.ndarray,
             window_ts: np.ndarray, window: np.ndarray, details: bool = True) -> AnalysisResult:
        """Analyse one tick. `window` is the last N ticks [series, N] including this one.

        With `details` off (offline replays), campaign states carry no per-host pairs and there is no
        forecast table: scores, causes and explanations are the same."""
        det = self.detector.update(column)
        self._ts = ts
        topo = self._topology(names, index)
        self._sig.clamp_band(det.low, det.high)  # a percentage's band within 0-100, a rate's at least 0
        due = self._due_hosts(topo, window)
        if due:
            self._refit(topo, due, window_ts, window)
        self.ticks += 1
        now = self._now_arrays(window, column, det)
        score = np.array(det.score, copy=True)
        expected = np.array(det.expected, copy=True)
        residual_z: dict[int, float] = {}
        modelled = np.zeros(column.shape[0], dtype=bool)
        p = self._packed
        if p.rows.shape[0]:
            use = p.usable & now.mature & ~np.isnan(now.rz)
            if use.any():
                rows = p.rows[use]
                modelled[rows] = True
                expected[rows] = now.expected[use]
                rscore = z_to_score(now.rz[use], RESIDUAL_ONSET, RESIDUAL_SCALE)
                score[rows] = np.fmax(score[rows], rscore)
                residual_z = dict(zip(rows.tolist(), now.rz[use].tolist(), strict=True))
        campaigns = self._campaign_states(topo, window, now, details)
        score, size = self._episode_step(column, det, score, expected, modelled)
        cause: dict[int, tuple[Cause, str | None]] = {}
        explanation = Explanations()
        hot = np.flatnonzero(np.where(np.isnan(score), 0.0, score) >= self.report_score)
        if hot.shape[0]:
            facts = self._facts(column, det, topo, now, campaigns)
            judge(hot, names, size, facts, explanation, cause)  # verdicts now, sentences when read
        if self.groups is not None:  # hosts off their group's level: before schedules, which still explain them
            score = self.groups.step(ts, names, index, column, window_ts, window, score, cause, explanation,
                                     campaigns, residual_z, details)
        if self.declared is not None:
            self.declared.apply(ts, names, cause, explanation)
        forecasts = self._forecasts(now, column) if details else None
        return AnalysisResult(ts, det, score, expected, cause, explanation, tuple(campaigns), forecasts,
                              residual_z, index, size, self._sig.floor[: size.shape[0]])

    # -- significance, episodes, recurring bursts ------------------------------------------------

    def warm(self, history: np.ndarray) -> None:
        """Learn from past values ([series, time], oldest first): the detector (if it can) and the slow
        baselines, so that a backfilled history (the demo's, a replay's) is normal from the first tick."""
        warm = getattr(self.detector, "warm", None)
        if warm is not None:
            warm(history)
        for k in range(history.shape[1]):
            self._slow.step(history[:, k])


    def _episode_step(self, column: np.ndarray, det: DetectorOutput, score: np.ndarray, expected: np.ndarray,
                      modelled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores with the practical score and sustained episodes folded in, and each row's departure in its
        unit: from its load model's expected value where one applies, else from its slow (hour-long) baseline.
        Bursts are tracked for recurrence."""
        rows = column.shape[0]
        floor = self._sig.floor[:rows]
        slow, slow_z = self._slow.step(column)
        base = np.where(modelled | np.isnan(slow), expected, slow)
        size = self._sig.size(column, base)
        hosts = self._host_mask[:rows]
        practical = np.where(modelled, 0.0, self._slow.score(slow_z, size, floor))
        # a host without a load model: only extra load is an incident of its own (a build finishing, a
        # batch job ending, is not); a drop where traffic holds shows against the load model instead
        practical[hosts & ~modelled & ~(size > 0)] = 0.0
        self._slow_now = (slow, slow_z, practical)
        score = np.fmax(score, np.where(np.isnan(score), np.nan, practical))
        with np.errstate(invalid="ignore"):
            significant = np.abs(size) >= floor
        start_ok = (np.where(np.isnan(score), 0.0, score) >= self.report_score) & significant & hosts
        start_ok &= modelled | (size > 0)  # no episode held for a drop on a host without a load model
        score, _held = self._episodes.step(self.ticks, column, score, det.expected, det.z, start_ok)
        z = np.where(modelled | np.isnan(slow_z), det.z, slow_z)
        self._bursts.step(self._ts, size, z, floor, hosts)
        return score, size

    # -- topology and refits -------------------------------------------------------------------

    def _topology(self, names: Sequence[str], index: Mapping[str, int]) -> Topology:
        self.series_rows.sync(names)
        topo, changed = self._shape.update(self.series_rows, index)
        if topo is not self._built:
            # A host row whose series and drivers are unchanged keeps its model and its place in the calm cadence;
            # the others (new rows, rows another series took, rows whose traffic appeared or went) are refitted at
            # the next step. A fleet with churn gains a host every few ticks: refitting all of them each time made
            # those ticks hundreds of milliseconds (and so did rebuilding the topology: see topology.py).
            before, self._built = self._built, topo
            last_fit = self._memory.last_fit
            for h in list(last_fit) if changed is None else [h for h in changed if h in last_fit]:
                if before is None or h not in topo.host_drivers or before.host_drivers.get(h) != topo.host_drivers[h] \
                        or before.parts.get(h) != topo.parts.get(h):
                    del last_fit[h]
            self._parts = {}
            self._sig, self._host_mask = self.series_rows.sig, self.series_rows.host
        self._topo = topo
        return topo

    def _reusable(self) -> PackedModels | None:
        """The packing a rebuild of the packed models copies the unchanged models from (see PackedModels.build)."""
        reuse, self._repack = self._packed if self._packed.rows.shape[0] else self._repack, None
        return reuse

    def _due_hosts(self, topo: Topology, window: np.ndarray) -> list[int]:
        """Host rows to refit this tick: all on the cadence, and those whose traffic moved over 10%."""
        if window.shape[1] < 3 * self.max_lag_ticks // 2 + 10 and window.shape[1] < 40:
            return []
        hosts, by_phase = self._phases(topo)
        self._memory.moved = set()
        if not self._memory.last_fit:
            self._memory.backlog = {}
            return hosts
        phase = self.ticks % self.calm_every
        due = by_phase[phase] if phase < len(by_phase) else []
        last_fit = self._memory.last_fit
        if len(last_fit) < len(hosts):  # rows new to the topology: fitted now
            in_phase = set(due)
            due = due + [h for h in hosts if h not in last_fit and h not in in_phase]
        moved = set()
        span = window[topo.drivers, -self.move_span:]
        have = ~np.isnan(span)
        with np.errstate(invalid="ignore", divide="ignore"):  # the mean of what is there (NaN: nothing)
            means = (np.where(have, span, 0.0).sum(axis=1) / have.sum(axis=1)).astype(span.dtype, copy=False).tolist()
        for d, now in zip(topo.drivers, means, strict=True):
            last = self._memory.fitted_x.get(d)
            noise = self._memory.noise.get(d, 0.0)
            if not math.isnan(now) and (last is None or abs(now - last) > max(0.1 * abs(last), 3.0 * noise, 1e-9)):
                moved.add(d)
        self._memory.moved = moved
        if moved:
            last_fit = self._memory.last_fit
            in_due = set(due)
            due = due + [h for h in hosts if h not in in_due and self.ticks - last_fit.get(h, -99) >= 2
                         and not moved.isdisjoint(topo.host_drivers[h])]
        return self._within_budget(topo, due)

    def _within_budget(self, topo: Topology, due: list[int]) -> list[int]:
        """The host rows to refit this tick: all that are due while they fit the budget (or there is none);
        else the budget's worth, the rest kept in the backlog for the next ticks."""
        backlog, moved, budget = self._memory.backlog, self._memory.moved, self.refit_budget
        if budget <= 0 or (not backlog and len(due) <= budget):
            return due
        for h in due:
            was = backlog.get(h)
            now_moved = not moved.isdisjoint(topo.host_drivers[h])
            backlog[h] = (was[0], was[1] or now_moved) if was is not None else (self.ticks, now_moved)
        # rows whose traffic moved first (a stale model at a launch would call its load unexplained), then those
        # waiting longest, then by row: the calm cadence's refits are what waits
        take = sorted(backlog, key=lambda h: (not backlog[h][1], backlog[h][0], h))[:budget] \
            if len(backlog) > budget else list(backlog)
        self._memory.search_now = {h for h in take if backlog[h][1]}
        for h in take:
            del backlog[h]
        return take

    def _phases(self, topo: Topology) -> tuple[list[int], list[list[int]]]:
        """The modelled host rows, and those refitted at each phase of the calm cadence (kept per topology).

        The cadence is staggered across ticks only when there are enough host rows for it to smooth the
        per-tick cost (a fleet); a handful of rows is refitted together, paying the fixed cost once."""
        if self._phase_cache is None or self._phase_cache[0] is not topo:
            hosts = list(topo.host_drivers)
            phases = max(1, min(self.calm_every, len(hosts) // STAGGER_ROWS))
            self._phase_cache = (topo, hosts, [hosts[p::phases] for p in range(phases)])
        return self._phase_cache[1], self._phase_cache[2]

    def _refit(self, topo: Topology, hosts: list[int], window_ts: np.ndarray, window: np.ndarray) -> None:
        w = window[:, -self.fit_ticks:]
        wts = window_ts[-self.fit_ticks:]
        # Lags are stable: they are searched again every few cadences, or sooner when traffic moved.
        searched_at, moved, every = self._memory.searched_at, self._memory.moved, 3 * self.refit_every
        late = self._memory.search_now  # rows whose traffic moved while they waited in the backlog
        search = [h for h in hosts if self.ticks - searched_at.get(h, -10**9) >= every
                  or not moved.isdisjoint(topo.host_drivers[h]) or h in late]
        self._memory.search_now = set()
        self._memory.searched_at.update(dict.fromkeys(search, self.ticks))
        masked = self._masked_load(w, search) if search else w[:0]
        single = [h for h in hosts if len(topo.host_drivers[h]) == 1]
        multi = [h for h in hosts if len(topo.host_drivers[h]) > 1]
        single_search = [h for h in search if len(topo.host_drivers[h]) == 1]
        multi_search = [h for h in search if len(topo.host_drivers[h]) > 1]
        if single_search:
            self._search_lags(topo, single_search, w, masked, search, partial=False)
        made = self._fit(topo, single, w) if single else []
        if multi:
            # Several campaigns on a host: each driver's lag is sought against the load minus what the other
            # drivers explain in the previous model (backfitting); a host without a model gets a second pass.
            if multi_search:
                self._search_lags(topo, multi_search, w, masked, search, partial=True)
            fresh = [h for h in multi_search if self._memory.models.get(h) is None]
            self._fit(topo, multi, w)
            fresh = [h for h in fresh if self._memory.models.get(h) is not None]
            if fresh:
                self._search_lags(topo, fresh, w, masked, search, partial=True)
                self._fit(topo, fresh, w)
        drivers = sorted({d for h in hosts for d in topo.host_drivers[h]})
        self._memory.last_fit.update(dict.fromkeys(hosts, self.ticks))
        # Traffic statistics (baseline, growth, noise) are refreshed at most twice per cadence per row.
        rows = [r for r in sorted(set(drivers) | {r for r in topo.campaign_rows if r is not None})
                if self.ticks - self._memory.stats_at.get(r, -10**9) >= max(1, self.refit_every // 2)]
        if self._memory.base.shape[0] != topo.size:
            grown = np.full(topo.size, np.nan)
            grown[: min(self._memory.base.shape[0], topo.size)] = self._memory.base[: topo.size]
            self._memory.base = grown
        if rows:
            self._traffic_stats(rows, wts, w)
        for d in drivers:  # the traffic level that counts as "moved" is reset when it moved, or each cadence
            if d in self._memory.moved or d not in self._memory.fitted_x or self.ticks % self.calm_every == 0:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    self._memory.fitted_x[d] = float(np.nanmean(w[d, -self.move_span:]))
        changed_at = self._memory.changed_at
        # one fit of every row (the usual refit) is written from its arrays
        whole = made[0] if not multi and len(made) == 1 and made[0].rows.shape[0] == len(hosts) else None
        if self._packed.update([self._memory.models.get(h) for h in hosts], self._memory.growth, rows, whole):
            at = [self._packed.pos[h] for h in hosts]
            self._packed.changed[at] = [changed_at.get(h, self.ticks) for h in hosts]
        else:
            live = [m for m in self._memory.models.values() if m is not None]
            limits = {m.row: self.limits[topo.parts[m.row][2]] for m in live
                      if m.row in topo.parts and topo.parts[m.row][2] in self.limits}
            self._packed = PackedModels.build(live, limits, self._memory.growth, reuse=self._reusable())
            self._packed.changed = np.array([changed_at.get(int(r), self.ticks) for r in self._packed.rows],
                                            dtype=np.int64)

    def _traffic_stats(self, rows: list[int], wts: np.ndarray, w: np.ndarray) -> None:
        """Baseline, growth rate and sample noise of traffic rows from the fit window."""
        recent = max(10, int(600 / self.tick))
        self._memory.base[rows] = baselines(w[rows])
        for r in rows:
            self._memory.stats_at[r] = self.ticks
            self._memory.growth[r] = _growth_rate(wts[-recent:], w[r, -recent:])
            diffs = np.diff(w[r, -120:])
            diffs = diffs[~np.isnan(diffs)]
            # sd of a move_span-sample mean, from the tick-to-tick differences (robust to the odd jump)
            self._memory.noise[r] = float(1.4826 * median_of(np.abs(diffs)) / np.sqrt(2.0 * self.move_span)) \
                if diffs.size else 0.0

    def _search_lags(self, topo: Topology, hosts: list[int], w: np.ndarray, masked: np.ndarray,
                     masked_rows: list[int], partial: bool) -> None:
        """Update the accumulated lag evidence and the lag of every (driver, host) pair of `hosts`."""
        pairs = [(d, h) for h in hosts for d in topo.host_drivers[h]]
        drivers = sorted({d for d, _ in pairs})
        dpos = {d: i for i, d in enumerate(drivers)}
        mpos = {h: i for i, h in enumerate(masked_rows)}
        if partial:
            target = np.vstack([self._partial(w, masked[mpos[h]], d, h) for d, h in pairs])
            py = np.arange(len(pairs), dtype=np.intp)
        else:
            target = masked
            py = np.arange(len(pairs), dtype=np.intp) if len(pairs) == len(hosts) and hosts == masked_rows \
                else np.array([mpos[h] for _, h in pairs], dtype=np.intp)  # (each host its one pair, in order)
        px = np.array([dpos[d] for d, _ in pairs], dtype=np.intp)
        corr = lag_correlations(w[drivers], target, px, py, self.max_lag_ticks)
        # Lag evidence accumulates across refits, weighted by how much the traffic moved in each window
        # (a launch says far more about the lag than a flat hour) and forgotten over about one fit window.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            var = np.nan_to_num(np.nanvar(w[drivers], axis=1), nan=0.0)
        curves = var[px][:, None] * np.nan_to_num(corr, nan=0.0)
        memory, ticks = self._memory, self.ticks
        at, kept, added = memory.curves.read(pairs)
        if at:
            ages = (ticks - added).tolist()
            factor = {age: math.exp(-age / self.fit_ticks) for age in set(ages)}  # (a few distinct ages)
            decay = np.array([factor[age] for age in ages])
            curves[at] = curves[at] + kept * decay[:, None]
        lag = np.argmax(curves, axis=1)
        some = np.any(curves != 0, axis=1).tolist()
        at_lag = corr[np.arange(len(pairs)), lag].tolist()
        memory.curves.write(pairs, curves, ticks)
        known = memory.lags
        for pair, lg, found, peak in zip(pairs, lag.tolist(), some, at_lag, strict=True):
            if found:
                known[pair] = (lg, peak)

    def _partial(self, w: np.ndarray, y: np.ndarray, d: int, h: int) -> np.ndarray:
        """Load of host row h minus what the drivers other than d explain in its current model."""
        m = self._memory.models.get(h)
        if m is None:
            return y
        out = y.copy()
        for j, other in enumerate(m.drivers):
            if other == d:
                continue
            lag = m.lags[j]
            shifted = np.concatenate([np.full(lag, np.nan), w[other, : w.shape[1] - lag]])
            out = out - m.coefs[j] * shifted
        return out

    def _fit(self, topo: Topology, hosts: list[int], w: np.ndarray) -> list[HostFits]:
        """Refit the models of `hosts` at their current lags (the fits made: one per number of drivers)."""
        known, models, changed_at = self._memory.lags, self._memory.models, self._memory.changed_at
        groups: dict[int, tuple[list[int], list[tuple[int, ...]], list[list[int]]]] = {}
        for h in hosts:
            ds = topo.host_drivers[h]
            if len(ds) == 1:  # the usual host: one campaign's traffic
                one = known.get((ds[0], h))
                found = [one[0]] if one is not None else None
            else:
                each = [known.get((d, h)) for d in ds]
                found = [f[0] for f in each if f is not None] if None not in each else None
            if found is None:
                models[h] = None
                continue
            hs, drv, lags = groups.get(len(ds)) or groups.setdefault(len(ds), ([], [], []))
            hs.append(h)
            drv.append(ds)
            lags.append(found)
        made = []
        for hs, drv, lags in groups.values():
            fits = fit_hosts(w, np.array(hs, dtype=np.intp), np.array(drv, dtype=np.intp),
                             np.array(lags, dtype=np.intp))
            fitted = fits.models()
            for h, m, same in zip(hs, fitted, _same_models([models.get(h) for h in hs], fitted, fits), strict=True):
                if not same:
                    changed_at[h] = self.ticks
                models[h] = m
            made.append(fits)
        return made

    def _masked_load(self, w: np.ndarray, hosts: list[int]) -> np.ndarray:
        """Host rows of the window with points far off their current model blanked, so that a burst of
        unexplained load cannot pull the lag towards itself."""
        y = w[hosts]  # (a copy)
        p = self._packed
        if p.rows.shape[0] == 0:
            return y
        trusted = (p.usable & p.settled(self.ticks, self.min_support)).tolist()
        pos = p.pos
        sel = [(j, i) for j, i in enumerate(pos.get(h, -1) for h in hosts) if i >= 0 and trusted[i]]
        if not sel:
            return y
        yj = np.array([j for j, _ in sel], dtype=np.intp)
        pi = np.array([i for _, i in sel], dtype=np.intp)
        xs = _lagged_window(w, p.drivers[pi], p.lags[pi])
        pred = p.intercept[pi][:, None] + np.einsum("hk,hkt->ht", p.coefs[pi], xs)
        with np.errstate(invalid="ignore"):
            off = np.abs(y[yj] - pred) > 4.0 * p.sigma[pi][:, None]
        sub = y[yj]
        sub[off] = np.nan
        y[yj] = sub
        return y

    # -- per-tick arrays -----------------------------------------------------------------------

    def _now_arrays(self, window: np.ndarray, column: np.ndarray, det: DetectorOutput) -> ModelsNow:
        """Driver values at their lags, expected values, spreads, residuals and maturity of every model."""
        p = self._packed
        h = p.rows.shape[0]
        if h == 0:
            return ModelsNow.empty()
        w_len = window.shape[1]
        col = w_len - 1 - p.lags
        k = TREND_TICKS
        idx = col[:, :, None] + _TREND_OFFSETS
        seg = window[p.drivers[:, :, None], np.clip(idx, 0, w_len - 1)]
        seg[idx < 0] = np.nan
        have = ~np.isnan(seg)
        # the latest sample at or just before the lag (of the last three)
        x = np.where(have[:, :, -1], seg[:, :, -1], np.where(have[:, :, -2], seg[:, :, -2], seg[:, :, -3]))
        # traffic's step per tick over the trend window: the mean of its later half less its earlier half's
        halves = (h, seg.shape[1], 2, k)
        with np.errstate(invalid="ignore", divide="ignore"):
            # in the window's precision, as np.nanmean gives it (the store keeps float32)
            mean = (np.where(have, seg, 0.0).reshape(halves).sum(axis=3) / have.reshape(halves).sum(axis=3)).astype(
                seg.dtype, copy=False)
        step = np.nan_to_num(np.abs(mean[:, :, 1] - mean[:, :, 0]) / k, nan=0.0)
        expected = p.intercept + np.sum(p.coefs * x, axis=1)
        a = np.concatenate([np.ones((h, 1)), x - p.x_mean], axis=1)
        lev = 1.0 + np.maximum(np.einsum("hi,hij,hj->h", a, p.cov, a), 0.0)
        sigma = np.sqrt(p.sigma**2 * lev + np.sum((2.0 * p.coefs * step) ** 2, axis=1))
        values = column[p.rows] if column.shape[0] else np.full(h, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            rz = (values - expected) / sigma
        base = self._memory.base[p.drivers] if self._memory.base.shape[0] else np.full(p.drivers.shape, np.nan)
        settled = p.settled(self.ticks, self.min_support)
        mature = settled.copy()
        # Support is only worth checking where the verdict matters: a residual or a detector score of note.
        dscore = det.score[p.rows] if det.score.shape[0] else np.zeros(h)
        with np.errstate(invalid="ignore"):
            look = settled & ((np.abs(rz) >= RESIDUAL_ONSET) | (dscore >= self.report_score))
        if look.any():
            mature[look] = self._supported(window, x[look], base[look], col[look], look)
        x_now = window[p.drivers, -1]
        x_now = np.where(np.isnan(x_now), x, x_now)
        return ModelsNow(x, expected, sigma, rz, mature, x_now, base)

    def _supported(self, window: np.ndarray, x: np.ndarray, base: np.ndarray, col: np.ndarray,
                   sel: np.ndarray) -> np.ndarray:
        """Whether each selected model has seen traffic near its current level long enough to vouch for it."""
        p = self._packed
        rise = x - base
        thr = base + 0.5 * rise
        seg = window[p.drivers[sel]]  # [h, K, W]
        ok_col = np.arange(window.shape[1])[None, None, :] <= col[:, :, None]
        with np.errstate(invalid="ignore"):
            count = np.sum((seg >= thr[:, :, None]) & ok_col, axis=2)
        supported = (count >= self.min_support) | ~(rise > 0) | (p.coefs[sel] <= 0)
        return np.all(supported, axis=1)

    # -- campaigns, forecasts --------------------------------------------------------------------

    def _latest(self, window: np.ndarray, row: int | None) -> float:
        if row is None:
            return float("nan")
        seg = window[row, -5:]
        seg = seg[~np.isnan(seg)]
        return float(seg[-1]) if seg.shape[0] else float("nan")

    def _base_of(self, row: int | None) -> float:
        if row is None or row >= self._memory.base.shape[0]:
            return float("nan")
        return float(self._memory.base[row])

    def _campaign_lift(self, topo: Topology, ci: int, window: np.ndarray) -> float:
        c = self.campaigns[ci]
        cr, tr = topo.campaign_rows[ci], topo.driver_of[ci]
        visitors = self._latest(window, cr)
        if tr is not None and tr != cr:
            return lift(self._latest(window, tr), self._base_of(tr), visitors, self._base_of(cr))
        del c
        return lift(float("nan"), float("nan"), visitors, self._base_of(cr))

    def _campaign_states(self, topo: Topology, window: np.ndarray,
                         now: ModelsNow, details: bool = True) -> list[CampaignState]:
        out = []
        pairs_of = self._pairs_builder(topo, now) if details else None
        for ci, c in enumerate(self.campaigns):
            cr = topo.campaign_rows[ci]
            lifted = self._campaign_lift(topo, ci, window)
            if not math.isnan(lifted) and lifted >= LIFTED:
                self._memory.lifted_since.setdefault(ci, self.ticks)
            elif math.isnan(lifted) or lifted < 0.5 * (1.0 + LIFTED):  # hysteresis: a dip is no new launch
                self._memory.lifted_since.pop(ci, None)
            pairs = LazyPairs(partial(pairs_of, ci)) if pairs_of is not None and topo.campaign_hosts[ci] \
                else LazyPairs()
            out.append(CampaignState(c.name, self._latest(window, cr), self._base_of(cr), lifted,
                                     self._memory.growth.get(cr, float("nan")) if cr is not None else float("nan"),
                                     pairs))
        return out

    def _pairs_builder(self, topo: Topology, now: ModelsNow) -> Callable[[int], tuple[PairState, ...]]:
        """A function of a campaign index giving its per-host pairs at this tick. What it reads is copied now
        (refits write the packed models in place), the pairs themselves are built only when read."""
        p = self._packed
        pos, models, tick = p.pos, list(p.models), self.tick
        coefs, intercept, usable, limit, growth = (p.coefs.copy(), p.intercept.copy(), p.usable.copy(), p.limit,
                                                   p.growth)
        campaigns, parts = self.campaigns, topo.parts
        caps: list[tuple[np.ndarray, np.ndarray]] = []

        def build(ci: int) -> tuple[PairState, ...]:
            c, tr = campaigns[ci], topo.driver_of[ci]
            assert tr is not None  # a campaign lands on host rows only through its traffic row
            if not caps:
                caps.append(_capacities(coefs, intercept, usable, limit, growth, now.x_now))
            head, secs = caps[0]
            pairs = []
            for hr in topo.campaign_hosts[ci]:
                _kind, host, metric = parts[hr]
                i = pos.get(hr)
                m = models[i] if i is not None else None
                if i is None or m is None or tr not in m.drivers:
                    pairs.append(PairState(c.name, host, metric, None, float("nan"), float("nan"), UNKNOWN))
                    continue
                j = m.drivers.index(tr)
                model = m.pair_model(j)
                cap = UNKNOWN
                if not math.isnan(head[i]):
                    x_now = now.x_now[i]
                    others = float(np.dot(coefs[i], x_now) - coefs[i, j] * x_now[j])
                    at_limit = (float(limit[i]) - m.intercept - others) / float(coefs[i, j])
                    cap = Capacity(float(limit[i]), at_limit, float(head[i]), float(secs[i]), float(growth[i, j]))
                pairs.append(PairState(c.name, host, metric, model, model.lag_ticks * tick,
                                       float(now.expected[i]), cap, float(now.sigma[i]), bool(now.mature[i])))
            return tuple(pairs)

        return build

    def _forecasts(self, now: ModelsNow, column: np.ndarray) -> ForecastTable:
        p = self._packed
        values = column[p.rows] if column.shape[0] else np.full(p.rows.shape[0], np.nan)
        settled = p.settled(self.ticks, self.min_support)
        return ForecastTable(p.pos, p.intercept, p.coefs, now.x_now, p.growth, values, p.usable & settled)

    def _facts(self, column: np.ndarray, det: DetectorOutput, topo: Topology, now: ModelsNow,
               campaigns: list[CampaignState]) -> TickFacts:
        """What this tick's explanations read (see explain.py)."""
        return TickFacts(column, det, topo, self._packed, now, tuple(c.name for c in self.campaigns),
                         tuple(c.lift for c in campaigns), self._memory.lifted_since, self.ticks, self.tick,
                         self.learn_ticks, self.residual_limit, self.baseline_label, self._episodes, self._slow_now,
                         self._sig, self._bursts, parts=self._parts)

    # -- evicted series ------------------------------------------------------------------------

    def forget_rows(self, rows: np.ndarray) -> None:
        """Forget rows: evicted series, or freed rows a new series took (it starts with no history).

        The detector forgets them too; models, lags and traffic statistics on them are dropped, and the
        topology follows the names at the next step."""
        if not rows.shape[0]:
            return
        forget = getattr(self.detector, "forget_rows", None)
        if forget is not None:
            forget(rows)
        for part in (self._episodes, self._slow, self._bursts):
            part.forget_rows(rows)
        if self.groups is not None:
            self.groups.forget_rows(rows)
        self._memory.forget(set(rows.tolist()), rows)
        if np.isin(self._packed.rows, rows).any():  # packed again from the models left at the next refit
            self._repack, self._packed = self._packed, PackedModels.build([])
        self._topo = None


def _lagged_window(w: np.ndarray, drivers: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """[H, K, W]: driver rows of the window at their lags, w[d, t - lag] (NaN before the window starts); each
    distinct driver row is read once."""
    distinct, at = np.unique(drivers, return_inverse=True)
    pad = int(lags.max(initial=0))
    padded = np.full((distinct.shape[0], pad + w.shape[1]), np.nan, dtype=w.dtype)
    padded[:, pad:] = w[distinct]
    return sliding_window_view(padded, w.shape[1], axis=1)[at.reshape(drivers.shape), pad - lags]


def _capacities(coefs: np.ndarray, intercept: np.ndarray, usable: np.ndarray, limit: np.ndarray,
                growth: np.ndarray, x_now: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Headroom (traffic multiple) and seconds to each packed model's limit; NaN where unknown."""
    contrib = np.sum(coefs * x_now, axis=1)
    ok = usable & ~np.isnan(limit)
    with np.errstate(invalid="ignore", divide="ignore"):
        head = np.where(ok & (contrib > 0), np.maximum((limit - intercept) / contrib, 0.0), np.nan)
    secs = np.full(head.shape[0], np.nan)
    if ok.any():
        secs[ok] = seconds_to_level_many(intercept[ok], coefs[ok], x_now[ok], growth[ok], limit[ok])
    return head, secs


def _same_models(olds: Sequence[HostModel | None], news: Sequence[HostModel | None],
                 fits: HostFits | None = None) -> list[bool]:
    """`_same_model` of each pair; one-driver models (the usual case) compared all at once (from the fits'
    arrays when `news` are the models of one-driver `fits`)."""
    if fits is not None and fits.drivers.shape[1] == 1:
        return _same_one_driver(olds, fits)
    one: list[int] = []
    rows: list[tuple[float, ...]] = []
    for i, (o, n) in enumerate(zip(olds, news, strict=True)):
        if (o is not None and n is not None and len(n.drivers) == 1 and o.drivers == n.drivers
                and abs(o.lags[0] - n.lags[0]) <= 1):
            one.append(i)
            rows.append((o.intercept, o.coefs[0], o.x_max[0], n.intercept, n.coefs[0], n.x_mean[0], n.x_max[0],
                         n.resid_sigma))
    out = [False] * len(news)
    if one:
        oi, oc, ox, ni, nc, nm, nx, sigma = np.array(rows, dtype=np.float64).T
        ok = np.ones(len(one), dtype=bool)
        for x in (nm, nx, ox):  # predictions within one sigma over the fitted traffic range
            ok &= np.abs((oi + oc * x) - (ni + nc * x)) <= sigma
        for i, same in zip(one, ok.tolist(), strict=True):
            out[i] = same
    for i, (o, n) in enumerate(zip(olds, news, strict=True)):
        if n is not None and len(n.drivers) != 1:
            out[i] = _same_model(o, n)
    return out


def _same_one_driver(olds: Sequence[HostModel | None], fits: HostFits) -> list[bool]:
    """`_same_model` of each old model and row of one-driver fits, all at once (the same arithmetic)."""
    at: list[int] = []
    old: list[HostModel] = []
    for j, o in enumerate(olds):
        if o is not None and len(o.drivers) == 1:
            at.append(j)
            old.append(o)
    out = np.zeros(len(olds), dtype=bool)
    if at:
        i = np.array(at, dtype=np.intp)
        oi = np.array([o.intercept for o in old], dtype=np.float64)
        oc = np.concatenate([o.coefs for o in old]).astype(np.float64)
        ox = np.concatenate([o.x_max for o in old]).astype(np.float64)
        ok = (fits.fitted[i] & (np.array([o.drivers[0] for o in old]) == fits.drivers[i, 0])
              & (np.abs(np.array([o.lags[0] for o in old]) - fits.lags[i, 0]) <= 1))
        ni, nc, sigma = fits.intercept[i], fits.coefs[i, 0].astype(np.float64), fits.sigma[i]
        for x in (fits.x_mean[i, 0].astype(np.float64), fits.x_max[i, 0].astype(np.float64), ox):
            ok &= np.abs((oi + oc * x) - (ni + nc * x)) <= sigma  # predictions within one sigma over the range
        out[i] = ok
    return out.tolist()


def _same_model(old: HostModel | None, new: HostModel | None) -> bool:
    """Whether a refit left the model where it was: same lags (±1 tick) and predictions within one sigma
    over the fitted traffic range (a model still moving is still learning)."""
    if old is None or new is None or old.drivers != new.drivers:
        return False
    if any(abs(a - b) > 1 for a, b in zip(old.lags, new.lags, strict=True)):
        return False
    if len(new.drivers) == 1:  # the usual case, in plain floats (the same arithmetic as `expected`)
        oc, nc, oi, ni, s = float(old.coefs[0]), float(new.coefs[0]), old.intercept, new.intercept, new.resid_sigma
        return all(abs((oi + oc * x) - (ni + nc * x)) <= s
                   for x in (float(new.x_mean[0]), float(new.x_max[0]), float(old.x_max[0])))
    probes = (new.x_mean, new.x_max, old.x_max)
    return all(abs(old.expected(x) - new.expected(x)) <= new.resid_sigma for x in probes)


def default_detector(tick: float, name: str = DEFAULT_LIVE_DETECTOR) -> StreamingDetector:
    """The detector the engine uses for a tick length (window of about 15 minutes)."""
    from .registry import detector_window, make_detector

    return make_detector(name, tick, window=detector_window(tick))


def replay(analyzer: Analyzer, ts: np.ndarray, names: Sequence[str], values: np.ndarray,
           details_every: int = 1) -> Iterator[AnalysisResult]:
    """Analyse recorded series ([series, T] on a regular grid of the analyzer's tick) one tick at a time;
    per-host pairs and forecasts every `details_every` ticks and on the last."""
    index = {n: i for i, n in enumerate(names)}
    keep = analyzer.fit_ticks
    last = values.shape[1] - 1
    for t in range(values.shape[1]):
        lo = max(0, t + 1 - keep)
        yield analyzer.step(float(ts[t]), names, index, values[:, t], ts[lo: t + 1], values[:, lo: t + 1],
                            details=t % details_every == 0 or t == last)
