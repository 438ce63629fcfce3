"""Recording benchmark: write cost per tick, bytes per sample, replay speed. Prints a table.

    .venv/bin/python benchmarks/record_bench.py [--quick]

1. Write cost for 1,000 series: the time the engine's tick spends in Recorder.on_tick (it only queues),
   and the writer thread's commit per tick (one transaction, WAL, synchronous=FULL) and compaction.
2. Bytes per sample for one host at 1 s for 24 h: 15 series shaped like the local (psutil) source's,
   with timestamps jittered like a live tick, written through the writer with its default compaction.
3. Replay speed: samples per second through analysis and rules in a headless replay.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from surgewatch.config import parse_config
from surgewatch.engine import Engine, EngineOptions
from surgewatch.recording.reader import Recording
from surgewatch.recording.replay import ReplayDispatcher, ReplayDriver, replay_config
from surgewatch.recording.writer import Recorder, RecordingWriter, attach_recorder, compact
from surgewatch.scenarios import path as scenario_path
from surgewatch.sources.base import Reading, SourceError

ROWS: list[tuple[str, str]] = []


def row(name: str, value: str) -> None:
    ROWS.append((name, value))
    print(f"  {name:<64} {value}", flush=True)


class _Fleet:
    """A never-polled source standing for a fleet exporter with many series."""

    def __init__(self) -> None:
        self.name, self.interval, self.timeout, self.demo = "host:fleet", 1.0, 1.0, False

    async def poll(self) -> Reading:
        raise SourceError("not polled")

    async def close(self) -> None:
        return None


FLEET_CONFIG = """
[monitor]
interval = "1s"
history = "1h"
record = "{path}"

[[host]]
name = "fleet"
source = "prometheus"
url = "http://127.0.0.1:9/metrics"
"""


def write_cost(n_series: int, ticks: int, workdir: Path) -> None:
    """Time Recorder.on_tick inside real engine ticks, then the writer's per-tick commits and compaction."""
    path = workdir / "fleet.swrec"
    config = parse_config(FLEET_CONFIG.format(path=path), "bench.toml")
    engine = Engine(config, EngineOptions(dispatcher=ReplayDispatcher(())), sources=[_Fleet()])
    recorder = attach_recorder(engine)
    assert recorder is not None
    writer = recorder.writer
    timings: list[float] = []
    real = recorder.on_tick

    def timed(*args: object) -> None:
        t = time.perf_counter()
        real(*args)  # type: ignore[arg-type]
        timings.append(time.perf_counter() - t)

    recorder.on_tick = timed  # type: ignore[method-assign]
    names = [f"host:h{i // 10}/m{i % 10}" for i in range(n_series)]
    rng = np.random.default_rng(1)
    h = engine.collector.health["host:fleet"]
    h.series.update(names)
    t0 = 1_772_355_600.0
    commits: list[float] = []
    for k in range(ticks):
        h.ok, h.last_success = True, t0 + k
        values = np.round(rng.normal(50, 10, n_series), 1)
        engine.collector.pending = dict(zip(names, values.tolist(), strict=True))
        before, spent = writer.committed, writer.commit_seconds
        engine.tick(t0 + k)
        while writer.committed == before:  # wait until this tick is durable (the writer polls every 50 ms)
            time.sleep(0.0005)
        commits.append(writer.commit_seconds - spent)
    on_tick = np.array(timings[5:]) * 1e6
    row(f"on_tick in the engine's tick, {n_series:,} series (median / mean / p99)",
        f"{np.median(on_tick):.0f} / {on_tick.mean():.0f} / {np.percentile(on_tick, 99):.0f} µs")
    per = np.array(commits[5:]) * 1e3
    row("commit of one tick on the writer thread, synchronous=FULL (median / p99)",
        f"{np.median(per):.2f} / {np.percentile(per, 99):.2f} ms")
    writer.close()
    # Compaction cost per tick, measured on a copy with raw ticks only.
    raw = workdir / "raw.swrec"
    w = RecordingWriter(str(raw), {"tick_seconds": "1"}, compact_every=10**9)
    r = Recorder(w)
    rows_idx = np.arange(n_series)
    for k in range(600):
        r.record(t0 + k, rows_idx, np.round(rng.normal(50, 10, n_series), 1), [])
    while w.committed < 600:
        time.sleep(0.001)
    import sqlite3

    conn = sqlite3.connect(raw, isolation_level=None)
    t = time.perf_counter()
    compact(conn, 0)
    dt = time.perf_counter() - t
    conn.close()
    row(f"compaction on the writer thread, {n_series:,} series, per tick", f"{dt / 600 * 1e3:.2f} ms")


def one_host_day(workdir: Path, hours: float) -> Path:
    """A day of one host at 1 s shaped like the psutil source: returns the recording's path."""
    path = workdir / "host-day.swrec"
    ticks = int(hours * 3600)
    rng = np.random.default_rng(7)
    k = np.arange(ticks)
    day = np.sin(2 * np.pi * k / 86400.0)
    jiffies = np.maximum(1, np.round(400 + rng.normal(0, 2, ticks)))
    busy = np.clip(np.round(jiffies * (0.25 + 0.15 * day) + rng.normal(0, 8, ticks)), 0, jiffies)
    cols: dict[str, np.ndarray] = {
        "cpu.percent": 100.0 * busy / jiffies,
        "cpu.core0.percent": 100.0 * np.clip(np.round(busy / 4 + rng.normal(0, 3, ticks)), 0, 100) / 100,
        "cpu.core1.percent": 100.0 * np.clip(np.round(busy / 4 + rng.normal(0, 3, ticks)), 0, 100) / 100,
        "mem.percent": np.round(52 + 6 * day + rng.normal(0, 0.2, ticks), 1),
        "mem.available_bytes": np.round(8e9 - 1e9 * day + rng.normal(0, 4e6, ticks) / 4096) * 4096,
        "swap.percent": np.full(ticks, 1.3),
        "load.1": np.round(np.maximum(0, 1.2 + 0.8 * day + rng.normal(0, 0.15, ticks)), 2),
        "load.5": np.round(np.maximum(0, 1.2 + 0.8 * day + rng.normal(0, 0.05, ticks)), 2),
        "load.15": np.round(np.maximum(0, 1.2 + 0.8 * day + rng.normal(0, 0.02, ticks)), 2),
        "disk.read_bps": np.where(rng.random(ticks) < 0.8, 0.0, rng.integers(1, 64, ticks) * 4096 / 1.0003),
        "disk.write_bps": rng.integers(0, 200, ticks) * 4096 / (1.0 + rng.normal(0, 0.0005, ticks)),
        "net.rx_bps": np.maximum(0, 2e5 * (1.5 + day) + rng.normal(0, 2e4, ticks)).round() / (
            1.0 + rng.normal(0, 0.0005, ticks)),
        "net.tx_bps": np.maximum(0, 2e6 * (1.5 + day) + rng.normal(0, 2e5, ticks)).round() / (
            1.0 + rng.normal(0, 0.0005, ticks)),
        "procs.count": np.round(310 + 20 * day + rng.normal(0, 2, ticks)),
        "net.errors": np.zeros(ticks),
    }
    names = [f"host:web-1/{m}" for m in cols]
    matrix = np.stack(list(cols.values()), axis=1)
    ts = 1_772_323_200.0 + k + rng.uniform(0.0003, 0.004, ticks)  # a live tick lands a little after the second
    writer = RecordingWriter(str(path), {"tick_seconds": "1", "config_text": HOST_CONFIG}, [("host:web-1", 1.0, False)])
    rec = Recorder(writer)
    rows = np.arange(len(names))
    for i in range(ticks):
        rec.record(float(ts[i]), rows, matrix[i], [])
    writer.close()
    import sqlite3

    with sqlite3.connect(path) as conn:  # the recorder without an engine names series by row: name them
        conn.executemany("UPDATE series SET name = ?, source = 'host:web-1' WHERE name = ?",
                         [(n, str(i)) for i, n in enumerate(names)])
        chunks = conn.execute("SELECT SUM(LENGTH(vals)) + SUM(LENGTH(ts)) FROM chunks").fetchone()[0]
    size = os.path.getsize(path)
    samples = ticks * len(names)
    row(f"one host, {len(names)} series, 1 s for {hours:g} h: file size", f"{size / 1e6:.2f} MB")
    row("  bytes per sample (whole file)", f"{size / samples:.2f}")
    row("  bytes per sample (compressed values + timestamps only)", f"{chunks / samples:.2f}")
    row("  bytes per sample if left uncompressed (one row per tick)", f"{(8 * len(names) + 8 + 14) / len(names):.2f}")
    return path


HOST_CONFIG = """
[monitor]
interval = "1s"
history = "6h"

[[host]]
name = "web-1"
source = "local"

[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 90
clear = 80
for = "30s"
severity = "critical"

[[rule]]
name = "unexplained-load"
series = "host:*/cpu.percent"
anomaly = "unexplained"
for = "10s"
severity = "warning"
"""


def replay_speed(path: Path, label: str, end_offset: float | None = None) -> None:
    """Samples per second through analysis and rules, as `surgewatch replay --headless --speed 0` runs it."""
    with Recording(str(path)) as rec:
        span = rec.span()
        assert span is not None
        end = None if end_offset is None else span[0] + end_offset
        t = time.perf_counter()
        d = ReplayDriver(rec, replay_config(rec), end=end, speed=0)
        load = time.perf_counter() - t
        t = time.perf_counter()
        d.play_all()
        dt = time.perf_counter() - t
        samples = d.samples_played
    row(f"replay {label}: {d.index:,} ticks, {samples:,} samples",
        f"{samples / dt:,.0f} samples/s ({d.index / dt:,.0f} ticks/s; open {load:.2f} s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer ticks and a 2 h host recording")
    args = ap.parse_args()
    print("surgewatch recording benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_cost(1000, 100 if args.quick else 300, work)
        day = one_host_day(work, 2.0 if args.quick else 24.0)
        replay_speed(scenario_path("incident"), "scenario incident (3 hosts, 5 s tick)")
        replay_speed(day, "one host, first 30 min of the day", 1800.0)
    print()
    print("| measure | value |")
    print("|---|---|")
    for name, value in ROWS:
        print(f"| {name.strip()} | {value} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
