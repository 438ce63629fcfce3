"""One tick of analysis over every series: detector scores, campaign models, causes and explanations."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..describe import format_value, metric_label
from ..model import Cause, split_series
from ..units import format_duration, format_number
from .correlation import LoadModel, baseline, fit_load_model, lift
from .detectors import DetectorOutput, StreamingDetector, z_to_score
from .forecast import DEFAULT_LIMITS, UNKNOWN, Capacity, capacity, growth_rate

MODELLED_METRICS = ("cpu.percent", "load.1", "mem.percent", "net.rx_bps", "net.tx_bps")
RESIDUAL_EXPLAINED = 4.0  # |residual| within this many model sigmas: the campaign explains the value
LIFTED = 1.5  # traffic at least this multiple of its baseline counts as a campaign surge


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


@dataclass(frozen=True, slots=True)
class CampaignState:
    """A campaign now: visitors, baselines, lift and trend, and its per-host models."""

    name: str
    visitors: float
    baseline: float
    lift: float
    growth_per_s: float
    pairs: tuple[PairState, ...] = ()


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """A tick's analysis: detector arrays by row, causes for anomalous rows, campaign states."""

    ts: float
    detector: DetectorOutput
    score: np.ndarray  # the detector's score, raised where a load model's residual is anomalous
    expected: np.ndarray  # the detector's expected value, or the load model's where one applies
    cause: dict[int, tuple[Cause, str | None]] = field(default_factory=dict)
    explanation: dict[int, str] = field(default_factory=dict)
    campaigns: tuple[CampaignState, ...] = ()


class Analyzer:
    """Runs the detector every tick and refits campaign load models every few ticks."""

    def __init__(self, detector: StreamingDetector, campaigns: Sequence[CampaignSpec], tick: float,
                 report_score: float = 0.5, refit_every: int = 10, fit_window: float = 1800.0,
                 max_lag: float = 300.0) -> None:
        self.detector = detector
        self.campaigns = list(campaigns)
        self.tick = tick
        self.report_score = report_score
        self.refit_every = refit_every
        self.fit_ticks = max(30, int(fit_window / tick))
        self.max_lag_ticks = max(1, int(max_lag / tick))
        self.ticks = 0
        self._pairs: dict[tuple[str, str, str], LoadModel | None] = {}
        self._baselines: dict[str, float] = {}
        self._growth: dict[str, float] = {}
        self._fitted_at: dict[str, float] = {}
        window = getattr(detector, "window", None)
        self.window_label = format_duration(window * tick) if window else "recent"

    def step(self, ts: float, names: Sequence[str], index: dict[str, int], column: np.ndarray,
             window_ts: np.ndarray, window: np.ndarray) -> AnalysisResult:
        """Analyse one tick. `window` is the last N ticks [series, N] including this one."""
        det = self.detector.update(column)
        if self.ticks % self.refit_every == 0 or self._traffic_moved(index, column):
            self._refit(index, window_ts, window)
        self.ticks += 1
        campaigns = self._campaign_states(index, column, window)
        score = np.array(det.score, copy=True)
        expected = np.array(det.expected, copy=True)
        residuals = self._residuals(index, column, campaigns)
        for row, (rz, _c, p) in residuals.items():
            expected[row] = p.expected_now
            rscore = float(z_to_score(np.array([rz]))[0])
            if not score[row] >= rscore:
                score[row] = rscore
        explanation: dict[int, str] = {}
        cause: dict[int, tuple[Cause, str | None]] = {}
        hot = np.flatnonzero(np.nan_to_num(score, nan=0.0) >= self.report_score)
        for r in hot.tolist():
            text, c = self._explain(r, names[r], column, det, residuals.get(r), campaigns)
            explanation[r] = text
            if c is not None:
                cause[r] = c
        return AnalysisResult(ts, det, score, expected, cause, explanation, tuple(campaigns))

    def _residuals(self, index: dict[str, int], column: np.ndarray,
                   campaigns: list[CampaignState]) -> dict[int, tuple[float, CampaignState, PairState]]:
        """For host series with a usable load model: the residual in model sigmas (best campaign wins)."""
        out: dict[int, tuple[float, CampaignState, PairState]] = {}
        for c in campaigns:
            for p in c.pairs:
                if p.model is None or not p.model.usable or p.expected_now != p.expected_now:
                    continue
                row = index.get(f"host:{p.host}/{p.metric}")
                if row is None or column[row] != column[row]:
                    continue
                rz = (float(column[row]) - p.expected_now) / p.sigma_now
                if row not in out or abs(rz) < abs(out[row][0]):
                    out[row] = (rz, c, p)
        return out

    # -- campaign models ----------------------------------------------------------------------

    def _traffic_moved(self, index: dict[str, int], column: np.ndarray) -> bool:
        """Whether any campaign's traffic changed by more than 10% since the last fit (refit sooner)."""
        for c in self.campaigns:
            r = index.get(c.traffic_series, index.get(c.series))
            if r is None or column[r] != column[r]:
                continue
            last = self._fitted_at.get(c.name)
            if last is None or abs(float(column[r]) - last) > 0.1 * max(abs(last), 1e-9):
                return True
        return False

    def _refit(self, index: dict[str, int], ts: np.ndarray, window: np.ndarray) -> None:
        w = window[:, -self.fit_ticks:]
        wts = ts[-self.fit_ticks:]
        for c in self.campaigns:
            for s in {c.series, c.traffic_series}:
                r = index.get(s)
                if r is not None:
                    self._baselines[s] = baseline(w[r])
            r = index.get(c.series)
            if r is not None:
                recent = max(10, int(600 / self.tick))
                self._growth[c.name] = growth_rate(wts[-recent:], w[r, -recent:])
            tr = index.get(c.traffic_series, index.get(c.series))
            if tr is None:
                continue
            last = w[tr, -1]
            if last == last:
                self._fitted_at[c.name] = float(last)
            for host in c.hosts:
                for metric in MODELLED_METRICS:
                    hr = index.get(f"host:{host}/{metric}")
                    if hr is None:
                        continue
                    self._pairs[(c.name, host, metric)] = fit_load_model(w[tr], w[hr], self.max_lag_ticks)

    def _traffic_at_lag(self, window: np.ndarray, row: int, lag: int) -> float:
        col = window.shape[1] - 1 - lag
        if col < 0:
            return float("nan")
        seg = window[row, max(0, col - 2): col + 1]
        seg = seg[~np.isnan(seg)]
        return float(seg[-1]) if seg.shape[0] else float("nan")

    @staticmethod
    def _traffic_trend(window: np.ndarray, row: int, lag: int, k: int = 5) -> float:
        """Traffic change per tick around `lag` ticks ago, from two k-tick means (noise averaged out)."""
        end = window.shape[1] - lag
        if end - 2 * k < 0:
            return 0.0
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            recent = np.nanmean(window[row, end - k: end])
            before = np.nanmean(window[row, end - 2 * k: end - k])
        step = abs(float(recent) - float(before)) / k
        return step if step == step else 0.0

    def _campaign_states(self, index: dict[str, int], column: np.ndarray,
                         window: np.ndarray) -> list[CampaignState]:
        out = []
        for c in self.campaigns:
            cr = index.get(c.series)
            tr = index.get(c.traffic_series, cr)
            visitors = self._latest(window, cr)
            site_now = self._latest(window, tr)
            site_base = self._baselines.get(c.traffic_series, float("nan"))
            camp_base = self._baselines.get(c.series, float("nan"))
            lifted = lift(site_now if c.traffic_series in index else float("nan"), site_base, visitors, camp_base)
            pairs = []
            growth = self._growth.get(c.name, float("nan"))
            for host in c.hosts:
                for metric in MODELLED_METRICS:
                    key = (c.name, host, metric)
                    if key not in self._pairs:
                        continue
                    model = self._pairs[key]
                    exp = sig = float("nan")
                    cap = UNKNOWN
                    if model is not None and tr is not None:
                        x = self._traffic_at_lag(window, tr, model.lag_ticks)
                        exp = model.expected(x)
                        sig = model.prediction_sigma(x, self._traffic_trend(window, tr, model.lag_ticks))
                        if metric in DEFAULT_LIMITS:
                            cap = capacity(model, site_now, DEFAULT_LIMITS[metric], growth)
                    lag_s = model.lag_ticks * self.tick if model else float("nan")
                    pairs.append(PairState(c.name, host, metric, model, lag_s, exp, cap, sig))
            out.append(CampaignState(c.name, visitors, camp_base, lifted, growth, tuple(pairs)))
        return out

    @staticmethod
    def _latest(window: np.ndarray, row: int | None) -> float:
        if row is None:
            return float("nan")
        seg = window[row, -5:]
        seg = seg[~np.isnan(seg)]
        return float(seg[-1]) if seg.shape[0] else float("nan")

    # -- explanations -------------------------------------------------------------------------

    def _explain(self, row: int, name: str, column: np.ndarray, det: DetectorOutput,
                 residual: tuple[float, CampaignState, PairState] | None,
                 campaigns: list[CampaignState]) -> tuple[str, tuple[Cause, str | None] | None]:
        kind, who, metric = split_series(name)
        value = float(column[row])
        label = f"{who} {metric_label(metric)} {format_value(metric, value)}"
        z = float(det.z[row])
        if z == z:
            side = "above" if z >= 0 else "below"
            head = (f"{label} is {abs(z):.1f}σ {side} its {self.window_label} median "
                    f"{format_value(metric, float(det.expected[row]))}")
        else:
            head = label
        if kind != "host":
            lifted = next((c.lift for c in campaigns if c.name == who), float("nan"))
            extra = f" (lift {lifted:.1f}x)" if lifted == lifted and kind == "campaign" else ""
            return head + extra, None
        if residual is not None:
            rz, c, p = residual
            assert p.model is not None
            traffic = format_number((p.expected_now - p.model.intercept) / p.model.slope)
            model_txt = (f"expected {format_value(metric, p.expected_now)} at {traffic} visitors from {c.name} "
                         f"(lag {format_duration(p.lag_seconds)})")
            if abs(rz) <= RESIDUAL_EXPLAINED:
                return f"{head}; {model_txt}; explained", (Cause.CAMPAIGN, c.name)
            side = "above" if rz > 0 else "below"
            return (f"{label} is {abs(rz):.1f}σ {side} its load model: {model_txt}; unexplained",
                    (Cause.UNEXPLAINED, c.name))
        serving = [c for c in campaigns if any(p.host == who for p in c.pairs)]
        if not serving:
            serving = [c for c in campaigns if any(who in s.hosts for s in self.campaigns if s.name == c.name)]
        if not serving:
            return head + "; no campaign lands on this host; unexplained", (Cause.UNEXPLAINED, None)
        top = max(serving, key=lambda c: c.lift if c.lift == c.lift else 0.0)
        if top.lift == top.lift and top.lift >= LIFTED:
            return (f"{head}; traffic from {top.name} is {top.lift:.1f}x its baseline (load model still "
                    f"learning); likely explained", (Cause.CAMPAIGN, top.name))
        lift_txt = f"traffic only {100 * (top.lift - 1):+.0f}%" if top.lift == top.lift else "traffic unknown"
        return f"{head}; {lift_txt}; unexplained", (Cause.UNEXPLAINED, None)
