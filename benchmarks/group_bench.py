"""Campaign × host-group models at fleet scale: what they add to one analysis tick, and whether they find the host
that leaves its group.

A synthetic fleet (tests/support/analysis_scenarios.py `fleet_scenario`): N hosts in G groups behind balancers, one
campaign's traffic per group, five modelled metrics per host, one host per group running 35 CPU points above its
peers from a random tick after the launch. Two analyzers run side by side on the same ticks: one with group models
(analysis/groupmodels.py), one without; the table gives per-tick times (min, median, max) over the measured ticks,
and the group models' own share (their `step`, timed inside the run with groups).

    .venv/bin/python benchmarks/group_bench.py [--hosts 1000] [--groups 10] [--ticks 400] [--tick 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.analysis_scenarios import fleet_scenario

from surgewatch.analysis.analyzer import MODELLED_METRICS, Analyzer, CampaignSpec, default_detector
from surgewatch.analysis.groupmodels import GroupModels


def row(label: str, xs: list[float]) -> str:
    ms = [1000 * x for x in xs]
    return f"  {label:<34} {min(ms):8.2f} {statistics.median(ms):8.2f} {max(ms):8.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--groups", type=int, default=10)
    ap.add_argument("--ticks", type=int, default=400)
    ap.add_argument("--tick", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sc = fleet_scenario(args.seed, hosts=args.hosts, groups=args.groups, tick=args.tick, ticks=args.ticks,
                        departs=args.groups, metrics=MODELLED_METRICS)
    # the analyzer's own per-host models too, as a config whose [[host]] tables carry `group` gives them
    members: dict[str, list[str]] = {}
    for h, g in sc.groups.items():
        members.setdefault(g, []).append(h)
    specs = [CampaignSpec(s.name, s.series, s.traffic_series, (*s.hosts, *members[s.hosts[0]])) for s in sc.specs]
    plain = Analyzer(default_detector(sc.tick), specs, sc.tick)
    grouped = Analyzer(default_detector(sc.tick), specs, sc.tick)
    grouped.groups = groups = GroupModels.for_analyzer(grouped)
    groups.set_groups(sc.groups)
    inner: list[float] = []
    inner_cpu: list[float] = []
    step = groups.step

    def timed_step(*a, **k):  # type: ignore[no-untyped-def]
        t0, c0 = time.perf_counter(), time.thread_time()
        out = step(*a, **k)
        inner.append(time.perf_counter() - t0)
        inner_cpu.append(time.thread_time() - c0)
        return out

    groups.step = timed_step  # type: ignore[method-assign]
    index = {n: i for i, n in enumerate(sc.names)}
    keep = plain.fit_ticks
    warm = min(args.ticks // 3, 150)
    t_plain: list[float] = []
    t_grouped: list[float] = []
    found: dict[str, int] = {}
    for t in range(args.ticks):
        lo = max(0, t + 1 - keep)
        call = (float(sc.ts[t]), sc.names, index, sc.values[:, t], sc.ts[lo: t + 1], sc.values[:, lo: t + 1])
        t0 = time.perf_counter()
        plain.step(*call)
        t1 = time.perf_counter()
        grouped.step(*call)
        t2 = time.perf_counter()
        if t >= warm:
            t_plain.append(t1 - t0)
            t_grouped.append(t2 - t1)
        for d in groups.departures.values():
            found.setdefault(d.host, t)
    inner, inner_cpu = inner[warm:], inner_cpu[warm:]

    extra = [b - a for a, b in zip(t_plain, t_grouped, strict=True)]
    rows = sum(1 for n in sc.names if n.startswith("host:"))
    print(f"{args.hosts} hosts in {args.groups} groups, {rows} host series, tick {args.tick:g}s, "
          f"{len(t_plain)} measured ticks (after {warm} warm-up ticks), load average {os.getloadavg()[0]:.1f}")
    print(f"  {'per tick (ms)':<34} {'min':>8} {'median':>8} {'max':>8}")
    print(row("analysis without group models", t_plain))
    print(row("analysis with group models", t_grouped))
    print(row("difference (paired ticks)", extra))
    print(row("group models' step alone (wall)", inner))
    print(row("group models' step alone (CPU)", inner_cpu))
    truth = sc.departs
    hits = {h: found[h] - s for h, s in truth.items() if h in found and found[h] >= s}
    false = sorted(set(found) - set(truth))
    delays = sorted(hits.values())
    print(f"departing hosts found: {len(hits)}/{len(truth)}"
          + (f", ticks after the start: min {delays[0]} median {statistics.median(delays):g} max {delays[-1]}"
             if delays else "")
          + f"; other hosts flagged: {len(false)}")


if __name__ == "__main__":
    main()
