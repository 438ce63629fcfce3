"""Alert evaluation cost per tick: 10,000 series and 100 rules (goal: under 5 ms per tick).

Scenarios: `quiet` (nothing near a threshold), `anomalies` (1 % of rows anomalous, causes and forecasts
for 1,000 host series), `firing` (5 % of rows firing steadily), `flapping` (500 rows crossing and clearing
every tick: notifications and grouping on the hot path). Also the one-off glob match of a new store and
the incremental match when one series appears. Ticks are 1 s apart; forecast rules reuse a forecast for
5 s (rules.FORECAST_REFRESH), so every fifth tick of `anomalies`/`firing` pays for the analysis' forecast
(the p95/max columns). Prints a table; run:

    PYTHONPATH=src .venv/bin/python benchmarks/rules_bench.py [--ticks 300]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from surgewatch.alerting.rules import RuleEngine
from surgewatch.analysis.analyzer import AnalysisResult
from surgewatch.analysis.detectors import DetectorOutput
from surgewatch.config import RuleConfig
from surgewatch.model import Cause

HOSTS, METRICS = 1000, 10
# CPU time of this thread: on a shared 2-core machine wall time mostly measures the neighbours.
CLOCK = time.thread_time
N = HOSTS * METRICS


def names() -> list[str]:
    return [f"host:h{h:04d}/m{m}" for h in range(HOSTS) for m in range(METRICS)]


def rules() -> list[RuleConfig]:
    """70 threshold rules, 20 anomaly rules (half unexplained), 10 forecast rules over various globs."""
    out = []
    for i in range(100):
        glob = f"host:*/m{i % METRICS}" if i % 2 == 0 else f"host:h0{i % 10}*/m{i % METRICS}"
        if i < 70:
            out.append(RuleConfig(name=f"t{i}", series=glob, above=90.0, clear=80.0, for_=10.0))
        elif i < 90:
            out.append(RuleConfig(name=f"a{i}", series=glob, anomaly="unexplained" if i % 2 else "any",
                                  for_=5.0))
        else:
            out.append(RuleConfig(name=f"f{i}", series=glob, forecast_above=85.0, within=900.0))
    return out


def analysis(rng: np.random.Generator, hot: float) -> AnalysisResult:
    score = rng.uniform(0, 0.3, N)
    rows = rng.choice(N, int(N * hot), replace=False)
    score[rows] = rng.uniform(0.9, 1.0, rows.shape[0])
    cause = {int(r): (Cause.UNEXPLAINED if i % 2 else Cause.CAMPAIGN, "c") for i, r in enumerate(rows)}
    nan = np.full(N, np.nan)
    det = DetectorOutput(score=score, z=nan, expected=nan, low=nan, high=nan)
    forecasts: Any
    try:
        from surgewatch.analysis.analyzer import ForecastTable  # type: ignore[attr-defined]
    except ImportError:  # the per-row form of the forecast accessor
        from surgewatch.analysis.analyzer import HostForecast  # type: ignore[attr-defined]

        forecasts = {h * METRICS: HostForecast(10.0, np.array([0.05]), np.array([1000.0 + h]), np.array([1e-4]),
                                               60.0, True) for h in range(HOSTS)}
    else:
        forecasts = ForecastTable(pos={h * METRICS: h for h in range(HOSTS)}, intercept=np.full(HOSTS, 10.0),
                                  coefs=np.full((HOSTS, 1), 0.05), x_now=1000.0 + np.arange(HOSTS)[:, None],
                                  growth=np.full((HOSTS, 1), 1e-4), value_now=np.full(HOSTS, 60.0),
                                  usable=np.ones(HOSTS, dtype=bool))
    return AnalysisResult(0.0, det, score, nan, cause, {r: "why" for r in cause}, (), forecasts)


def run(engine: RuleEngine, values_at: Callable[[int], np.ndarray], result: AnalysisResult | None,
        ticks: int) -> tuple[list[float], int]:
    ns = names()
    times, sent = [], 0
    for t in range(ticks):
        v = values_at(t)
        t0 = CLOCK()
        sent += len(engine.evaluate(1000.0 + t, ns, 1, v, result))
        times.append((CLOCK() - t0) * 1000)
    return times, sent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ticks", type=int, default=300)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    base = rng.uniform(10, 60, N)
    firing_rows = rng.choice(N, N // 20, replace=False)
    hot = base.copy()
    hot[firing_rows] = 95.0
    flap_rows = rng.choice(N, 50, replace=False)

    def flapping(t: int) -> np.ndarray:
        v = base.copy()
        v[flap_rows] = 95.0 if t % 2 == 0 else 10.0
        return v

    scenarios: list[tuple[str, Callable[[int], np.ndarray], AnalysisResult | None, list[RuleConfig]]] = [
        ("quiet", lambda _t: base, None, rules()),
        ("anomalies", lambda _t: base, analysis(rng, 0.01), rules()),
        ("firing 5%", lambda _t: hot, analysis(rng, 0.01), rules()),
        ("flapping 50 (for=0)", flapping, None,
         [RuleConfig(name=f"t{i}", series=f"host:*/m{i % METRICS}", above=90.0) for i in range(100)]),
    ]
    print(f"rules evaluation, {N} series x 100 rules, {args.ticks} ticks per scenario (goal < 5 ms/tick; "
          "thread CPU time)")
    print(f"{'scenario':<22}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}{'active':>8}{'notified':>10}")
    for label, values_at, result, rs in scenarios:
        engine = RuleEngine(rs)
        run(engine, values_at, result, 30)  # first match of the globs and the first wave of alerts
        times, sent = run(engine, values_at, result, args.ticks)
        times.sort()
        print(f"{label:<22}{statistics.median(times):>11.3f}{times[int(0.95 * len(times))]:>9.3f}"
              f"{times[-1]:>9.3f}{len(engine.active):>8}{sent:>10}")
    ns = names()
    engine = RuleEngine(rules())
    t0 = CLOCK()
    engine.evaluate(0.0, ns, 1, base, None)
    full = (CLOCK() - t0) * 1000
    grown = [*ns, "host:h0001/new"]
    t0 = CLOCK()
    engine.evaluate(1.0, grown, 2, np.append(base, 1.0), None)
    incremental = (CLOCK() - t0) * 1000
    print(f"{'first tick (100 globs x 10k names)':<40}{full:>9.1f} ms")
    print(f"{'tick after one new series':<40}{incremental:>9.3f} ms")


if __name__ == "__main__":
    main()
