"""A digest of everything the analyzer says over fixed scenarios: equal digests before and after a change mean
identical analysis results (scores, expected values, sizes, floors, causes, explanations, residuals, campaign
states with their load models and forecasts). For refactors that must not change behaviour.

    .venv/bin/python benchmarks/analysis_digest.py            # one line per scenario, then the total
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python benchmarks/analysis_digest.py   # the other side
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.analysis_scenarios import make_scenario, ops_scenario

from surgewatch.analysis.analyzer import AnalysisResult, Analyzer, default_detector, replay

LEVELS = (50.0, 90.0)


def _feed(h: hashlib._Hash, res: AnalysisResult) -> None:
    for arr in (res.score, res.expected, res.size, res.floor, res.detector.z):
        h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    h.update(repr(sorted((r, c.value, who) for r, (c, who) in res.cause.items())).encode())
    h.update(repr(sorted(res.explanation.items())).encode())
    h.update(repr(sorted(res.residual_z.items())).encode())
    h.update(repr(res.campaigns).encode())
    if res.forecasts is not None:
        rows = np.array(sorted(res.forecasts.pos), dtype=np.intp)
        for level in LEVELS:
            h.update(np.ascontiguousarray(res.seconds_to_level(rows, level)).tobytes())


def digest(tick: float, ts: np.ndarray, names: list[str], values: np.ndarray, specs: list,  # type: ignore[type-arg]
           details_every: int) -> str:
    h = hashlib.sha256()
    analyzer = Analyzer(default_detector(tick), specs, tick)
    for res in replay(analyzer, ts, names, values, details_every=details_every):
        _feed(h, res)
    return h.hexdigest()[:16]


def main() -> None:
    total = hashlib.sha256()
    cases: list[tuple[str, object]] = [
        ("scenario 2 campaigns x 3 hosts", make_scenario(7, ticks=1500, campaigns=2, hosts=3, spikes=2, shifts=1)),
        ("scenario 10 s tick", make_scenario(8, tick=10.0, ticks=1200, lag_range=(1, 12))),
    ]
    for kind in ("cron", "campaigns", "fleet", "leak", "outage", "bots", "peak-spike"):
        cases.append((f"ops {kind}", ops_scenario(kind, seed=100, hours=4.0 if kind != "cron" else 6.0)))
    for label, sc in cases:
        t0 = time.perf_counter()
        d = digest(sc.tick, sc.ts, sc.names, sc.values, sc.specs, details_every=3)  # type: ignore[attr-defined]
        total.update(d.encode())
        print(f"{label:<34} {d}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    print(f"{'all':<34} {total.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
