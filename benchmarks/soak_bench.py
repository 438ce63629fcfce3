"""Soak: a simulated day at speed with series churn and a flapping source; RSS, open fds and outbox size flat?

The engine's tick is driven with a fake wall clock (no sleeping): a fleet of hosts (three metrics each, the names
a `promql` source gives) with 10 % of the hosts replaced every simulated hour, a burst of 50 new label values per
tick for 60 ticks in the third hour, an edge host whose source fails for 10 minutes of every hour, site and
campaign traffic, threshold and anomaly rules, and a file sink behind the durable outbox (housekeeping run each
simulated hour, on the simulated clock). Sources are in-process objects answering in the shapes the real ones
yield, so that a day fits in a minute or two; the real sources have their own tests and benchmarks.

"start" is the end of the first simulated hour (rings, detector state and SQLite caches are at working size
then); the first row of the table shows the very beginning for comparison. Goal: end within 5 % of start.

`--big-query` instead runs the engine for real (2 s ticks) with a `promql` source whose loopback server (a
separate process) answers 50,000 series, next to a 100 ms source, and prints how late that source's polls and
the ticks were, side by side with the same run without the big answer.

Run: PYTHONPATH=src .venv/bin/python benchmarks/soak_bench.py [--hours 24] [--hosts 300] [--interval 15s]
     PYTHONPATH=src .venv/bin/python benchmarks/soak_bench.py --burst      # only: 50 new series per tick x 60
     PYTHONPATH=src .venv/bin/python benchmarks/soak_bench.py --big-query  # a 50,000-series PromQL answer
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from surgewatch.alerting.dispatch import Dispatcher
from surgewatch.alerting.outbox import Outbox
from surgewatch.alerting.sinks import FileSink
from surgewatch.config import parse_config
from surgewatch.engine import Engine, EngineOptions
from surgewatch.recording.writer import attach_recorder
from surgewatch.sources.base import Reading, SourceError
from surgewatch.units import parse_duration

START = 1_800_000_000.0
METRICS = ("cpu.percent", "mem.percent", "load.1")


class Fleet:
    """Hosts answering like a `promql` source: one series per host and metric; the test churns the hosts."""

    demo = False

    def __init__(self, name: str, hosts: int, interval: float, clock: Callable[[], float]) -> None:
        self.name, self.interval, self.timeout = name, interval, 5.0
        self.clock = clock
        self.generation = 0
        self.hosts = [f"web-0-{i}" for i in range(hosts)]
        self.extra: list[str] = []  # a burst of short-lived label values (pods), replaced every tick

    def replace(self, fraction: float) -> None:
        """Replace the oldest `fraction` of the hosts with new ones (a fleet's churn)."""
        self.generation += 1
        k = max(1, round(len(self.hosts) * fraction))
        self.hosts = self.hosts[k:] + [f"web-{self.generation}-{i}" for i in range(k)]

    async def poll(self) -> Reading:
        t = self.clock()
        day = math.sin(2 * math.pi * (t - START) / 86400.0)
        values = {}
        for n, host in enumerate(self.hosts):
            cpu = 40 + 15 * day + 5 * math.sin(t / 300.0 + n)
            if n % 97 == 0 and int(t // 3600) % 4 == 0:  # a few hosts run hot some hours: alerts come and go
                cpu = 93.0
            values[f"host:{host}/cpu.percent"] = cpu
            values[f"host:{host}/mem.percent"] = 60 + 3 * math.sin(t / 900.0 + n)
            values[f"host:{host}/load.1"] = cpu / 25.0
        for pod in self.extra:
            values[f"host:{pod}/cpu.percent"] = 20.0
        return Reading(values)

    async def close(self) -> None:
        return None


class Flapping:
    """One host whose source fails for 10 minutes of every hour."""

    demo = False

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.name, self.interval, self.timeout = "host:edge", interval, 5.0
        self.clock = clock

    async def poll(self) -> Reading:
        t = self.clock()
        if (t - START) % 3600 >= 3000:
            raise SourceError("connection refused (simulated outage)")
        return Reading({"host:edge/cpu.percent": 30.0 + 10 * math.sin(t / 600.0), "host:edge/mem.percent": 50.0})

    async def close(self) -> None:
        return None


class Site:
    """Site and campaign visitors with a campaign push in the afternoon."""

    demo = False

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.name, self.interval, self.timeout = "traffic:site", interval, 5.0
        self.clock = clock

    async def poll(self) -> Reading:
        h = ((self.clock() - START) / 3600.0) % 24
        push = 400.0 * math.exp(-((h - 15.0) ** 2) / 2.0)
        return Reading({"traffic:site/visitors": 200.0 + push, "campaign:spring/visitors": 5.0 + push})

    async def close(self) -> None:
        return None


CONFIG = """
[monitor]
interval = "{interval}"
state_dir = "{state}"

[[host]]
name = "fleet"
source = "promql"
url = "http://127.0.0.1:9"

[[traffic]]
name = "site"
source = "json"
url = "http://127.0.0.1:9/stats"
value = "visitors"

[[campaign]]
name = "spring"
traffic = "site"
utm_campaign = "spring"
hosts = [{campaign_hosts}]

[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 90
clear = 85
for = "30s"
severity = "critical"

[[rule]]
name = "unexplained-load"
series = "host:*/cpu.percent"
anomaly = "unexplained"
for = "1m"
severity = "warning"
"""


def measure(engine: Engine, outbox_path: Path) -> dict[str, float]:
    """RSS, open fds, outbox size and series counts now."""
    store = engine.store
    wal = outbox_path.with_name(outbox_path.name + "-wal")
    rows = engine.dispatcher.outbox.count()
    return {
        "rss": psutil.Process().memory_info().rss / 2**20,
        "fds": len(os.listdir("/proc/self/fd")),
        "outbox_rows": rows,
        "pending": sum(b.pending for b in engine.dispatcher.backlog()),
        "outbox_kib": outbox_path.stat().st_size / 1024,
        "wal_kib": wal.stat().st_size / 1024 if wal.exists() else 0.0,  # SQLite reuses it: at most ~4 MiB
        "series": len(store.index),
        "rows": len(store),
        "evicted": getattr(engine, "evicted", 0),
    }


async def soak(hours: float, hosts: int, interval: float, record: bool) -> list[tuple[str, dict[str, float]]]:
    now = [START]

    def clock() -> float:
        return now[0]

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        state = Path(d) / "state"
        state.mkdir()
        fleet = Fleet("host:fleet", hosts, interval, clock)
        campaign_hosts = ", ".join(f'"{h}"' for h in fleet.hosts[:20])
        text = CONFIG.format(interval=f"{interval:g}s", state=state, campaign_hosts=campaign_hosts)
        if record:
            text = text.replace("[monitor]\n", f'[monitor]\nrecord = "{Path(d) / "soak.swrec"}"\n', 1)
        cfg = parse_config(text, "soak.toml")
        outbox = Outbox(state, clock=clock)
        dispatcher = Dispatcher([FileSink(str(Path(d) / "alerts.jsonl"))], outbox, ids=["file"], clock=clock)
        engine = Engine(cfg, EngineOptions(clock=clock, dispatcher=dispatcher),
                        sources=[fleet, Flapping(interval, clock), Site(interval, clock)])
        if record:
            attach_recorder(engine)
        outbox_path = Path(outbox.path)
        dispatcher.start()
        per_hour = round(3600 / interval)
        total = round(hours * per_hour)
        rows: list[tuple[str, dict[str, float]]] = [("0h", measure(engine, outbox_path))]
        tick_ms: list[float] = []
        for k in range(1, total + 1):
            now[0] += interval
            if k % per_hour == 0:
                fleet.replace(0.10)
            burst = 2 * per_hour <= k < 2 * per_hour + 60
            fleet.extra = [f"pod-{k}-{i}" for i in range(50)] if burst else []
            for src in engine.sources:
                await engine.collector.poll_once(src)
            t0 = time.perf_counter()
            engine.tick(now[0])
            tick_ms.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0)  # the outbox worker delivers between ticks
            if k % per_hour == 0:
                for _ in range(500):  # let the sink catch up (bounded), as it would between real ticks
                    if not sum(b.pending for b in dispatcher.backlog()):
                        break
                    await asyncio.sleep(0.01)
                outbox.expire(dispatcher.max_age)
                outbox.prune(dispatcher.keep_delivered)
                m = measure(engine, outbox_path)
                m["tick_ms"] = statistics.median(tick_ms)
                tick_ms = []
                rows.append((f"{k // per_hour}h", m))
                print(f"  {k // per_hour:>3}h  series {m['series']:>6.0f}  rss {m['rss']:6.1f} MiB", file=sys.stderr)
        await engine.shutdown(5.0)
    return rows


async def burst(ticks: int = 60, per_tick: int = 50) -> None:
    """The issue's reproduction: 50 new label values per tick for 60 ticks at a 2 s interval."""
    now = [START]
    cfg = parse_config('[monitor]\ninterval = "2s"\n\n[[rule]]\nname = "cpu-high"\nseries = "host:*/cpu.percent"\n'
                       'above = 90\n', "burst.toml")

    class Pods:
        name, interval, timeout, demo = "host:fleet", 2.0, 1.0, False
        k = 0

        async def poll(self) -> Reading:
            self.k += 1
            return Reading({f"host:pod-{self.k}-{i}/cpu.percent": 50.0 for i in range(per_tick)})

        async def close(self) -> None:
            return None

    with tempfile.TemporaryDirectory() as d:
        engine = Engine(cfg, EngineOptions(clock=lambda: now[0], dispatcher=Dispatcher([], Outbox(None), ids=[])),
                        sources=[Pods()])
        rss0 = psutil.Process().memory_info().rss / 2**20
        print(f"{'tick':>5} {'series':>7} {'rows':>6} {'RSS MiB':>8}")
        for k in range(1, ticks + 1):
            now[0] += 2.0
            await engine.collector.poll_once(engine.sources[0])
            engine.tick(now[0])
            if k % 10 == 0:
                rss = psutil.Process().memory_info().rss / 2**20
                print(f"{k:>5} {len(engine.store.index):>7} {len(engine.store):>6} {rss:>8.1f}")
        del d
        print(f"RSS growth over {ticks} ticks: {psutil.Process().memory_info().rss / 2**20 - rss0:.1f} MiB")


PROMQL_SERVER = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

n = int(sys.argv[1])
body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"__name__": "node_load1", "instance": f"10.0.{i // 250}.{i % 250}:9100", "job": "node"},
     "value": [1795438711.49, "1.25"]} for i in range(n)]}}).encode()

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

s = ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
print(s.server_address[1], len(body), flush=True)
s.serve_forever()
"""


class Quick:
    """A source polled every 100 ms that notes when each poll starts."""

    name, interval, timeout, demo = "host:quick", 0.1, 1.0, False

    def __init__(self) -> None:
        self.starts: list[float] = []

    async def poll(self) -> Reading:
        self.starts.append(time.monotonic())
        return Reading({"host:quick/cpu.percent": 10.0})

    async def close(self) -> None:
        return None


async def run_engine(url: str | None, seconds: float, cap: int = 10_000) -> dict[str, float]:
    """The engine for `seconds` with a quick source and (with `url`) a fleet source answering 50,000 series."""
    text = '[monitor]\ninterval = "2s"\n'
    if url is not None:
        text += f'\n[[host]]\nname = "fleet"\nsource = "promql"\nurl = "{url}"\ninterval = "2s"\ntimeout = "5s"\n' \
                f'max_series = {cap}\n[host.queries]\n"load.1" = "node_load1"\n'
    cfg = parse_config(text, "big.toml")
    from surgewatch.sources import BuildOptions, build_sources

    quick = Quick()
    engine = Engine(cfg, EngineOptions(dispatcher=Dispatcher([], Outbox(None), ids=[])),
                    sources=[*build_sources(cfg, BuildOptions()), quick])
    ticks: list[float] = []
    original = engine.tick

    def timed(now: float) -> list:  # type: ignore[type-arg]
        t0 = time.perf_counter()
        out = original(now)
        ticks.append((time.perf_counter() - t0) * 1000)
        return out

    engine.tick = timed  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    await engine.shutdown(1.0)
    gaps = sorted((b - a - quick.interval) * 1000 for a, b in zip(quick.starts, quick.starts[1:], strict=False))
    return {"series": len(engine.store.index), "late_p50": gaps[len(gaps) // 2],
            "late_p99": gaps[int(len(gaps) * 0.99)], "late_max": gaps[-1],
            "tick_p50": statistics.median(ticks), "tick_max": max(ticks)}


def big_query(series: int = 50_000, seconds: float = 20.0) -> None:
    proc = subprocess.Popen([sys.executable, "-c", PROMQL_SERVER, str(series)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port, size = proc.stdout.readline().split()
        url = f"http://127.0.0.1:{port}"
        print(f"PromQL answer: {series:,} series, {int(size) / 2**20:.1f} MiB; {seconds:g} s per run")
        print(f"{'run':>22} {'series':>7} {'late p50':>9} {'late p99':>9} {'late max':>9} {'tick p50':>9} "
              f"{'tick max':>9}   (ms)")
        runs = (("100 ms source alone", None, 0), ("big answer, cap 10,000", url, 10_000),
                ("big answer, cap 1,000", url, 1_000))
        for label, target, cap in runs * 2:
            r = asyncio.run(run_engine(target, seconds, cap))
            print(f"{label:>22} {r['series']:>7.0f} {r['late_p50']:>9.1f} {r['late_p99']:>9.1f} "
                  f"{r['late_max']:>9.1f} {r['tick_p50']:>9.1f} {r['tick_max']:>9.1f}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    ap.add_argument("--hosts", type=int, default=300, help="fleet size (default 300, three series each)")
    ap.add_argument("--interval", default="15s", help="tick and poll interval (default 15s)")
    ap.add_argument("--record", action="store_true", help="record the session too (the recorder's memory)")
    ap.add_argument("--burst", action="store_true", help="only the 50-new-series-per-tick reproduction")
    ap.add_argument("--big-query", action="store_true", help="a 50,000-series PromQL answer next to a quick source")
    args = ap.parse_args()
    if args.burst:
        asyncio.run(burst())
        return
    if args.big_query:
        big_query()
        return
    started = time.perf_counter()
    rows = asyncio.run(soak(args.hours, args.hosts, parse_duration(args.interval), args.record))
    print(f"soak: {args.hours:g} simulated hours, {args.hosts} hosts, {args.interval} interval, "
          f"{'recording, ' if args.record else ''}"
          f"{time.perf_counter() - started:.0f} s real")
    cols = ("series", "rows", "evicted", "rss", "fds", "outbox_rows", "pending", "outbox_kib", "wal_kib", "tick_ms")
    print(f"{'at':>5} " + " ".join(f"{c:>11}" for c in cols))
    for label, m in rows:
        print(f"{label:>5} " + " ".join(f"{m.get(c, float('nan')):>11.1f}" for c in cols))
    start, end = rows[1][1] if len(rows) > 1 else rows[0][1], rows[-1][1]
    for key in ("rss", "fds", "outbox_kib"):
        change = 100.0 * (end[key] - start[key]) / start[key] if start[key] else float("nan")
        print(f"{key}: {start[key]:.1f} at 1h -> {end[key]:.1f} at the end ({change:+.1f} %)")


if __name__ == "__main__":
    main()
