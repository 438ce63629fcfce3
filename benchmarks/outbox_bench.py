"""Outbox benchmark: submit() cost per tick and delivery throughput to a loopback receiver, fsync on.

Run: PYTHONPATH=src .venv/bin/python benchmarks/outbox_bench.py [--quick]
The receiver is a separate Python process on 127.0.0.1 (so it does not share our GIL), stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from surgewatch.alerting.dispatch import Dispatcher, RetryPolicy
from surgewatch.alerting.outbox import PENDING, Outbox
from surgewatch.alerting.sinks import AlertmanagerSink, FileSink, Sink, WebhookSink
from surgewatch.model import AlertEvent, Cause, Severity

RECEIVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

s = ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def event(i: int) -> AlertEvent:
    return AlertEvent(ts=1_795_000_000.0 + i * 0.001, event="firing", rule="cpu-high",
                      severity=Severity.WARNING,
                      series=f"host:web-{i}/cpu.percent", value=91.5, expected=40.0,
                      summary=f"web-{i} CPU 91.5% above 90% for 30s", explanation="CPU 91% is 6.1 MADs over "
                      "its 15-min median; traffic only +4%", fingerprint=f"{i:016x}", started=1_795_000_000.0,
                      cause=Cause.UNEXPLAINED, labels={"team": "ops"})


class NullSink:
    """Accepts everything (submit benchmark: only the outbox write is measured)."""

    kind = "null"
    name = "null"
    min_severity = Severity.INFO
    resend_interval: float | None = None

    async def send(self, events: Sequence[AlertEvent]) -> None:
        return None

    async def resend(self, active: Sequence[AlertEvent]) -> None:
        return None

    async def close(self) -> None:
        return None


def bench_submit(per_tick: int, sinks: int, ticks: int, sync: str) -> tuple[float, float]:
    """Median and p95 milliseconds of one submit() of `per_tick` events for `sinks` sinks."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        box = Outbox(Path(d))
        box.db.execute(f"PRAGMA synchronous={sync}")
        disp = Dispatcher([NullSink() for _ in range(sinks)], box)  # not started: rows just accumulate
        times = []
        for t in range(ticks):
            batch = [event(t * per_tick + j) for j in range(per_tick)]
            t0 = time.perf_counter()
            disp.submit(batch)
            times.append((time.perf_counter() - t0) * 1000)
        box.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


async def _throughput(make_sink: str, url: str, total: int, sync: str, workdir: Path) -> float:
    box = Outbox(workdir)
    box.db.execute(f"PRAGMA synchronous={sync}")
    sink: Sink
    if make_sink == "webhook":
        sink = WebhookSink(url + "/hook", {}, 5.0)
    elif make_sink == "alertmanager":
        sink = AlertmanagerSink(url, {}, 5.0, resend_interval=3600)
    else:
        sink = FileSink(str(workdir / "alerts.jsonl"))
    disp = Dispatcher([sink], box, retry=RetryPolicy(0.01, 2, 0.05, 0))
    for start in range(0, total, 100):  # stored up front, as after an outage
        disp.submit([event(i) for i in range(start, min(total, start + 100))])
    t0 = time.perf_counter()
    disp.start()
    while box.count(state=PENDING):
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - t0
    await disp.drain(5)
    return total / elapsed


def bench_throughput(kind: str, url: str, total: int, sync: str) -> float:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        return asyncio.run(_throughput(kind, url, total, sync, Path(d)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer iterations")
    args = ap.parse_args()
    ticks = 50 if args.quick else 200
    total = 500 if args.quick else 3000

    print("submit() cost per tick (rows = events x sinks, one transaction)")
    print(f"{'events/tick':>11} {'sinks':>5} {'sync':>6} {'median ms':>10} {'p95 ms':>8}")
    for per_tick, sinks in ((1, 1), (10, 3), (100, 3), (1000, 3)):
        for sync in ("FULL", "NORMAL"):
            med, p95 = bench_submit(per_tick, sinks, max(10, ticks // max(1, per_tick // 10)), sync)
            print(f"{per_tick:>11} {sinks:>5} {sync:>6} {med:>10.2f} {p95:>8.2f}")

    proc = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        print(f"\ndelivery throughput, {total} notifications waiting (loopback receiver in its own process)")
        print(f"{'sink':>13} {'sync':>6} {'notifications/s':>16}")
        for kind in ("webhook", "alertmanager", "file"):
            for sync in ("FULL", "NORMAL"):
                rate = bench_throughput(kind, url, total, sync)
                print(f"{kind:>13} {sync:>6} {rate:>16.0f}")
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
