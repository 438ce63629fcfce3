"""Fault scenarios for alert delivery, shared by tests/integration/test_delivery_faults.py (short runs) and
benchmarks/fault_bench.py (long runs): each drives one failure against real parts (a loopback webhook
receiver, the real SQLite outbox, a real `surgewatch --headless` process, tmpfs mounts as root) and
returns the alerts generated, lost and duplicated.

Ground truth is the outbox itself: every notification a run committed is a row that must reach the
receiver. "Lost" = committed (or submitted) keys the receiver never got; "duplicated" = receipts beyond
the first of a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from surgewatch.alerting.dispatch import Dispatcher, RetryPolicy, open_outbox
from surgewatch.alerting.outbox import DB_NAME, PENDING, Outbox, event_key
from surgewatch.alerting.sinks import StdoutSink, WebhookSink
from surgewatch.model import AlertEvent, Cause, Severity

from .servers import LOOPBACK, free_port, wait_until

SRC = Path(__file__).resolve().parents[2] / "src"


def ev(i: int, event: str = "firing") -> AlertEvent:
    """A distinct alert event number i."""
    return AlertEvent(ts=1_795_000_000.0 + i, event=event, rule="cpu-high", severity=Severity.WARNING,
                      series=f"host:web-{i}/cpu.percent", value=91.5, expected=40.0,
                      summary=f"web-{i} CPU 91.5% above 90%", explanation="", fingerprint=f"fp{i:05d}",
                      started=1_795_000_000.0, cause=Cause.UNEXPLAINED, labels={"team": "ops"})


@dataclass
class Figures:
    """What one fault run did to the alerts."""

    case: str
    alerts: int
    lost: int
    duplicated: int
    details: dict[str, Any] = field(default_factory=dict)


def tally(case: str, expected: list[str], received: list[str], **details: Any) -> Figures:
    """Figures from the keys that should have arrived and the keys that did, in order of receipt."""
    want = set(expected)
    return Figures(case, len(want), len(want - set(received)), len(received) - len(set(received)), details)


# ---------------------------------------------------------------------------------------------
# A loopback webhook receiver


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.conns: set[Any] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.conns.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        """Stop serving and cut open keep-alive connections too (a receiver that is down is down)."""
        self.shutdown()
        self.server_close()
        for conn in list(self.conns):
            with contextlib.suppress(OSError):
                conn.shutdown(2)

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client killed with -9 resets its connection: expected here


class Receiver:
    """A loopback JSON receiver that can be stopped and restarted on the same port.

    `status` answers every POST; `status_for(key)` (if set) can answer one event differently."""

    def __init__(self, port: int | None = None, delay: float = 0.0) -> None:
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}/hook"
        self.delay = delay
        self.status = 200
        self.status_for: Callable[[str], int | None] | None = None
        self.accepted: list[str] = []
        self.refused = 0
        self.tries: dict[str, int] = {}
        self.httpd: _QuietServer | None = None
        self.lock = threading.Lock()

    def start(self) -> Receiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if outer.delay:
                    time.sleep(outer.delay)
                key = str(json.loads(body).get("key"))
                with outer.lock:
                    status = outer.status
                    own = outer.status_for(key) if outer.status_for else None
                    status = own if own is not None else status
                    outer.tries[key] = outer.tries.get(key, 0) + 1
                    if status == 200:
                        outer.accepted.append(key)
                    else:
                        outer.refused += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = _QuietServer((LOOPBACK, self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.close_all()
            self.httpd = None

    def keys(self) -> list[str]:
        with self.lock:
            return list(self.accepted)


# ---------------------------------------------------------------------------------------------
# Log lines a run wrote (to count "says so once")


class LogLines(logging.Handler):
    """Collects the messages of the surgewatch loggers while in use."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def __enter__(self) -> LogLines:
        logger = logging.getLogger("surgewatch")
        self._level = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        logger = logging.getLogger("surgewatch")
        logger.removeHandler(self)
        logger.setLevel(self._level)


FAILING_LINE = "alert delivery waits for the outbox"
RECOVERED_LINE = "outbox works again"


# ---------------------------------------------------------------------------------------------
# In-process runs: the real dispatcher, outbox, stdout sink and webhook sink, with a ticking task


@dataclass
class Fault:
    """Something that breaks the outbox or a sink (`start`) and repairs it (`stop`)."""

    name: str
    start: Callable[[], None]
    stop: Callable[[], None]


def run_delivery_fault(state_dir: Path, fault: Fault, *, seconds: float, rate: float = 20.0,
                       retry: RetryPolicy | None = None, settle: float = 60.0) -> Figures:
    """Submit `rate` alerts a second to a stdout sink and a webhook through the outbox in `state_dir`; break
    things for `seconds`, repair, and wait until everything is delivered (up to `settle` seconds)."""
    return asyncio.run(_run_delivery_fault(state_dir, fault, seconds, rate,
                                           retry or RetryPolicy(base=0.1, factor=2.0, cap=1.0, jitter=0.0),
                                           settle))


async def _run_delivery_fault(state_dir: Path, fault: Fault, seconds: float, rate: float, retry: RetryPolicy,
                              settle: float) -> Figures:
    rx = Receiver().start()
    out = io.StringIO()
    d = Dispatcher([StdoutSink(stream=out), WebhookSink(rx.url, {}, 2.0)], open_outbox(state_dir),
                   ids=["stdout", "hook"], retry=retry)
    submitted: list[str] = []
    gaps: list[float] = []
    stop = asyncio.Event()

    async def tick() -> None:  # stands in for the engine's tick: must keep running whatever the outbox does
        i, last = 0, time.monotonic()
        while not stop.is_set():
            e = ev(i)
            d.submit([e])
            submitted.append(event_key(e))
            i += 1
            await asyncio.sleep(1.0 / rate)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    def stdout_keys() -> list[str]:
        return [json.loads(line)["key"] for line in out.getvalue().splitlines()]

    with LogLines() as logs:
        d.start()
        ticker = asyncio.create_task(tick())
        await asyncio.sleep(min(1.0, seconds / 4))
        fault.start()
        t_fault = time.monotonic()
        try:
            await asyncio.sleep(seconds)
        finally:
            fault.stop()
        t_heal = time.monotonic()
        await asyncio.sleep(0.3)
        stop.set()
        await ticker
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            if set(stdout_keys()) >= set(submitted) and set(rx.keys()) >= set(submitted):
                break
            await asyncio.sleep(0.05)
        t_done = time.monotonic()
        await d.drain(2.0)
        rx.stop()
    got_out, got_hook = stdout_keys(), rx.keys()
    fig = tally(fault.name, submitted, got_out + got_hook)
    fig.alerts = len(submitted) * 2  # per sink
    fig.lost = len(set(submitted) - set(got_out)) + len(set(submitted) - set(got_hook))
    fig.duplicated = (len(got_out) - len(set(got_out))) + (len(got_hook) - len(set(got_hook)))
    fig.details = {
        "fault_seconds": t_heal - t_fault,
        "catch_up_seconds": t_done - t_heal,
        "max_tick_gap": max(gaps) if gaps else 0.0,
        "ticks": len(gaps),
        "failing_lines": logs.count(FAILING_LINE),
        "recovered_lines": logs.count(RECOVERED_LINE),
        "webhook_refused": rx.refused,
        "log_lines": len(logs.lines),
    }
    return fig


def locked_fault(state_dir: Path) -> Fault:
    """Another process holds the outbox database's write lock (an operator's sqlite3 shell in a transaction)."""
    holder: list[subprocess.Popen[str]] = []
    code = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "db.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.read()")

    def start() -> None:
        p = subprocess.Popen([sys.executable, "-c", code, str(state_dir / DB_NAME)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None and p.stdout.readline().strip() == "locked"
        holder.append(p)

    def stop() -> None:
        for p in holder:
            assert p.stdin is not None
            p.stdin.close()
            p.wait(5)
            assert p.stdout is not None
            p.stdout.close()

    return Fault("database locked by another process", start, stop)


def run_sink_outage(state_dir: Path, *, seconds: float, rate: float = 10.0, retry: RetryPolicy | None = None,
                    settle: float = 120.0) -> Figures:
    """A webhook receiver that is down for `seconds` while alerts keep coming, then back."""
    return asyncio.run(_run_sink_outage(state_dir, seconds, rate, retry or RetryPolicy(), settle))


async def _run_sink_outage(state_dir: Path, seconds: float, rate: float, retry: RetryPolicy,
                           settle: float) -> Figures:
    rx = Receiver().start()
    d = Dispatcher([WebhookSink(rx.url, {}, 2.0)], Outbox(state_dir), ids=["hook"], retry=retry)
    submitted: list[str] = []
    tries_during = 0
    d.start()
    with LogLines() as logs:
        i = 0

        async def submit_for(duration: float) -> None:
            nonlocal i
            end = time.monotonic() + duration
            while time.monotonic() < end:
                e = ev(i)
                i += 1
                d.submit([e])
                submitted.append(event_key(e))
                await asyncio.sleep(1.0 / rate)

        await submit_for(0.5)
        rx.stop()
        t0 = time.monotonic()
        await submit_for(seconds)
        attempts = d.outbox.db.execute("SELECT coalesce(max(attempts), 0) FROM outbox").fetchone()[0]
        tries_during = int(attempts)
        rx.start()
        t_back = time.monotonic()
        deadline = t_back + settle
        while time.monotonic() < deadline and not set(rx.keys()) >= set(submitted):
            await asyncio.sleep(0.05)
        t_done = time.monotonic()
        await d.drain(2.0)
        rx.stop()
    return tally(f"webhook down {seconds:.0f}s, then back", submitted, rx.keys(),
                 outage_seconds=t_back - t0, catch_up_seconds=t_done - t_back, attempts_during_outage=tries_during,
                 warning_lines=sum("retrying in about" in line for line in logs.lines))


# ---------------------------------------------------------------------------------------------
# Mounts (root only)


def can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@contextlib.contextmanager
def tmpfs(size: str = "8m") -> Iterator[Path]:
    """A fresh tmpfs of `size` mounted on a temporary directory (root only); unmounted afterwards."""
    where = Path(tempfile.mkdtemp(prefix="surgewatch-fault-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)], check=True,
                   capture_output=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
        with contextlib.suppress(OSError):
            where.rmdir()


def full_fs_fault(mount: Path) -> Fault:
    """Fill the file system holding the outbox to the last byte; repair by deleting the filler."""
    filler = mount / "filler"

    def start() -> None:
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (1 << 20, 4096, 1):  # big writes first, then the last partial block
                with contextlib.suppress(OSError):
                    while os.write(fd, b"\0" * size):
                        pass
        finally:
            os.close(fd)

    def stop() -> None:
        filler.unlink()

    return Fault("outbox on a full file system", start, stop)


def remount(mount: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], check=True, capture_output=True)


def run_read_only(mount: Path, *, rate: float = 20.0, seconds: float = 2.0) -> Figures:
    """The state dir is mounted read-only between two runs: run 1 leaves rows for a sink that is down; run 2
    starts on the read-only dir (alerts from memory); run 3, writable again, delivers run 1's rows."""
    return asyncio.run(_run_read_only(mount, rate, seconds))


async def _run_read_only(mount: Path, rate: float, seconds: float) -> Figures:
    rx = Receiver()
    submitted: list[str] = []
    n = 0
    fallback_lines = 0

    async def run(up: bool, owed: list[str]) -> None:
        nonlocal n
        mine = list(owed)
        if up:
            rx.start()
        d = Dispatcher([WebhookSink(rx.url, {}, 2.0)], open_outbox(mount), ids=["hook"],
                       retry=RetryPolicy(0.05, 2.0, 0.5, 0.0))
        d.start()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            e = ev(n)
            n += 1
            d.submit([e])
            submitted.append(event_key(e))
            mine.append(event_key(e))
            await asyncio.sleep(1.0 / rate)
        deadline = time.monotonic() + 10
        while up and time.monotonic() < deadline and not set(rx.keys()) >= set(mine):
            await asyncio.sleep(0.05)
        await d.drain(1.0)
        if up:
            rx.stop()

    with LogLines() as logs:
        await run(False, [])  # rows wait in the outbox for the next start
        first = list(submitted)
        remount(mount, "ro")
        try:
            await run(True, [])  # read-only state dir: new alerts go out from memory
        finally:
            remount(mount, "rw")
        fallback_lines = logs.count("the state dir is read-only")
        await run(True, first)  # writable again: run 1's rows go out
    return tally("state dir read-only at start", submitted, rx.keys(), read_only_warnings=fallback_lines)


# ---------------------------------------------------------------------------------------------
# kill -9 of a real `surgewatch --headless` while it delivers to a loopback webhook


class FlipSource:
    """Loopback JSON endpoints /s0../sN whose value flips between 500 and 10 on every poll while `flipping`,
    so each poll of each series is an alert transition (a steady stream of distinct notifications)."""

    def __init__(self) -> None:
        self.flipping = True
        self.count: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                n = outer.count[self.path] = outer.count.get(self.path, 0) + 1
                value = 500.0 if outer.flipping and n % 2 else 10.0
                body = json.dumps({"v": value}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = _QuietServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def headless_config(path: Path, source: FlipSource, hook: str, series: int) -> Path:
    traffic = "".join(f"""
[[traffic]]
name = "t{i}"
source = "json"
url = "{source.url}/s{i}"
value = "v"
interval = "100ms"
""" for i in range(series))
    path.write_text(f"""
[monitor]
interval = "100ms"
state_dir = "{path.parent / 'state'}"
{traffic}
[[rule]]
name = "busy"
series = "traffic:*/visitors"
above = 100
clear = 50
severity = "critical"

[[sink]]
kind = "webhook"
url = "{hook}"
timeout = "2s"
""")
    return path


def start_daemon(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(SRC), XDG_STATE_HOME=str(config.parent / "xdg"))
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "surgewatch", "--headless", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=log, env=env)


def outbox_rows(state: Path) -> tuple[list[str], int]:
    """(every key the outbox holds, how many are still pending), read by a second connection."""
    db = sqlite3.connect(f"file:{state / DB_NAME}?mode=ro", uri=True, timeout=5)
    try:
        keys = [k for (k,) in db.execute("SELECT key FROM outbox ORDER BY id")]
        pending = db.execute("SELECT count(*) FROM outbox WHERE state = ?", (PENDING,)).fetchone()[0]
        return keys, int(pending)
    finally:
        db.close()


def run_kill9(workdir: Path, *, kills: int, series: int = 5, min_new: int = 15, receiver_delay: float = 0.01,
              seed: int = 1) -> Figures:
    """Start the daemon, let it deliver, kill -9 it at a random moment `kills` times; then start it once more,
    stop the alert stream, let it drain, SIGTERM it, and compare the outbox with what the receiver got."""
    rng = random.Random(seed)
    source = FlipSource()
    rx = Receiver(delay=receiver_delay).start()
    config = headless_config(workdir / "c.toml", source, rx.url, series)
    log_path = workdir / "daemon.log"
    state = workdir / "state"
    try:
        for _ in range(kills):
            before = len(rx.keys())
            proc = start_daemon(config, log_path)
            try:
                wait_until(lambda b=before: len(rx.keys()) >= b + min_new or None, 30, "deliveries after a start")
                time.sleep(rng.uniform(0.0, 0.5))
                os.kill(proc.pid, signal.SIGKILL)
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(10)
        source.flipping = False
        starts = log_path.read_text().count("started: ")
        proc = start_daemon(config, log_path)
        try:
            wait_until(lambda: log_path.read_text().count("started: ") > starts or None, 30, "the last start")
            def drained() -> bool:
                keys, pending = outbox_rows(state)
                return pending == 0 and set(rx.keys()) >= set(keys)
            wait_until(lambda: drained() or None, 60, "the outbox to drain after the last start",
                       interval=0.2)
            time.sleep(0.5)  # the resolves of the last flip
            wait_until(lambda: drained() or None, 30, "the last resolves", interval=0.2)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        keys, pending = outbox_rows(state)
        return tally(f"kill -9 during delivery x{kills}", keys, rx.keys(), pending_at_end=pending, exit_code=rc,
                     unknown_receipts=len(set(rx.keys()) - set(keys)))
    finally:
        rx.stop()
        source.close()
