"""Per-tick analysis time of this checkout beside another one, in one process: both analyzers step the same
fleet (analysis_bench.py's) tick by tick, alternately, so that a loaded machine slows both alike; their scores
and explanations are checked equal on every tick. Prints each side's per-tick median and mean.

    .venv/bin/python benchmarks/analysis_ab.py /path/to/other/checkout [--sizes 1x1,5x20,10x100] [--ticks 600]

Each package is copied to a temporary directory under another name (the analysis modules import each other
relatively, so the two copies do not mix).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis_bench import TICK, fleet

HERE = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("other", help="another checkout (its src/surgewatch is compared with this one's)")
    ap.add_argument("--sizes", default="1x1,5x20,10x100", help="campaigns x hosts")
    ap.add_argument("--ticks", type=int, default=600, help="measured ticks per size, after 1000 warm-up ticks")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        shutil.copytree(Path(args.other) / "src" / "surgewatch", tmp / "sw_other")
        shutil.copytree(HERE / "src" / "surgewatch", tmp / "sw_this")
        sys.path.insert(0, str(tmp))
        mods = {side: importlib.import_module(f"{side}.analysis.analyzer") for side in ("sw_other", "sw_this")}
        print(f"{'size':>7}  {'other median':>12} {'this median':>12}  {'other mean':>10} {'this mean':>10}  ms/tick")
        for size in args.sizes.split(","):
            c, h = (int(v) for v in size.split("x"))
            warm = 1000
            names, values, specs = fleet(c, h, warm + args.ticks)
            ans = {side: m.Analyzer(m.default_detector(TICK),
                                    [m.CampaignSpec(s.name, s.series, s.traffic_series, s.hosts) for s in specs], TICK)
                   for side, m in mods.items()}
            index = {n: i for i, n in enumerate(names)}
            ts = 1_800_000_000.0 + TICK * np.arange(values.shape[1])
            times: dict[str, list[float]] = {side: [] for side in ans}
            order = list(ans)
            for t in range(values.shape[1]):
                lo = max(0, t + 1 - ans["sw_this"].fit_ticks)
                res = {}
                for side in order if t % 2 == 0 else order[::-1]:
                    t0 = time.perf_counter()
                    res[side] = ans[side].step(float(ts[t]), names, index, values[:, t], ts[lo: t + 1],
                                               values[:, lo: t + 1])
                    if t >= warm:
                        times[side].append(1000 * (time.perf_counter() - t0))
                a, b = res["sw_other"], res["sw_this"]
                if not (np.array_equal(a.score, b.score, equal_nan=True) and a.explanation == b.explanation):
                    print(f"{size}: the two analyses differ at tick {t}")
            med = {s: statistics.median(v) for s, v in times.items()}
            mean = {s: statistics.mean(v) for s, v in times.items()}
            print(f"{size:>7}  {med['sw_other']:12.3f} {med['sw_this']:12.3f}  {mean['sw_other']:10.3f} "
                  f"{mean['sw_this']:10.3f}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
