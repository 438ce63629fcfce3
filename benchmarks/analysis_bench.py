"""Analysis benchmarks: time per tick for N campaigns × M hosts, `analyze` points per second on a CSV,
(with --rates N) classification, lag and gain rates over N random scenarios per family, and (with --ops N)
the ops suite: per kind of situation, incidents found and called unexplained, harmless events called
unexplained per host-day, and the load models' lag error, over N seeds.

    .venv/bin/python benchmarks/analysis_bench.py [--ticks 300] [--rates 0] [--ops 0] [--only-ops] [--seed 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.analysis_scenarios import OpsRates, evaluate_many, evaluate_ops, make_scenario, ops_scenario

from surgewatch.analysis.analyzer import Analyzer, CampaignSpec, default_detector
from surgewatch.model import rfc3339

TICK = 2.0
METRICS = ("cpu.percent", "mem.percent", "load.1")


def fleet(campaigns: int, hosts: int, ticks: int, seed: int = 0) -> tuple[list[str], np.ndarray,
                                                                          list[CampaignSpec]]:
    """Traffic for each campaign and three load metrics per host; each host serves one or two campaigns."""
    rng = np.random.default_rng(seed)
    t = np.arange(ticks)
    names, rows, specs = [], [], []
    traffic = []
    for c in range(campaigns):
        base = rng.uniform(50, 300)
        launch = rng.integers(ticks // 3, 2 * ticks // 3)
        x = base + 3 * base * (1 - np.exp(-np.maximum(t - launch, 0) / 30.0)) * (t >= launch)
        x = x + rng.normal(0, np.sqrt(x))
        traffic.append(x)
        names.append(f"campaign:c{c}/visitors")
        rows.append(x)
    served: dict[int, list[str]] = {c: [] for c in range(campaigns)}
    for h in range(hosts):
        cs = [h % campaigns] + ([(h + 1) % campaigns] if campaigns > 1 and h % 3 == 0 else [])
        for c in cs:
            served[c].append(f"h{h}")
        for k, m in enumerate(METRICS):
            y = 5.0 + sum(0.05 * (k + 1) * np.roll(traffic[c], 5 + c) for c in cs) + rng.normal(0, 1, ticks)
            names.append(f"host:h{h}/{m}")
            rows.append(y)
    for c in range(campaigns):
        specs.append(CampaignSpec(f"c{c}", f"campaign:c{c}/visitors", f"campaign:c{c}/visitors",
                                  tuple(served[c])))
    return names, np.vstack(rows), specs


def bench_ticks(campaigns: int, hosts: int, measure: int) -> tuple[int, int, float, float, float, float]:
    """(series, pairs, mean ms/tick, p95 ms/tick, max ms/tick, detector ms/tick) over `measure` ticks."""
    warm = 1000
    names, values, specs = fleet(campaigns, hosts, warm + measure)
    an = Analyzer(default_detector(TICK), specs, TICK)
    index = {n: i for i, n in enumerate(names)}
    ts = 1_800_000_000.0 + TICK * np.arange(values.shape[1])
    times = []
    for t in range(values.shape[1]):
        lo = max(0, t + 1 - an.fit_ticks)
        t0 = time.perf_counter()
        an.step(float(ts[t]), names, index, values[:, t], ts[lo: t + 1], values[:, lo: t + 1])
        if t >= warm:
            times.append(time.perf_counter() - t0)
    det = default_detector(TICK)
    det_times = []
    for t in range(min(measure, 200)):
        t0 = time.perf_counter()
        det.update(values[:, t])
        det_times.append(time.perf_counter() - t0)
    pairs = sum(len(s.hosts) for s in specs) * len(METRICS)
    ms = [1000 * x for x in times]
    return (len(names), pairs, statistics.mean(ms), float(np.percentile(ms, 95)), max(ms),
            1000 * statistics.mean(det_times))


def bench_analyze(hosts: int, ticks: int) -> tuple[int, float, float]:
    """(points, seconds, points/s) of `surgewatch analyze` on a CSV written from a scenario."""
    from surgewatch.frontends.analyze import analyze_file

    sc = make_scenario(1, ticks=ticks, hosts=hosts)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.csv"
        with path.open("w") as f:
            f.write("timestamp," + ",".join(sc.names) + "\n")
            for t in range(sc.values.shape[1]):
                cells = ("" if np.isnan(v) else f"{v:.3f}" for v in sc.values[:, t])
                f.write(rfc3339(sc.ts[t]) + "," + ",".join(cells) + "\n")
        t0 = time.perf_counter()
        report = analyze_file(str(path))
        secs = time.perf_counter() - t0
    return report.points, secs, report.points / secs


FAMILIES: dict[str, dict[str, object]] = {
    "base (lag 3-40, 2 s tick)": {},
    "long lags (40-120 ticks)": {"lag_range": (40, 120)},
    "noisy load (sd 4)": {"noise": 4.0},
    "small gain (5-12 units)": {"gain_range": (5.0, 12.0)},
    "diurnal baseline ±30%": {"diurnal": 0.3},
    "two campaigns, one host": {"campaigns": 2},
    "level shifts + spikes": {"spikes": 1, "shifts": 2},
    "10 s tick, lag 1-12": {"tick": 10.0, "lag_range": (1, 12)},
    "20% missing samples": {"missing": 0.2},
}


# (label, kind, keyword arguments of ops_scenario): every kind at a 10 s tick, then ticks, lags and noise
OPS: list[tuple[str, str, dict[str, float]]] = [
    ("idle host, 10 s tick", "idle", {}),
    ("idle host, 1 s tick", "idle", {"tick": 1.0, "hours": 2.0}),
    ("cron 15m + hourly backup", "cron", {"hours": 12.0}),
    ("overlapping campaigns", "campaigns", {}),
    ("fleet of 8, one degrades", "fleet", {}),
    ("slow memory leak", "leak", {}),
    ("outage (traffic holds)", "outage", {}),
    ("bot traffic (load flat)", "bots", {}),
    ("spike at campaign peak", "peak-spike", {}),
    ("peak spike, lag 0 s", "peak-spike", {"lag_seconds": 0.0}),
    ("peak spike, lag 5 min", "peak-spike", {"lag_seconds": 300.0}),
    ("peak spike, 1 s tick", "peak-spike", {"tick": 1.0, "hours": 2.0, "lag_seconds": 20.0}),
    ("peak spike, 60 s tick", "peak-spike", {"tick": 60.0, "hours": 24.0, "lag_seconds": 120.0}),
    ("outage, 60 s tick", "outage", {"tick": 60.0, "hours": 24.0, "lag_seconds": 120.0}),
    ("noisy host (4x jitter)", "peak-spike", {"noise": 4.0}),
    ("quiet host (0.2x jitter)", "peak-spike", {"noise": 0.2}),
]


def ops_table(seeds: int, first: int = 100) -> None:
    """Print the ops suite: one row per situation, summed over `seeds` seeds from `first` on."""
    print(f"Ops scenarios, seeds {first}-{first + seeds - 1} (default detector and floors; alerts as the default "
          "unexplained-load rule: score >= 0.9, cause unexplained, above the floor, held 10 s)")
    print(f"{'situation':<28}{'incidents':>10}{'found':>7}{'unexpl.':>9}{'harmless unexpl.':>18}"
          f"{'per host-day':>14}{'lag err s':>11}{'s':>6}")
    total = OpsRates()
    for label, kind, kw in OPS:
        t0 = time.perf_counter()
        r = OpsRates()
        for seed in range(seeds):
            r.add(evaluate_ops(ops_scenario(kind, seed=first + seed, **kw)))  # type: ignore[arg-type]
        total.add(r)
        lag = f"{np.mean(r.lag_errors):.0f}" if r.lag_errors else "-"
        print(f"{label:<28}{r.incidents:>10}{r.found:>7}{r.unexplained:>9}{r.false_events:>18}"
              f"{r.false_per_host_day:>14.2f}{lag:>11}{time.perf_counter() - t0:>6.0f}", flush=True)
    lag = f"{np.mean(total.lag_errors):.0f}" if total.lag_errors else "-"
    print(f"{'all':<28}{total.incidents:>10}{total.found:>7}{total.unexplained:>9}{total.false_events:>18}"
          f"{total.false_per_host_day:>14.2f}{lag:>11}")
    print(f"incidents called unexplained: {100 * total.unexplained / max(total.incidents, 1):.1f}% "
          f"(goal >= 95%); harmless events called unexplained: {total.false_per_host_day:.2f} per host-day "
          f"over {total.host_days:.1f} host-days (goal <= 1)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=300, help="ticks measured per size (default 300)")
    ap.add_argument("--rates", type=int, default=0, metavar="N", help="also score N scenarios per family")
    ap.add_argument("--sizes", default="1x1,5x20,10x100,20x250", help="campaigns x hosts to time")
    ap.add_argument("--ops", type=int, default=0, metavar="N", help="also run the ops suite with N seeds")
    ap.add_argument("--only-ops", action="store_true", help="only the ops suite (with --ops N, default 3)")
    ap.add_argument("--seed", type=int, default=100, help="first seed of the ops suite (default 100)")
    args = ap.parse_args()
    if args.only_ops:
        ops_table(args.ops or 3, args.seed)
        return

    print("Per-tick analysis cost (3 metrics per host, every 3rd host serves two campaigns; after warm-up)")
    print(f"{'campaigns x hosts':>18} {'series':>7} {'pairs':>6} {'mean ms':>8} {'p95 ms':>8} {'max ms':>8} "
          f"{'detector ms':>12}")
    for size in args.sizes.split(","):
        c, h = (int(v) for v in size.split("x"))
        series, pairs, mean, p95, mx, det = bench_ticks(c, h, args.ticks)
        print(f"{size:>18} {series:>7} {pairs:>6} {mean:8.2f} {p95:8.2f} {mx:8.2f} {det:12.2f}", flush=True)
    print()
    print("surgewatch analyze on a CSV (parse + grid + analysis, 2 s tick)")
    print(f"{'hosts':>6} {'ticks':>6} {'points':>9} {'seconds':>8} {'points/s':>10}")
    for hosts, ticks in ((1, 3600), (10, 3600)):
        pts, secs, rate = bench_analyze(hosts, ticks)
        print(f"{hosts:>6} {ticks:>6} {pts:>9,} {secs:8.2f} {rate:10,.0f}", flush=True)
    if args.rates:
        print()
        print(f"Classification over {args.rates} random scenarios per family (1800 ticks each)")
        print(f"{'family':>28} {'injected':>8} {'detected':>8} {'unexpl.':>8} {'explained':>9} "
              f"{'false runs':>10} {'lag±1':>6} {'gain±10%':>8}")
        for label, kw in FAMILIES.items():
            opts = {"ticks": 1800, **kw}
            r = evaluate_many(range(1000, 1000 + args.rates), **opts)  # type: ignore[arg-type]
            print(f"{label:>28} {r.injected:>8} {r.detection_rate:8.2f} {r.unexplained_rate:8.2f} "
                  f"{r.explained_rate:9.3f} {r.false_unexplained_runs:>10} {r.lag_within_one:6.2f} "
                  f"{r.gain_within_10pct:8.2f}", flush=True)
    if args.ops:
        print()
        ops_table(args.ops, args.seed)


if __name__ == "__main__":
    main()
