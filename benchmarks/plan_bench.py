"""How far `surgewatch plan` is from what happened: predicted vs replayed peak per host metric.

For each shipped scenario (and the demo), the plan is made for the campaign's actual peak visitors (the largest
value of its campaign series), with the models learned from (a) the same recording (in-sample) and (b) another
recording of the same hosts (out of sample: scales-fine ↔ incident share web-1/web-2). The replayed peak is the
largest value of the host metric from the campaign's start on, incidents included: the demo's and incident's
injected CPU spikes (load traffic does not explain) show as the large misses,
as they should. Usage: python benchmarks/plan_bench.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from surgewatch import scenarios  # noqa: E402
from surgewatch.analysis.plan import ModelFact, demand_from_visitors, make_plan  # noqa: E402
from surgewatch.frontends.analyze import analyze_file, read_input  # noqa: E402

SCENARIOS = ["demo", "scales-fine", "saturates", "incident"]
CROSS = {"scales-fine": "incident", "incident": "scales-fine"}


def facts_of(name: str) -> list[ModelFact]:
    rep = analyze_file(str(scenarios.path(name)))
    return [ModelFact(p.campaign, p.host, p.metric, p.lag_seconds, p.slope, p.intercept, p.r2, p.usable)
            for p in rep.pairs]


def observed(name: str) -> tuple[float, dict[tuple[str, str], float]]:
    _ts, names, cols = read_input(str(scenarios.path(name)))
    data = {n: np.asarray(c, dtype=float) for n, c in zip(names, cols, strict=True)}
    camp = next(v for n, v in data.items() if n.startswith("campaign:"))
    start = int(np.argmax(camp > np.nanmax(camp) * 0.1))
    peaks = {}
    for n, v in data.items():
        if n.startswith("host:") and n.endswith(("cpu.percent", "mem.percent")):
            host, metric = n.removeprefix("host:").split("/", 1)
            peaks[(host, metric)] = float(np.nanmax(v[start:]))
    return float(np.nanmax(camp)), peaks


def main() -> None:
    print(f"{'scenario':<12} {'models from':<12} {'host':<9} {'metric':<12} {'peak visitors':>13} "
          f"{'planned':>8} {'replayed':>8} {'error':>7}")
    errors: dict[str, list[float]] = {"in-sample": [], "out-of-sample": []}
    for name in SCENARIOS:
        visitors, peaks = observed(name)
        for source in [name, *([CROSS[name]] if name in CROSS else [])]:
            plan = make_plan(facts_of(source), demand_from_visitors(visitors))
            for h in plan.hosts:
                actual = peaks.get((h.host, h.metric))
                if actual is None:
                    continue
                planned = min(h.peak, 100.0) if h.metric.endswith("percent") else h.peak  # a host tops at 100 %
                err = planned - actual
                errors["in-sample" if source == name else "out-of-sample"].append(abs(err))
                print(f"{name:<12} {source:<12} {h.host:<9} {h.metric:<12} {visitors:13.0f} {planned:8.1f} "
                      f"{actual:8.1f} {err:+7.1f}")
    for kind, errs in errors.items():
        if errs:
            a = np.array(errs)
            print(f"{kind}: |error| min {a.min():.1f}  median {np.median(a):.1f}  max {a.max():.1f} points "
                  f"over {len(a)} host metrics")


if __name__ == "__main__":
    main()
