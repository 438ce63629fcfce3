"""Detector cost per tick for many series at once (the live engine's case), min–median–max, side by side.

    .venv/bin/python benchmarks/detector_bench.py [--series 10000] [--ticks 200] [--runs 3]
        [--detectors surge-context,surge] [--against OTHER_SRC_DIR]

Each run is a fresh process that builds the detector for `--series` series (5-minute samples, so a daily
profile of 288 bins), warms it up for one day plus 50 ticks (every bin of the daily profile has been written
once, as in a process that has run for a day), then times `--ticks` updates of noise with 1 % missing samples
and a few spikes and level shifts. With `--against DIR` (the `src` directory of another checkout, e.g. from
`git archive main src | tar -x -C /tmp/base`) the runs of both alternate, and the outputs of every timed tick
(score, z, expected, band) are compared: "identical" means bit for bit; otherwise the scores of the first
run of each are compared cell by cell (largest difference, cells differing by more than 0.01, and how many
cells reach 0.5, an alerting score, in each).
Prints, per detector and checkout, milliseconds per tick over all timed ticks of all runs (min, median, max)
in wall time and in the thread's CPU time (which leaves out waiting for a core on a shared machine, not the
cache misses others cause), the range of the per-run wall medians and of the per-run CPU medians, and the
memory of the detector's state (every numpy array it holds, after the warm-up).
With --day, instead: the resident memory the default detector adds to a process after a full day of 15 s ticks
for `--series` series (every bin of the daily profile written, as in a daemon that has run for a day), per checkout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"
SEASON = 288


def state_bytes(obj: object, seen: set[int] | None = None) -> int:
    """Bytes of every numpy array reachable from `obj`'s attributes (each array once; views count nothing)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return 0 if obj.base is not None else obj.nbytes
    if isinstance(obj, (list, tuple)):
        return sum(state_bytes(v, seen) for v in obj)
    attrs = getattr(obj, "__dict__", None)
    return 0 if attrs is None else sum(state_bytes(v, seen) for v in attrs.values())


def worker(name: str, series: int, ticks: int, save: str = "") -> dict[str, object]:
    """Time one detector in this process: per-tick milliseconds, a digest of its outputs, the state's bytes;
    with `save`, the scores of every timed tick go to that .npy file."""
    from surgewatch.analysis.streaming import make_streaming_detector

    rng = np.random.default_rng(7)
    warm = SEASON + 50
    data = rng.normal(size=(warm + ticks, series))
    data += np.where(rng.random(data.shape) < 0.001, 8.0, 0.0)  # spikes
    shift = rng.integers(warm // 2, warm + ticks, size=series)
    data += np.where(np.arange(warm + ticks)[:, None] >= shift[None, :], rng.normal(0, 3, series), 0.0)
    data[rng.random(data.shape) < 0.01] = np.nan
    det = make_streaming_detector(name, SEASON)
    for t in range(warm):
        det.update(data[t])
    digest = hashlib.sha256()
    times, cpu, scores = [], [], []
    for t in range(warm, warm + ticks):
        t0, c0 = time.perf_counter(), time.thread_time()
        out = det.update(data[t])
        cpu.append(1e3 * (time.thread_time() - c0))
        times.append(1e3 * (time.perf_counter() - t0))
        for a in (out.score, out.z, out.expected, out.low, out.high):
            digest.update(np.ascontiguousarray(a).tobytes())
        if save:
            scores.append(out.score.astype(np.float32))
    if save:
        np.save(save, np.array(scores))
    return {"ms": times, "cpu": cpu, "digest": digest.hexdigest(), "bytes": state_bytes(det)}


def compare(a: np.ndarray, b: np.ndarray) -> str:
    """How two runs' scores differ: largest difference, cells apart by > 0.01, cells >= 0.5 in each."""
    both = np.isfinite(a) & np.isfinite(b)
    if not (np.isfinite(a) == np.isfinite(b)).all():
        return "DIFFERENT (missing scores differ)"
    d = np.abs(a[both] - b[both])
    return (f"differ: max {d.max():.3g}, {int((d > 0.01).sum())} of {d.size} cells > 0.01; cells >= 0.5: "
            f"{int((a[both] >= 0.5).sum())} vs {int((b[both] >= 0.5).sum())}")


def day_rss(series: int) -> float:
    """MB of resident memory the default detector adds after a day of 15 s ticks (every daily bin touched)."""
    from surgewatch.analysis.registry import make_detector

    def rss() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6

    noise = np.random.default_rng(0).normal(size=(64, series))
    before = rss()
    det = make_detector("surge-context", 15.0)
    for t in range(86400 // 15 + 10):
        det.update(noise[t % 64] + 0.01 * (t % 97))
    return rss() - before


def run_one(src: Path, name: str, series: int, ticks: int, save: str = "") -> dict[str, object]:
    """One run in a fresh process importing surgewatch from `src`."""
    cmd = [sys.executable, __file__, "--worker", str(src), "--detectors", name, "--series", str(series),
           "--ticks", str(ticks), "--save", save]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(res.stdout)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--ticks", type=int, default=200, help="timed ticks per run (default 200)")
    ap.add_argument("--runs", type=int, default=3, help="runs per detector and checkout (default 3)")
    ap.add_argument("--detectors", default="surge-context,surge")
    ap.add_argument("--against", metavar="SRC_DIR", help="another checkout's src directory, run side by side")
    ap.add_argument("--worker", metavar="SRC_DIR", help=argparse.SUPPRESS)
    ap.add_argument("--save", default="", help=argparse.SUPPRESS)
    ap.add_argument("--day", action="store_true",
                    help="resident memory of the default detector after a day of 15 s ticks")
    args = ap.parse_args()
    if args.worker:
        sys.path.insert(0, args.worker)
        print(json.dumps(day_rss(args.series) if args.day else worker(args.detectors, args.series, args.ticks,
                                                                         args.save)))
        return 0
    checkouts = [("this", SRC)] + ([("against", Path(args.against).resolve())] if args.against else [])
    if args.day:
        for label, src in checkouts:
            cmd = [sys.executable, __file__, "--worker", str(src), "--day", "--series", str(args.series)]
            mb = float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            print(f"{label:<10}the default detector adds {mb:6.1f} MB resident after a day of 15 s ticks for "
                  f"{args.series:,} series", flush=True)
        return 0
    print(f"Detector ms per tick, {args.series:,} series, {args.runs} runs x {args.ticks} ticks each "
          f"(after a day of warm-up; 1% missing samples){', runs interleaved' if args.against else ''}")
    print(f"{'':<26}{'wall ms per tick':^24}{'':<19}{'CPU ms per tick':^24}")
    print(f"{'detector':<16}{'checkout':<10}{'min':>8}{'median':>8}{'max':>8}   per-run medians"
          f"{'min':>8}{'median':>8}{'max':>8}   per-run medians  state MB   outputs")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.detectors.split(","):
            got: dict[str, list[dict[str, object]]] = {label: [] for label, _ in checkouts}
            saved = {label: f"{tmp}/{name}-{label}.npy" for label, _ in checkouts}
            for i in range(args.runs):
                for label, src in checkouts:
                    got[label].append(run_one(src, name, args.series, args.ticks, saved[label] if i == 0 else ""))
            digests = {label: {str(r["digest"]) for r in runs} for label, runs in got.items()}
            for label, runs in got.items():
                ms = [float(x) for r in runs for x in r["ms"]]  # type: ignore[attr-defined]
                cpu = [float(x) for r in runs for x in r["cpu"]]  # type: ignore[attr-defined]
                meds = [statistics.median(r["ms"]) for r in runs]  # type: ignore[arg-type]
                cmeds = [statistics.median(r["cpu"]) for r in runs]  # type: ignore[arg-type]
                same = ""
                if args.against and label == "this":
                    same = ("identical" if digests[label] == digests["against"] and len(digests[label]) == 1
                            else compare(np.load(saved["this"]), np.load(saved["against"])))
                mb = int(runs[0]["bytes"]) / 1e6  # type: ignore[call-overload]
                print(f"{name:<16}{label:<10}{min(ms):8.2f}{statistics.median(ms):8.2f}{max(ms):8.2f}   "
                      f"{min(meds):6.2f}–{max(meds):<6.2f}   {min(cpu):8.2f}{statistics.median(cpu):8.2f}"
                      f"{max(cpu):8.2f}   {min(cmeds):6.2f}–{max(cmeds):<6.2f}  {mb:8.1f}   {same}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
