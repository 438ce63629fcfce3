"""NAB benchmark: scores next to the reference detectors, detector speed, full-eval time.

Usage: python benchmarks/nab_bench.py [DATA_DIR LABELS_JSON] [--reference DIR] [--detectors a,b]
(default: ../shared/nab/data and its labels/combined_windows.json, reference results from ../results).
Prints, per profile, the NAB score per category and overall of our detectors and of every reference detector
found in the results directory (all scored by our scorer, thresholds optimised on the given files), the rate
at which each fires on healthy rows (outside every window) at its standard threshold, then points per second
on one series, milliseconds per tick for 10,000 series at once, and the full `eval` time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from surgewatch.analysis.nab import PROFILES, ScoredSet  # noqa: E402
from surgewatch.analysis.streaming import make_streaming_detector  # noqa: E402
from surgewatch.evaluate import (  # noqa: E402
    EvalError,
    load_dataset,
    read_result_scores,
    run_detector,
    scored_set,
)
from surgewatch.evaluate import run as eval_run  # noqa: E402

DEFAULT_NAB = ROOT.parent / "shared" / "nab"


def score_rows(name: str, series: list, ss: ScoredSet, scores: list[np.ndarray]) -> list[str]:
    """One line per profile: category scores at the overall threshold, overall score, threshold, FP rate."""
    cats = sorted({s.category for s in series})
    lines = []
    for pname, profile in PROFILES.items():
        best = ss.optimise(scores, profile)
        cells = []
        for c in cats:
            idx = [i for i, s in enumerate(series) if s.category == c]
            sub = ScoredSet([ss.files[i] for i in idx])
            cells.append(f"{sub.tally([scores[i] for i in idx], profile, best.threshold).normalised:>10.2f}")
        healthy = sum(int((t.window < 0).sum()) for t in ss.tables)
        rate = 100.0 * best.false_positives / healthy
        lines.append(f"{name:<18}{pname:<20}{''.join(cells)}{best.normalised:>10.2f}{best.threshold:>12.5g}"
                     f"{best.detected:>5}/{best.windows:<3}{best.false_positives:>6}{rate:>8.3f}")
    return lines


def speed_one_series(n: int = 20_000) -> float:
    """Points per second through one series, one update per point."""
    x = np.random.default_rng(0).normal(size=n)
    det = make_streaming_detector("surge", 288)
    t0 = time.perf_counter()
    for v in x:
        det.update(np.array([v]))
    return n / (time.perf_counter() - t0)


def ms_per_tick(series: int = 10_000, ticks: int = 200, season: int = 288) -> tuple[float, float]:
    """Median and minimum milliseconds per update of `series` series at once (after warm-up)."""
    rng = np.random.default_rng(1)
    det = make_streaming_detector("surge", season)
    data = rng.normal(size=(ticks + 50, series))
    data[rng.random(data.shape) < 0.01] = np.nan
    for t in range(50):
        det.update(data[t])
    times = []
    for t in range(50, 50 + ticks):
        t0 = time.perf_counter()
        det.update(data[t])
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times)), 1e3 * float(np.min(times))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir", nargs="?", default=str(DEFAULT_NAB / "data"))
    p.add_argument("labels", nargs="?", default=str(DEFAULT_NAB / "labels" / "combined_windows.json"))
    p.add_argument("--reference", help="NAB results directory (default: DATA_DIR/../results)")
    p.add_argument("--detectors", default="surge,surge-level,robust-z")
    args = p.parse_args()
    data, labels = Path(args.data_dir), Path(args.labels)
    ref_dir = Path(args.reference) if args.reference else data.parent / "results"
    try:
        series, lab = load_dataset(data, labels)
        ss = scored_set(series, lab, labels)
    except EvalError as e:
        print(f"nab_bench: {e}", file=sys.stderr)
        return 2
    cats = sorted({s.category for s in series})
    print(f"NAB scores on {data} ({len(series)} files, {ss.n_windows} windows); "
          "thresholds optimised on these files")
    print(f"{'detector':<18}{'profile':<20}{''.join(f'{c[:9]:>10}' for c in cats)}{'overall':>10}"
          f"{'threshold':>12}{'windows':>9}{'FP':>6}{'FP %':>8}")
    for name in args.detectors.split(","):
        t0 = time.perf_counter()
        scores = run_detector(name, series)
        took = time.perf_counter() - t0
        for line in score_rows(name, series, ss, scores):
            print(line)
        print(f"{'':<18}(detector run {took:.1f} s)")
    if ref_dir.is_dir():
        for d in sorted(x.name for x in ref_dir.iterdir() if x.is_dir()):
            try:
                scores = read_result_scores(ref_dir, d, series)
            except EvalError as e:
                print(f"{d}: skipped ({e})")
                continue
            for line in score_rows(d, series, ss, scores):
                print(line)
    print("FP % = false-positive rows / rows outside every window (after probation), at that threshold")
    print()
    print(f"one series:      {speed_one_series():>12,.0f} points/s")
    med, low = ms_per_tick()
    print(f"10,000 series:   {med:>12.2f} ms per tick (median of 200, min {low:.2f}; 1% missing samples)")
    med, low = ms_per_tick(100_000, 30)
    print(f"100,000 series:  {med:>12.2f} ms per tick (median of 30, min {low:.2f})")
    with tempfile.TemporaryDirectory() as tmp:
        ns = argparse.Namespace(data_dir=str(data), labels=str(labels), detector="surge", results=tmp,
                                profile=None)
        t0 = time.perf_counter()
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            rc = eval_run(ns)
        print(f"full eval:       {time.perf_counter() - t0:>12.1f} s  (surgewatch eval, all three profiles, "
              f"results written; exit {rc})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
