"""NAB benchmark: scores next to the reference detectors, detector speed, full-eval time.

Usage: python benchmarks/nab_bench.py [DATA_DIR LABELS_JSON] [--reference DIR] [--detectors a,b]
(default: ../shared/nab/data and its labels/combined_windows.json, reference results from ../results).
Prints, per profile, the NAB score per category and overall of our detectors and of every reference detector
found in the results directory (all scored by our scorer, thresholds optimised on the given files), the rate
at which each fires on healthy rows (outside every window) at its standard threshold, held-out scores (the
standard threshold chosen on two categories, the score on the other two, for every split), then points per
second on one series, milliseconds per tick for 10,000 series at once, and the full `eval` time.
With --ablate, also `surge-context` with each of its parts switched off (what each part is worth).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from surgewatch.analysis.nab import PROFILES, ScoredSet  # noqa: E402
from surgewatch.analysis.streaming import DETECTORS, SurgeContextDetector, make_streaming_detector  # noqa: E402
from surgewatch.evaluate import (  # noqa: E402
    DEFAULT_DETECTOR,
    EvalError,
    load_dataset,
    read_result_scores,
    run_detector,
    scored_set,
    season_samples,
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


def held_out(name: str, series: list, ss: ScoredSet, scores: list[np.ndarray]) -> str:
    """Standard profile: threshold optimised on two categories, score on the other two, for every split."""
    cats = sorted({s.category for s in series})
    profile = PROFILES["standard"]
    cells = []
    for train in itertools.combinations(cats, len(cats) // 2):
        parts = []
        for group in (train, [c for c in cats if c not in train]):
            idx = [i for i, s in enumerate(series) if s.category in group]
            parts.append((ScoredSet([ss.files[i] for i in idx]), [scores[i] for i in idx]))
        (tr, tr_scores), (te, te_scores) = parts
        cells.append(te.tally(te_scores, profile, tr.optimise(tr_scores, profile).threshold).normalised)
    return (f"{name:<18}held-out standard: mean {np.mean(cells):6.2f}, min {np.min(cells):6.2f} over "
            f"{len(cells)} splits ({' '.join(f'{c:.1f}' for c in cells)})")


# Candidate settings of the default detector for leave-one-category-out: a few principled knobs (how much the
# contextual surprise and new extremes count, whether the CUSUM is on), not a fine grid.
LOCO_GRID: list[tuple[str, dict[str, Any]]] = [
    (f"w{w:g} x{x:g} c{c:g}", {**DETECTORS["surge-context"], "weight": w, "extreme": x, "cusum": c})
    for w in (0.3, 0.45, 0.6) for x in (0.0, 0.5) for c in (0.0, 2.5)
]


def _split(series: list, ss: ScoredSet, scores: list[np.ndarray], cats: list[str]
           ) -> tuple[ScoredSet, list[np.ndarray]]:
    idx = [i for i, s in enumerate(series) if s.category in cats]
    return ScoredSet([ss.files[i] for i in idx]), [scores[i] for i in idx]


def loco_cells(series: list, ss: ScoredSet, variants: list[list[np.ndarray]]) -> list[tuple[float, int]]:
    """Per category: (score, chosen variant) with the variant and threshold chosen on the other categories."""
    cats = sorted({s.category for s in series})
    profile = PROFILES["standard"]
    out = []
    for held in cats:
        train = [c for c in cats if c != held]
        best = max(range(len(variants)), key=lambda v: _split(series, ss, variants[v], train)[0]
                   .optimise(_split(series, ss, variants[v], train)[1], profile).raw)
        tr, tr_scores = _split(series, ss, variants[best], train)
        te, te_scores = _split(series, ss, variants[best], [held])
        out.append((te.tally(te_scores, profile, tr.optimise(tr_scores, profile).threshold).normalised, best))
    return out


def loco_table(series: list, ss: ScoredSet, ours: dict[str, list[list[np.ndarray]]],
               refs: dict[str, list[np.ndarray]]) -> list[str]:
    """The leave-one-category-out table (standard profile): each category scored with the parameters and
    threshold chosen on the other three, for every rotation; reference detectors choose only a threshold."""
    cats = sorted({s.category for s in series})
    lines = ["Leave-one-category-out, standard profile (parameters and threshold chosen on the other three "
             "categories)", f"{'detector':<32}{''.join(f'{c[:12]:>13}' for c in cats)}{'mean':>8}"]
    for name, variants in [*ours.items(), *((k, [v]) for k, v in refs.items())]:
        cells = loco_cells(series, ss, variants)
        chosen = "" if len(variants) == 1 else "  chosen: " + ", ".join(LOCO_GRID[v][0] for _, v in cells)
        lines.append(f"{name:<32}{''.join(f'{c:>13.2f}' for c, _ in cells)}{np.mean([c for c, _ in cells]):>8.2f}"
                     + chosen)
    return lines


def run_surge_context(series: list, **kwargs: Any) -> list[np.ndarray]:
    """Scores of SurgeContextDetector(**kwargs) on every file at once (one update per row, all files)."""
    rows = max(len(s.values) for s in series)
    mat = np.full((rows, len(series)), np.nan)
    for j, s in enumerate(series):
        mat[: len(s.values), j] = s.values
    det = SurgeContextDetector(np.array([season_samples(s.ts) for s in series], dtype=np.int64), **kwargs)
    out = np.array([det.update(mat[t]).score for t in range(rows)])
    return [np.clip(np.nan_to_num(out[: len(s.values), j]), 0.0, 1.0) for j, s in enumerate(series)]


def ablation(series: list, ss: ScoredSet) -> list[str]:
    """Leave-one-category-out mean (shipped parameters, threshold from the other three categories), standard
    score and held-out mean of `surge-context` with one part switched off at a time."""
    full: dict[str, Any] = dict(DETECTORS["surge-context"])
    variants = [("all parts", full), ("no new extremes", {**full, "extreme": 0.0}),
                ("no spike weights", {**full, "surge_weights": None}), ("no CUSUM", {**full, "cusum": 0.0}),
                ("no context", {**full, "weight": 0.0}),
                ("none of the three", {**full, "extreme": 0.0, "surge_weights": None, "cusum": 0.0}),
                ("1,024 table slots", {**full, "table_bits": 10})]
    lines = ["surge-context ablation (standard profile)"]
    for label, kwargs in variants:
        scores = run_surge_context(series, **kwargs)
        best = ss.optimise(scores, PROFILES["standard"])
        loco = np.mean([c for c, _ in loco_cells(series, ss, [scores])])
        lines.append(f"  {label:<20}LOCO {loco:6.2f}  in-sample {best.normalised:6.2f}  "
                     f"windows {best.detected}/{best.windows}  "
                     f"FP {best.false_positives:>4}  {held_out('', series, ss, scores).split(':', 1)[1].strip()}")
    return lines


def speed_one_series(name: str = "surge", n: int = 20_000) -> float:
    """Points per second through one series, one update per point."""
    x = np.random.default_rng(0).normal(size=n)
    det = make_streaming_detector(name, 288)
    t0 = time.perf_counter()
    for v in x:
        det.update(np.array([v]))
    return n / (time.perf_counter() - t0)


def ms_per_tick(name: str = "surge", series: int = 10_000, ticks: int = 200, season: int = 288,
                ) -> tuple[float, float]:
    """Median and minimum milliseconds per update of `series` series at once (after warm-up)."""
    rng = np.random.default_rng(1)
    det = make_streaming_detector(name, season)
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
    p.add_argument("--detectors", default="surge,surge-context,surge-level,robust-z")
    p.add_argument("--ablate", action="store_true", help="also score surge-context without each of its parts")
    p.add_argument("--no-grid", action="store_true",
                   help="leave-one-category-out with the shipped parameters only (no per-rotation choice)")
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
    held: list[str] = []
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
        held.append(held_out(name, series, ss, scores))
    if ref_dir.is_dir():
        for d in sorted(x.name for x in ref_dir.iterdir() if x.is_dir()):
            try:
                scores = read_result_scores(ref_dir, d, series)
            except EvalError as e:
                print(f"{d}: skipped ({e})")
                continue
            for line in score_rows(d, series, ss, scores):
                print(line)
            held.append(held_out(d, series, ss, scores))
    print("FP % = false-positive rows / rows outside every window (after probation), at that threshold")
    print()
    print("\n".join(held))
    print()
    refs = {}
    if ref_dir.is_dir():
        for d in ("ARTime", "numenta"):
            try:
                refs[d] = read_result_scores(ref_dir, d, series)
            except EvalError:
                continue
    shipped = run_detector(DEFAULT_DETECTOR, series)
    ours = {f"{DEFAULT_DETECTOR} (shipped parameters)": [shipped]}
    if not args.no_grid:
        t0 = time.perf_counter()
        ours[f"{DEFAULT_DETECTOR} ({len(LOCO_GRID)} candidate settings)"] = [
            run_surge_context(series, **kw) for _, kw in LOCO_GRID]
        print(f"(grid of {len(LOCO_GRID)} settings scored in {time.perf_counter() - t0:.0f} s)")
    print("\n".join(loco_table(series, ss, ours, refs)))
    print()
    if args.ablate:
        print("\n".join(ablation(series, ss)))
        print()
    for name in ("surge", "surge-context"):
        print(f"{name}")
        print(f"  one series:      {speed_one_series(name):>12,.0f} points/s")
        med, low = ms_per_tick(name)
        print(f"  10,000 series:   {med:>12.2f} ms per tick (median of 200, min {low:.2f}; 1% missing samples)")
        med, low = ms_per_tick(name, 100_000, 30)
        print(f"  100,000 series:  {med:>12.2f} ms per tick (median of 30, min {low:.2f})")
        with tempfile.TemporaryDirectory() as tmp:
            ns = argparse.Namespace(data_dir=str(data), labels=str(labels), detector=name, results=tmp,
                                    profile=None)
            t0 = time.perf_counter()
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):
                rc = eval_run(ns)
            print(f"  full eval:       {time.perf_counter() - t0:>12.1f} s  (surgewatch eval, all three "
                  f"profiles, results written; exit {rc})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
