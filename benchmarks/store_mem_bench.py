"""The store's memory at fleet size, in process: RSS and peak RSS (VmHWM) of a SeriesStore filled with 10,020
series (1,000 hosts × 10 metrics and 20 traffic series, a 15 s tick, 6 h of history) as answers land at once,
over several ticks, or with a few late series after the fleet (a campaign that starts reporting later).

Each case runs in a fresh interpreter (so that peaks are its own), for this checkout and, with `--against DIR`,
for another one side by side (e.g. a worktree of main). Cheap (seconds): for iterating on the store; the
daemon as a user runs it is measured by fleet_bench.py.

Run: .venv/bin/python benchmarks/store_mem_bench.py [--against DIR] [--ticks 300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, sys
import numpy as np
from surgewatch.store import SeriesStore

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return float("nan")

case, ticks = sys.argv[1], int(sys.argv[2])
names = [f"host:web-{i:04d}/m{j}" for i in range(1000) for j in range(10)]
traffic = [f"traffic:g{i}/visitors" for i in range(10)] + [f"campaign:c{i}/visitors" for i in range(10)]
rng = np.random.default_rng(1)
store = SeriesStore(tick=15.0, history=6 * 3600, max_series=20_000)
rss0, hwm0 = status("VmRSS"), status("VmHWM")
for t in range(ticks):
    if case == "at once":
        arrived = traffic + names
    elif case == "over ticks":  # the fleet's hosts reported 1,000 series a tick (sources answering in turn)
        arrived = traffic + names[: min(len(names), 1000 * (t + 1))]
    else:  # "late series": traffic first, the fleet, then the campaigns' series a few ticks later
        arrived = traffic[:10] + (names if t >= 1 else []) + (traffic[10:] if t >= 5 else [])
    rows = store.rows(arrived)
    store.append(15.0 * t, rows, rng.normal(50.0, 5.0, rows.shape[0]))
print(json.dumps({"rss": status("VmRSS") - rss0, "peak": status("VmHWM") - hwm0, "rows": store.fine.rows}))
"""

CASES = ("at once", "over ticks", "late series")


def run(checkout: Path, case: str, ticks: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(checkout / "src"))
    out = subprocess.run([sys.executable, "-c", CHILD, case, str(ticks)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return "–".join(f"{v:.1f}" for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", type=Path, metavar="DIR", help="another checkout, measured side by side")
    ap.add_argument("--ticks", type=int, default=300, help="ticks appended (past the rings' first move back)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case and checkout (min–median–max)")
    args = ap.parse_args()
    checkouts = {"this": HERE.parent}
    if args.against is not None:
        if not (args.against / "src" / "surgewatch" / "store.py").is_file():
            ap.error(f"--against {args.against}: no src/surgewatch/store.py there")
        checkouts["against"] = args.against.resolve()
    print(f"store_mem_bench: 10,020 series, 15 s tick, 6 h history, {args.ticks} ticks; MiB above the "
          f"interpreter before the store, min–median–max of {args.repeat}")
    print(f"{'case':<12}  {'checkout':<32}  {'rows':>6}  {'RSS':>17}  {'peak':>17}")
    for case in CASES:
        for where in checkouts.values():
            got = [run(where, case, args.ticks) for _ in range(args.repeat)]
            print(f"{case:<12}  {str(where)[-32:]:<32}  {got[0]['rows']:>6.0f}  "
                  f"{spread([g['rss'] for g in got]):>17}  {spread([g['peak'] for g in got]):>17}")


if __name__ == "__main__":
    main()
