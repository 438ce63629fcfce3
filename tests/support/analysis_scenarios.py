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


# -- the ops suite: what an operator sees on real hosts, with known incidents and harmless events ---------------

DAY = 86400.0


@dataclass
class OpsScenario:
    """Host and traffic series of one kind of situation, with the incidents in it and its warm-up."""

    kind: str
    tick: float
    ts: np.ndarray
    names: list[str]
    values: np.ndarray
    specs: list[CampaignSpec]
    incidents: list[tuple[str, int, int]]  # (series, start tick, end tick): must be called unexplained
    warmup: int  # ticks not counted (the analyzer learning the host's normal)
    lags: dict[tuple[str, str], float] = field(default_factory=dict)  # (campaign, host series) -> true lag, s
    hosts: int = 1


def _traffic(rng: np.random.Generator, t: np.ndarray, base: float, launch: int, peak: float,
             rise: float, fade: float) -> np.ndarray:
    after = np.maximum(t - launch, 0.0)
    surge = np.where(t >= launch, (1 - np.exp(-after / rise)) * np.exp(-after / fade), 0.0)
    x = base + peak * base * surge
    return np.asarray(np.maximum(x + rng.normal(0, np.sqrt(x)), 0.0))


def _shift(x: np.ndarray, lag: int) -> np.ndarray:
    return np.concatenate([np.full(lag, x[0]), x[: x.shape[0] - lag]]) if lag else x


def ops_scenario(kind: str, seed: int = 0, tick: float = 10.0, hours: float = 8.0, noise: float = 1.0,
                 lag_seconds: float = 60.0) -> OpsScenario:
    """One scenario of `kind`: idle, cron, campaigns, fleet, leak, outage, bots, peak-spike (seeded)."""
    rng = np.random.default_rng(seed)
    n = int(hours * 3600 / tick)
    t = np.arange(n, dtype=np.float64)
    ts = 1_800_000_000.0 + t * tick
    warmup = int(min(0.25 * n, 7200 / tick))  # the host's first hours: the analyzer learns its normal
    names: list[str] = []
    rows: list[np.ndarray] = []
    specs: list[CampaignSpec] = []
    incidents: list[tuple[str, int, int]] = []
    lags: dict[tuple[str, str], float] = {}
    per_min = 60.0 / tick

    def idle_cpu(level: float) -> np.ndarray:
        # an idle VM: a low level with short jitter to a few points above it several times an hour
        x = level + rng.normal(0, 0.3 * noise, n)
        for s in rng.integers(0, n, size=int(6 * hours)):
            x[s: s + max(1, int(rng.integers(1, 4) * 5 / tick))] += rng.uniform(1.0, 3.0) * noise
        return np.asarray(np.clip(x, 0.0, 100.0))

    def mem(level: float) -> np.ndarray:
        return np.asarray(level + rng.normal(0, 0.1 * noise, n))

    def add_host(name: str, cpu: np.ndarray, memory: np.ndarray | None = None) -> None:
        names.append(f"host:{name}/cpu.percent")
        rows.append(np.clip(cpu, 0.0, 100.0))
        names.append(f"host:{name}/mem.percent")
        rows.append(np.clip(mem(40.0) if memory is None else memory, 0.0, 100.0))

    def incident_at(lo: float = 0.55, hi: float = 0.9) -> int:
        return int(rng.uniform(lo, hi) * n)

    def campaign(name: str, hosts: tuple[str, ...], launch: int, peak: float = 4.0) -> np.ndarray:
        x = _traffic(rng, t, rng.uniform(80, 300), launch, peak, rng.uniform(3, 10) * per_min,
                     rng.uniform(60, 240) * per_min)
        names.append(f"campaign:{name}/visitors")
        rows.append(x)
        specs.append(CampaignSpec(name, f"campaign:{name}/visitors", f"campaign:{name}/visitors", hosts))
        return x

    def load_from(x: np.ndarray, gain_points: float, lag: int) -> np.ndarray:
        rise = float(np.percentile(x, 99) - np.percentile(x, 20))
        return np.asarray(gain_points / max(rise, 1e-9) * (_shift(x, lag) - x[0]))

    if kind == "idle":
        add_host("idle", idle_cpu(2.0))
    elif kind == "cron":
        warmup = int(3.25 * 3600 / tick)  # an hourly job is recurring from its 4th run on
        cpu = idle_cpu(5.0)
        for period, height, minutes in ((15 * 60, 25.0, 1.0), (3600, 40.0, 3.0)):
            step = int(period / tick)
            for s in range(int(rng.integers(0, step)), n, step):
                cpu[s: s + max(1, int(minutes * per_min))] += height
        s = incident_at()
        cpu[s: s + int(4 * per_min) + 1] += 60.0  # a burst far larger than any cron run: an incident
        incidents.append(("host:cron/cpu.percent", s, s + int(4 * per_min) + 1))
        add_host("cron", cpu)
    elif kind in ("campaigns", "peak-spike", "bots", "outage"):
        lag = round(lag_seconds / tick)
        la = int(rng.uniform(0.3, 0.4) * n)
        x1 = campaign("spring", ("web",), la)
        cpu = idle_cpu(8.0) + load_from(x1, rng.uniform(25, 45), lag)
        lags[("spring", "host:web/cpu.percent")] = lag * tick
        if kind == "campaigns":  # a second campaign lands on the same host while the first still runs
            lb = la + int(rng.uniform(20, 60) * per_min)
            x2 = campaign("flash", ("web",), lb, peak=3.0)
            cpu = cpu + load_from(x2, rng.uniform(10, 20), lag)
            lags[("flash", "host:web/cpu.percent")] = lag * tick
        if kind == "bots":  # bot visitors: the site's traffic triples, the servers barely notice
            s = incident_at(0.6, 0.8)
            bots = np.zeros(n)
            bots[s: s + int(30 * per_min)] = 2.0 * float(np.median(x1))
            rows[names.index("campaign:spring/visitors")] = x1 + bots
        if kind == "peak-spike":  # an incident at the campaign's peak
            peak_at = la + int(np.argmax(_shift(x1, lag)[la:]) if n > la else 0)
            s = min(max(peak_at, la + int(10 * per_min)), n - int(10 * per_min))
            cpu[s: s + int(5 * per_min) + 1] += 30.0
            incidents.append(("host:web/cpu.percent", s, s + int(5 * per_min) + 1))
        if kind == "outage":  # the app stops serving: load collapses while traffic holds
            s = incident_at(0.45, 0.6)
            cpu[s: s + int(15 * per_min)] = 1.0 + rng.normal(0, 0.2, int(15 * per_min))[: n - s]
            incidents.append(("host:web/cpu.percent", s, min(n, s + int(15 * per_min))))
        add_host("web", cpu)
    elif kind == "fleet":  # 8 hosts behind one campaign; one degrades (its CPU climbs, traffic does not)
        hosts = tuple(f"web-{h}" for h in range(8))
        x = campaign("sale", hosts, int(rng.uniform(0.3, 0.4) * n))
        lag = round(lag_seconds / tick)
        bad = int(rng.integers(0, 8))
        s = incident_at(0.6, 0.85)
        for h, host in enumerate(hosts):
            cpu = idle_cpu(rng.uniform(5, 15)) + load_from(x, rng.uniform(20, 35), lag)
            lags[("sale", f"host:{host}/cpu.percent")] = lag * tick
            if h == bad:
                cpu[s:] += np.minimum((t[s:] - s) / (2 * per_min), 1.0) * 35.0
                incidents.append((f"host:{host}/cpu.percent", s, min(n, s + int(15 * per_min))))
            add_host(host, cpu)
    elif kind == "leak":  # memory grows 0.5 points a minute until it is noticed
        memory = mem(35.0)
        s = incident_at(0.5, 0.7)
        memory[s:] += np.minimum((t[s:] - s) / per_min * 0.5, 50.0)
        incidents.append(("host:app/mem.percent", s, min(n, s + int(40 * per_min))))
        add_host("app", idle_cpu(6.0), memory)
    else:
        raise ValueError(f"unknown scenario kind {kind!r}")
    return OpsScenario(kind, tick, ts, names, np.vstack(rows), specs, incidents, warmup, lags,
                       hosts=sum(1 for nm in names if nm.endswith("/cpu.percent")))


OPS_KINDS = ("idle", "cron", "campaigns", "fleet", "leak", "outage", "bots", "peak-spike")


@dataclass
class OpsRates:
    """Per kind: incidents found and called unexplained, harmless events called unexplained, lag error."""

    incidents: int = 0
    found: int = 0  # an anomaly on the incident's series within its span
    unexplained: int = 0  # ... with an unexplained alert (the default rule would fire: score >= 0.9, cause
    #                       unexplained, above the practical floor)
    false_events: int = 0  # unexplained alert episodes outside every incident (after warm-up)
    host_days: float = 0.0
    lag_errors: list[float] = field(default_factory=list)  # |model lag - true lag|, seconds

    def add(self, other: OpsRates) -> None:
        for k in ("incidents", "found", "unexplained", "false_events", "host_days"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.lag_errors += other.lag_errors

    @property
    def false_per_host_day(self) -> float:
        return self.false_events / self.host_days if self.host_days else float("nan")


ALERT_SCORE, ALERT_FOR = 0.9, 10.0  # the default unexplained-load rule: threshold and for-duration (s)


def evaluate_ops(sc: OpsScenario, detector: str | None = None) -> OpsRates:
    """Run the live analysis over an ops scenario and count what an operator would have been told."""
    det = default_detector(sc.tick) if detector is None else default_detector(sc.tick, detector)
    analyzer = Analyzer(det, sc.specs, sc.tick)
    n = sc.values.shape[1]
    hosts = [i for i, nm in enumerate(sc.names) if nm.startswith("host:")]
    hot = np.zeros((len(sc.names), n), dtype=bool)
    alert = np.zeros((len(sc.names), n), dtype=bool)
    last = None
    for k, res in enumerate(replay(analyzer, sc.ts, sc.names, sc.values, details_every=50)):
        for r in hosts:
            if r not in res.explanation:
                continue
            hot[r, k] = True
            c = res.cause.get(r)
            sig = not (abs(res.size[r]) < res.floor[r])
            alert[r, k] = (c is not None and c[0] == Cause.UNEXPLAINED and sig
                           and res.score[r] >= ALERT_SCORE)
        last = res
    # the rule fires once its condition has held for ALERT_FOR seconds (at least two ticks)
    need = 1 + max(1, int(np.ceil(ALERT_FOR / sc.tick)))
    held = alert.copy()
    for j in range(1, need):
        held[:, j:] &= alert[:, :-j]
        held[:, :j] = False
    alert = held
    out = OpsRates(host_days=sc.hosts * (n - sc.warmup) * sc.tick / DAY)
    guard = np.zeros_like(alert)
    grace = max(3, int(120 / sc.tick))
    for series, s, e in sc.incidents:
        r = sc.names.index(series)
        out.incidents += 1
        span = slice(s, min(n, e + grace))
        out.found += bool(hot[r, span].any())
        out.unexplained += bool(alert[r, span].any())
        guard[r, s: min(n, e + grace)] = True
        # a sustained incident (outage, degraded host, leak) lasts to the end: its end is no new event
        guard[r, e:] |= alert[r, e:]
    gap = max(2, int(60 / sc.tick))  # alerts closer than a minute are one event
    for r in hosts:
        a = alert[r, sc.warmup:] & ~guard[r, sc.warmup:]
        idx = np.flatnonzero(a)
        if idx.size:
            out.false_events += 1 + int(np.sum(np.diff(idx) > gap))
    if last is not None:
        for st in last.campaigns:
            for p in st.pairs:
                key = (st.name, f"host:{p.host}/{p.metric}")
                if p.model is not None and key in sc.lags:
                    out.lag_errors.append(abs(p.lag_seconds - sc.lags[key]))
    return out


@dataclass
class FleetScenario:
    """Host groups behind balancers, one campaign's traffic per group, and hosts that leave their group's level."""

    tick: float
    ts: np.ndarray
    names: list[str]
    values: np.ndarray
    specs: list[CampaignSpec]
    groups: dict[str, str]  # host -> group
    departs: dict[str, int]  # host -> tick from which it runs above its group (truth)
    slope: dict[str, float]  # group -> load points per visitor (truth)
    lag: dict[str, int]  # group -> lag in ticks (truth)


def fleet_scenario(seed: int = 0, *, hosts: int = 40, groups: int = 4, tick: float = 15.0, ticks: int = 600,
                   departs: int = 1, excess: float = 35.0, noise: float = 1.5, missing: float = 0.01,
                   metrics: tuple[str, ...] = ("cpu.percent",)) -> FleetScenario:
    """`groups` groups of hosts (web-0000…), campaign g's traffic landing on group g (the campaign's `hosts`
    names the group), load following it with a per-group lag and gain; `departs` hosts run `excess` points above
    their group from a random tick after the launch (an incident on one host)."""
    rng = np.random.default_rng(seed)
    t = np.arange(ticks, dtype=np.float64)
    ts = 1_800_000_000.0 + t * tick
    names: list[str] = []
    rows: list[np.ndarray] = []
    specs: list[CampaignSpec] = []
    group_of: dict[str, str] = {}
    slope: dict[str, float] = {}
    lag: dict[str, int] = {}
    launch = int(0.45 * ticks)
    shifted: dict[str, np.ndarray] = {}
    for g in range(groups):
        gname = f"pool-{g}"
        base = rng.uniform(100, 400)
        peak = base * rng.uniform(2.0, 5.0)
        after = np.maximum(t - launch, 0.0)
        x = base + np.where(t >= launch, peak * (1 - np.exp(-after / rng.uniform(5, 20))), 0.0)
        x = np.maximum(x + rng.normal(0, np.sqrt(x)), 0.0)
        names.append(f"traffic:site-{g}/visitors")
        rows.append(x)
        names.append(f"campaign:camp-{g}/visitors")  # the campaign's own visitors (its utm_campaign)
        rows.append(np.maximum(x - base + rng.normal(0, 0.1 * np.sqrt(base), ticks), 0.0))
        specs.append(CampaignSpec(f"camp-{g}", f"campaign:camp-{g}/visitors", f"traffic:site-{g}/visitors",
                                  (gname,)))
        lag[gname] = int(rng.integers(1, 6))
        slope[gname] = rng.uniform(30.0, 60.0) / (base + peak)
        shifted[gname] = np.concatenate([np.full(lag[gname], x[0]), x[: ticks - lag[gname]]])
    chosen = set(rng.choice(hosts, size=min(departs, hosts), replace=False).tolist())
    truth: dict[str, int] = {}
    for h in range(hosts):
        host = f"web-{h:04d}"
        gname = f"pool-{h % groups}"
        group_of[host] = gname
        idle = rng.uniform(5, 12)
        for metric in metrics:
            load = idle + slope[gname] * shifted[gname] + rng.normal(0, noise, ticks)
            if h in chosen and metric == "cpu.percent":
                start = int(rng.uniform(launch + 40, ticks - 60))
                load[start:] += excess
                truth[host] = start
            names.append(f"host:{host}/{metric}")
            rows.append(np.clip(load, 0.0, 100.0))
    values = np.vstack(rows)
    values[rng.random(values.shape) < missing] = np.nan
    return FleetScenario(tick, ts, names, values, specs, group_of, truth, slope, lag)
