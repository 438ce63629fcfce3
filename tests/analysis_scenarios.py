"""Synthetic campaign scenarios with known truth, and the rates analysis reaches on them (shared by tests and
benchmarks/analysis_bench.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from surgewatch.analysis.analyzer import Analyzer, CampaignSpec, default_detector, replay
from surgewatch.model import Cause


@dataclass
class Scenario:
    """Series on a regular grid plus the truth behind them."""

    tick: float
    ts: np.ndarray
    names: list[str]
    values: np.ndarray
    specs: list[CampaignSpec]
    lags: dict[tuple[str, str], int]  # (campaign, host row name) -> lag in ticks
    gains: dict[tuple[str, str], float]
    injected: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # host row name -> [start, end)
    disturbed: dict[str, np.ndarray] = field(default_factory=dict)  # host row name -> ticks with injected load
    launches: list[int] = field(default_factory=list)


def make_scenario(seed: int, *, tick: float = 2.0, ticks: int = 2400, campaigns: int = 1, hosts: int = 1,
                  lag_range: tuple[int, int] = (3, 40), gain_range: tuple[float, float] = (15.0, 50.0),
                  noise: float = 1.5, diurnal: float = 0.0, spikes: int = 2, shifts: int = 0,
                  missing: float = 0.02, measure_noise: float = 0.3) -> Scenario:
    """Campaign traffic with a launch each, host CPU following it with known lags and gains, injections."""
    rng = np.random.default_rng(seed)
    t = np.arange(ticks, dtype=np.float64)
    ts = 1_800_000_000.0 + t * tick
    names: list[str] = []
    rows: list[np.ndarray] = []
    specs: list[CampaignSpec] = []
    true_traffic: list[np.ndarray] = []
    launches = []
    for c in range(campaigns):
        base = rng.uniform(50, 400)
        day = 1.0 + diurnal * np.sin(2 * np.pi * (ts / 86400.0 + rng.uniform()))
        launch = int(rng.uniform(0.35, 0.55) * ticks)
        rise = rng.uniform(5, 60)
        peak = base * rng.uniform(2.0, 6.0)
        after = np.maximum(t - launch, 0.0)
        surge = np.where(t >= launch, (1 - np.exp(-after / rise)) * np.exp(-after / rng.uniform(400, 3000)), 0.0)
        x = base * day + peak * surge
        x = np.maximum(x + rng.normal(0, np.sqrt(x)), 0.0)  # the real traffic the servers see
        true_traffic.append(x)
        measured = np.maximum(x + measure_noise * rng.normal(0, np.sqrt(x)), 0.0)
        name = f"camp{c}"
        names.append(f"campaign:{name}/visitors")
        rows.append(measured)
        launches.append(launch)
        specs.append(CampaignSpec(name, f"campaign:{name}/visitors", f"campaign:{name}/visitors",
                                  tuple(f"web-{h}" for h in range(hosts))))
    lags: dict[tuple[str, str], int] = {}
    gains: dict[tuple[str, str], float] = {}
    injected: dict[str, list[tuple[int, int]]] = {}
    disturbed_all: dict[str, np.ndarray] = {}
    for h in range(hosts):
        hname = f"host:web-{h}/cpu.percent"
        load = np.full(ticks, rng.uniform(3, 15))
        for c, x in enumerate(true_traffic):
            lag = int(rng.integers(lag_range[0], lag_range[1] + 1))
            rise_x = float(np.percentile(x, 99) - np.percentile(x, 20))
            gain = rng.uniform(*gain_range) / rise_x / campaigns  # the surge adds gain_range load units
            shifted = np.concatenate([np.full(lag, x[0]), x[: ticks - lag]])
            load = load + gain * shifted
            lags[(f"camp{c}", hname)] = lag
            gains[(f"camp{c}", hname)] = gain
        load = load + rng.normal(0, noise, ticks)
        spans: list[tuple[int, int]] = []
        disturbed = np.zeros(ticks, dtype=bool)
        for k in range(spikes + shifts):
            start = int(rng.uniform(0.5, 0.95) * ticks) if k % 2 == 0 else int(rng.uniform(0.2, 0.5) * ticks)
            if any(abs(start - s) < 150 for s, _ in spans) or any(abs(start - ln) < 60 for ln in launches):
                continue
            height = rng.uniform(8, 20) * noise * rng.choice([1.0, 1.0, -0.6])
            length = int(rng.integers(10, 40)) if k < spikes else ticks - start
            load[start: start + length] += height
            disturbed[start: start + length] = True
            spans.append((start, min(start + length, ticks) if k < spikes else min(start + 60, ticks)))
        injected[hname] = spans
        disturbed_all[hname] = disturbed
        names.append(hname)
        rows.append(np.clip(load, 0.0, None))
    values = np.vstack(rows)
    values[rng.random(values.shape) < missing] = np.nan
    return Scenario(tick, ts, names, values, specs, lags, gains, injected, disturbed_all, launches)


@dataclass
class Rates:
    """What analysis got right over a set of scenarios."""

    injected: int = 0
    injected_detected: int = 0
    injected_unexplained: int = 0  # detected injections classified unexplained (majority of hot ticks)
    campaign_hot: int = 0  # hot host ticks outside injections
    campaign_not_unexplained: int = 0
    false_unexplained_runs: int = 0  # unexplained episodes (>= 3 ticks) outside injections
    scenarios: int = 0
    lag_errors: list[int] = field(default_factory=list)
    gain_errors: list[float] = field(default_factory=list)

    def add(self, other: Rates) -> None:
        for k in ("injected", "injected_detected", "injected_unexplained", "campaign_hot",
                  "campaign_not_unexplained", "false_unexplained_runs", "scenarios"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.lag_errors += other.lag_errors
        self.gain_errors += other.gain_errors

    @property
    def detection_rate(self) -> float:
        return self.injected_detected / max(self.injected, 1)

    @property
    def unexplained_rate(self) -> float:
        return self.injected_unexplained / max(self.injected_detected, 1)

    @property
    def explained_rate(self) -> float:
        return self.campaign_not_unexplained / max(self.campaign_hot, 1)

    @property
    def lag_within_one(self) -> float:
        return float(np.mean(np.abs(self.lag_errors) <= 1)) if self.lag_errors else float("nan")

    @property
    def gain_within_10pct(self) -> float:
        return float(np.mean(np.array(self.gain_errors) <= 0.10)) if self.gain_errors else float("nan")


def evaluate(sc: Scenario) -> Rates:
    """Run analysis over a scenario and score its classifications and final models against the truth."""
    analyzer = Analyzer(default_detector(sc.tick), sc.specs, sc.tick, metrics=None)
    index = {n: i for i, n in enumerate(sc.names)}
    host_rows = {n: i for n, i in index.items() if n.startswith("host:")}
    causes = {n: np.zeros(sc.values.shape[1], dtype=np.int8) for n in host_rows}  # 0 calm, 1 explained, 2 unexpl.
    last = None
    for t, res in enumerate(replay(analyzer, sc.ts, sc.names, sc.values)):
        for n, r in host_rows.items():
            c = res.cause.get(r)
            if r in res.explanation:
                causes[n][t] = 2 if c is not None and c[0] == Cause.UNEXPLAINED else 1
        last = res
    out = Rates(scenarios=1)
    for n, arr in causes.items():
        inside = np.zeros(arr.shape[0], dtype=bool)
        for s, e in sc.injected.get(n, []):
            inside[s:e] = True
            seg = arr[s:e]
            out.injected += 1
            if np.any(seg > 0):
                out.injected_detected += 1
                if np.sum(seg == 2) * 2 > np.sum(seg > 0):
                    out.injected_unexplained += 1
        # Ticks just after an injection ends can still be judged against it (detector windows): skip them.
        guard = inside | sc.disturbed.get(n, np.zeros_like(inside))
        for _s, e in sc.injected.get(n, []):
            guard[e: e + 30] = True
        for stop in (np.flatnonzero(np.diff(guard.astype(np.int8)) == -1) + 1).tolist():
            guard[stop: stop + 30] = True  # detector windows still remember the disturbance for a while
        outside = ~guard
        hot = (arr > 0) & outside
        out.campaign_hot += int(hot.sum())
        out.campaign_not_unexplained += int((hot & (arr == 1)).sum())
        unexpl = ((arr == 2) & outside).astype(np.int8)
        edges = np.diff(np.concatenate([[0], unexpl, [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        out.false_unexplained_runs += int(np.sum(ends - starts >= 3))
    assert last is not None
    for st in last.campaigns:
        for p in st.pairs:
            key = (st.name, f"host:{p.host}/{p.metric}")
            if p.model is None or key not in sc.lags:
                continue
            out.lag_errors.append(p.model.lag_ticks - sc.lags[key])
            out.gain_errors.append(abs(p.model.slope / sc.gains[key] - 1.0))
    return out


def evaluate_many(seeds: range, **kwargs: float) -> Rates:
    """Rates summed over one scenario per seed."""
    total = Rates()
    for seed in seeds:
        total.add(evaluate(make_scenario(seed, **kwargs)))  # type: ignore[arg-type]
    return total
