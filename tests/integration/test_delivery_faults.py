"""Alert delivery under faults: a failing outbox, poison events, permanent refusals, clock steps, a corrupt
outbox, proxies, shutdown errors, sink outages and kill -9 of the real daemon (runtime ~60 s).

The long versions of the fault runs are in benchmarks/fault_bench.py; both use tests/support/faultkit.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from surgewatch.alerting.dispatch import Dispatcher, RetryPolicy, open_outbox
from surgewatch.alerting.outbox import DEAD, DELIVERED, PENDING, Outbox, OutboxError, event_key
from surgewatch.alerting.sinks import (
    AlertmanagerSink,
    BellSink,
    CommandSink,
    SlackSink,
    StdoutSink,
    SteadyWallClock,
    WebhookSink,
    build_sink,
)
from surgewatch.config import ConfigError, parse_config
from surgewatch.frontends import headless
from surgewatch.model import AlertEvent
from tests.support import faultkit
from tests.support.faultkit import Receiver, ev
from tests.support.servers import CannedHttpServer, Route, closed_port, wait_until

FAST = RetryPolicy(base=0.02, factor=2.0, cap=0.1, jitter=0.0)
needs_root = pytest.mark.skipif(not faultkit.can_mount(), reason="mounting a tmpfs needs root")


async def _until(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------------------------------
# A failing outbox: back off, say so once, never re-send, keep ticking


class UnrecordingOutbox(Outbox):
    """The real outbox, except that marking rows delivered fails while `broken` (as on a full disk)."""

    broken = False

    def mark_delivered(self, ids: Sequence[int]) -> None:
        if self.broken and ids:
            raise OutboxError(f"outbox {self.path}: database or disk is full")
        super().mark_delivered(ids)


async def test_outbox_that_cannot_record_deliveries_backs_off_says_so_once_and_sends_each_alert_once(
        tmp_path: Path) -> None:
    # The reported case: stdout and bell sinks never await, so the old worker re-sent one alert 47,636
    # times in 3 s and the tick stopped.
    out = io.StringIO()
    bell = BellSink()
    heard: list[AlertEvent] = []
    bell.subscribe(heard.extend)
    box = UnrecordingOutbox(tmp_path)
    d = Dispatcher([StdoutSink(stream=out), bell], box, retry=RetryPolicy(0.05, 2.0, 0.4, 0.0))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.02)

    ticker = asyncio.create_task(tick())
    with faultkit.LogLines() as logs:
        box.broken = True
        d.start()
        d.submit([ev(1)])
        await asyncio.sleep(1.5)
        d.submit([ev(2)])
        await asyncio.sleep(1.0)
        ticks_while_broken = ticks
        box.broken = False
        await _until(lambda: box.count(state=DELIVERED) == 4)
        ticker.cancel()
        await d.drain(2)
    keys = [json.loads(line)["key"] for line in out.getvalue().splitlines()]
    assert keys == [event_key(ev(1)), event_key(ev(2))]  # each once, in order
    assert heard == [ev(1), ev(2)]
    assert ticks_while_broken > 40  # ~125 at 20 ms: the loop was never starved
    assert logs.count(faultkit.FAILING_LINE) == 1 and logs.count(faultkit.RECOVERED_LINE) == 1


def test_outbox_locked_by_another_process_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    fig = faultkit.run_delivery_fault(tmp_path, faultkit.locked_fault(tmp_path), seconds=2.5)
    assert (fig.lost, fig.duplicated) == (0, 0), fig
    assert fig.details["failing_lines"] == 1 and fig.details["recovered_lines"] == 1, fig
    assert fig.details["max_tick_gap"] < 2.0, fig  # a blocked write waits 250 ms, not the whole lock


@needs_root
def test_outbox_on_a_full_file_system_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    with faultkit.tmpfs("4m") as mount:
        fig = faultkit.run_delivery_fault(mount, faultkit.full_fs_fault(mount), seconds=2.5)
    assert (fig.lost, fig.duplicated) == (0, 0), fig
    assert fig.details["failing_lines"] == 1 and fig.details["recovered_lines"] == 1, fig


@needs_root
def test_read_only_state_dir_delivers_from_memory_and_keeps_earlier_rows_for_later(tmp_path: Path) -> None:
    with faultkit.tmpfs("32m") as mount:
        fig = faultkit.run_read_only(mount, seconds=1.0)
    assert (fig.lost, fig.duplicated) == (0, 0), fig
    assert fig.details["read_only_warnings"] == 1


def test_state_dir_without_write_permission_falls_back_to_memory_with_one_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    state.mkdir()
    real_open = os.open

    def denied(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if str(path).startswith(str(state)):  # what EACCES on a 0500 directory looks like (root ignores modes)
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", denied)
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: not str(path).startswith(str(state)))
    with caplog.at_level(logging.WARNING, "surgewatch.alerting"):
        box = open_outbox(state)
    assert box.path == ":memory:"
    (line,) = [r.getMessage() for r in caplog.records]
    assert "read-only" in line and str(state) in line
    box.close()


def test_state_dir_that_is_a_file_is_still_a_startup_error(tmp_path: Path) -> None:
    from surgewatch.statedir import StateDirError
    (tmp_path / "state").write_text("")
    with pytest.raises(StateDirError):
        open_outbox(tmp_path / "state")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_is_handled_promptly_while_the_outbox_is_locked(tmp_path: Path, sig: int) -> None:
    source = faultkit.FlipSource()
    rx = Receiver().start()
    config = faultkit.headless_config(tmp_path / "c.toml", source, rx.url, series=2)
    log_path = tmp_path / "daemon.log"
    proc = faultkit.start_daemon(config, log_path)
    lock = faultkit.locked_fault(tmp_path / "state")
    try:
        wait_until(lambda: len(rx.keys()) >= 5 or None, 30, "first deliveries")
        lock.start()
        wait_until(lambda: faultkit.FAILING_LINE in log_path.read_text() or None, 15, "the outbox failure line")
        time.sleep(1.0)
        t0 = time.monotonic()
        proc.send_signal(sig)
        rc = proc.wait(10)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        lock.stop()
        rx.stop()
        source.close()
    assert rc == 0 and elapsed < 3.0, (rc, elapsed)
    assert log_path.read_text().count(faultkit.FAILING_LINE) == 1
    keys = rx.keys()
    assert len(keys) == len(set(keys))  # nothing re-sent while deliveries could not be recorded


# ---------------------------------------------------------------------------------------------
# Poison events and permanent refusals


async def test_nul_byte_in_an_event_reaches_the_command_sink_once(tmp_path: Path) -> None:
    got = tmp_path / "got.jsonl"
    sink = CommandSink(["sh", "-c", f'cat >> {got}; echo >> {got}; test -n "$SURGEWATCH_SUMMARY"'], 5.0)
    from dataclasses import replace
    poison = replace(ev(2), summary="web-2 \x00 label from a remote PromQL answer")
    d = Dispatcher([sink], Outbox(tmp_path), retry=FAST)
    d.start()
    d.submit([ev(1), poison, ev(3)])
    await _until(lambda: d.outbox.count(state=DELIVERED) == 3)
    await d.drain(2)
    lines = [json.loads(x) for x in got.read_text().splitlines() if x.strip()]
    assert [x["key"] for x in lines] == [event_key(e) for e in (ev(1), poison, ev(3))]  # each once
    assert "\x00" in lines[1]["summary"]  # the JSON on stdin keeps the text as it was


async def test_lone_surrogate_from_a_remote_label_is_stored_and_delivered_once_by_every_sink(
        tmp_path: Path) -> None:
    from dataclasses import replace
    odd = replace(ev(2), summary="web-2 \ud800 from a JSON escape", labels={"pod": "a\udcffb"})
    rx = Receiver().start()
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)  # strict, as a real stdout
    got = tmp_path / "cmd.jsonl"
    file_path = tmp_path / "file.jsonl"
    from surgewatch.alerting.sinks import FileSink
    sinks = [StdoutSink(stream=out), FileSink(str(file_path)), WebhookSink(rx.url, {}, 2.0),
             CommandSink(["sh", "-c", f"cat >> {got}; echo >> {got}"], 5.0)]
    d = Dispatcher(sinks, Outbox(tmp_path), retry=FAST)
    d.start()
    try:
        d.submit([ev(1), odd, ev(3)])  # before: the outbox could not store the tick's events at all
        await _until(lambda: d.outbox.count(state=DELIVERED) == 12)
        assert d.outbox.count(state=DEAD) == 0
        assert [e.summary for e in d.outbox.dead_letters()] == []
    finally:
        await d.drain(2)
        rx.stop()
    assert rx.keys() == [event_key(e) for e in (ev(1), odd, ev(3))]
    for path in (file_path, got):
        docs = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        assert [x["key"] for x in docs] == [event_key(e) for e in (ev(1), odd, ev(3))]
        assert docs[1]["summary"] == "web-2 ? from a JSON escape"


class ExplodingSink:
    """A sink with a bug: any event of series web-2 raises ValueError (not SinkError)."""

    kind = "exploding"
    name = "exploding"
    resend_interval = None

    def __init__(self) -> None:
        from surgewatch.model import Severity
        self.min_severity = Severity.INFO
        self.got: list[AlertEvent] = []
        self.tries = 0

    async def send(self, events: Sequence[AlertEvent]) -> None:
        for e in events:
            if "web-2/" in e.series:
                self.tries += 1
                raise ValueError("embedded null byte")
            self.got.append(e)

    async def resend(self, active: Sequence[AlertEvent]) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_any_sink_exception_parks_the_event_as_a_dead_letter_without_blocking_the_rest(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sink = ExplodingSink()
    d = Dispatcher([sink], Outbox(tmp_path), ids=["x"], retry=FAST)
    d.start()
    with caplog.at_level(logging.ERROR, "surgewatch.alerting"):
        d.submit([ev(i) for i in range(1, 6)])
        await _until(lambda: {e.series for e in sink.got} == {ev(i).series for i in (1, 3, 4, 5)})
        await _until(lambda: d.outbox.count(state=DEAD) == 1)
    (dead,) = d.outbox.dead_letters()
    assert dead.key == event_key(ev(2)) and "ValueError: embedded null byte" in dead.reason and dead.attempts == 3
    assert sink.tries == 4  # once in the batch, then three times alone
    # A sink that names no event is retried one event at a time: at most the events before the poison
    # in the first batch are sent twice; everything after it exactly once.
    assert [e.series for e in sink.got].count(ev(3).series) == 1
    dead_lines = [r.getMessage() for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert len(dead_lines) == 1 and "\n" not in dead_lines[0] and event_key(ev(2)) in dead_lines[0]
    assert d.dead_letters() == {"x": 1}
    await d.drain(2)


@pytest.mark.parametrize("status", [400, 404, 410, 422])
async def test_webhook_refusing_an_event_for_good_dead_letters_it_after_bounded_attempts(
        tmp_path: Path, status: int) -> None:
    rx = Receiver().start()
    poison = event_key(ev(2))
    rx.status_for = lambda key: status if key == poison else None
    d = Dispatcher([WebhookSink(rx.url, {}, 2.0)], Outbox(tmp_path), ids=["hook"], retry=FAST)
    d.start()
    try:
        d.submit([ev(i) for i in range(1, 6)])
        await _until(lambda: len(rx.keys()) == 4 and d.outbox.count(state=DEAD) == 1)
        assert rx.keys() == [event_key(ev(i)) for i in (1, 3, 4, 5)]  # in order, each once
        assert rx.tries[poison] == 3
        (dead,) = d.outbox.dead_letters("hook")
        assert f"HTTP {status}" in dead.reason
    finally:
        await d.drain(2)
        rx.stop()


@pytest.mark.parametrize("status", [408, 429, 500, 503])
async def test_webhook_answering_a_temporary_error_is_retried_past_the_dead_letter_bound(
        tmp_path: Path, status: int) -> None:
    rx = Receiver().start()
    slow = event_key(ev(2))
    rx.status_for = lambda key: status if key == slow and rx.tries.get(key, 0) < 5 else None
    d = Dispatcher([WebhookSink(rx.url, {}, 2.0)], Outbox(tmp_path), ids=["hook"], retry=FAST)
    d.start()
    try:
        d.submit([ev(i) for i in range(1, 4)])
        await _until(lambda: len(rx.keys()) == 3)
        assert rx.keys() == [event_key(ev(i)) for i in (1, 2, 3)]
        assert rx.tries[slow] == 6 and d.outbox.count(state=DEAD) == 0
    finally:
        await d.drain(2)
        rx.stop()


class RefusingServer(CannedHttpServer):
    """Answers 400 to any POST whose body contains `marker`, else `ok_status`; keeps the bodies."""

    def __init__(self, path: str, marker: str, ok_status: int = 200) -> None:
        self.bodies: list[Any] = []

        def answer(h: BaseHTTPRequestHandler) -> Route:
            body = getattr(h, "body", b"")
            self.bodies.append(json.loads(body))
            if marker.encode() in body:
                return 400, {"Content-Type": "text/plain"}, b"invalid_payload"
            return ok_status, {"Content-Type": "text/plain"}, b"ok"

        super().__init__({path: answer})


async def test_slack_refusing_a_grouped_message_isolates_and_dead_letters_only_the_bad_event(
        tmp_path: Path) -> None:
    with RefusingServer("/slack", "web-2 CPU") as srv:
        d = Dispatcher([SlackSink(srv.url + "/slack", {}, 2.0)], Outbox(tmp_path), ids=["slack"], retry=FAST)
        d.start()
        d.submit([ev(i) for i in range(1, 5)])  # one rule, one transition: one grouped message
        await _until(lambda: d.outbox.count(state=DELIVERED) == 3 and d.outbox.count(state=DEAD) == 1)
        assert d.outbox.count(state=PENDING) == 0
        await d.drain(2)
    delivered = " | ".join(b["text"] for b in srv.bodies if "web-2 CPU" not in b["text"])
    assert [delivered.count(f"web-{i} CPU") for i in (1, 2, 3, 4)] == [1, 0, 1, 1]  # each once, web-2 never


async def test_alertmanager_refusing_an_array_isolates_and_dead_letters_only_the_bad_alert(tmp_path: Path) -> None:
    with RefusingServer("/api/v2/alerts", "web-3 CPU") as srv:
        sink = AlertmanagerSink(srv.url, {}, 2.0, resend_interval=3600)
        d = Dispatcher([sink], Outbox(tmp_path), ids=["am"], retry=FAST)
        d.start()
        d.submit([ev(i) for i in range(1, 5)])
        await _until(lambda: d.outbox.count(state=DELIVERED) == 3 and d.outbox.count(state=DEAD) == 1)
        await d.drain(2)
    (dead,) = Outbox(tmp_path).dead_letters()
    assert dead.key == event_key(ev(3)) and "HTTP 400" in dead.reason


# ---------------------------------------------------------------------------------------------
# Clocks


def test_steady_wall_clock_never_goes_back_and_takes_steps_forward() -> None:
    wall, mono = [1_795_000_000.0], [100.0]
    clock = SteadyWallClock(lambda: wall[0], lambda: mono[0])
    assert clock() == 1_795_000_000.0
    wall[0] -= 3600  # NTP or an operator steps the clock back an hour
    mono[0] += 10
    assert clock() == 1_795_000_010.0  # carried on the monotonic clock
    wall[0] += 3600 + 20
    mono[0] += 20
    assert clock() == 1_795_000_030.0
    wall[0] += 500  # a step forward is real time as far as anyone else can tell: taken
    mono[0] += 1
    assert clock() == 1_795_000_520.0


async def test_alertmanager_ends_at_stays_ahead_after_the_wall_clock_steps_back(tmp_path: Path) -> None:
    wall, mono = [1_795_000_100.0], [100.0]
    with RefusingServer("/api/v2/alerts", "never") as srv:
        sink = AlertmanagerSink(srv.url, {}, 2.0, resend_interval=60,
                                clock=SteadyWallClock(lambda: wall[0], lambda: mono[0]))
        await sink.send([ev(1)])
        wall[0] -= 3600
        mono[0] += 60
        await sink.resend([ev(1)])
        await sink.close()
    from datetime import datetime
    first, again = (datetime.fromisoformat(b[0]["endsAt"].replace("Z", "+00:00")).timestamp() for b in srv.bodies)
    assert again >= first + 59  # later, not an hour earlier: Alertmanager keeps the alert firing


async def test_alertmanager_resends_follow_the_monotonic_clock(tmp_path: Path) -> None:
    mono = [0.0]

    class Resending(ExplodingSink):
        resend_interval = 60.0

        def __init__(self) -> None:
            super().__init__()
            self.resent = 0

        async def resend(self, active: Sequence[AlertEvent]) -> None:
            self.resent += 1

    sink = Resending()
    d = Dispatcher([sink], Outbox(tmp_path), ids=["am"], retry=FAST, clock=lambda: mono[0])
    default = Dispatcher([], Outbox(None), ids=[]).health.clock
    assert abs(default() - time.monotonic()) < 10 * 365 * 86400 < time.time()  # elapsed time, not wall time
    d.start()
    d.submit([ev(1)])
    await _until(lambda: len(sink.got) == 1)
    await asyncio.sleep(0.1)
    assert sink.resent == 0
    for n in (1, 2):
        mono[0] += 61  # wall time is not consulted at all: a step back cannot hold re-sends up
        d.submit([ev(10 + n)])  # wakes the lane
        await _until(lambda n=n: sink.resent == n)
    await d.drain(2)


# ---------------------------------------------------------------------------------------------
# Corrupt outbox at start, proxies, shutdown errors


def test_daemon_starts_on_a_corrupt_outbox_after_moving_it_aside(tmp_path: Path) -> None:
    source = faultkit.FlipSource()
    rx = Receiver().start()
    config = faultkit.headless_config(tmp_path / "c.toml", source, rx.url, series=1)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "outbox.sqlite3").write_bytes(b"garbage, not SQLite " * 200)
    log_path = tmp_path / "daemon.log"
    proc = faultkit.start_daemon(config, log_path)
    try:
        wait_until(lambda: len(rx.keys()) >= 2 or None, 30, "deliveries with a fresh outbox")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        rx.stop()
        source.close()
    lines = [x for x in log_path.read_text().splitlines() if "corrupt" in x]
    assert len(lines) == 1 and "moved aside to outbox.sqlite3.corrupt-" in lines[0], lines
    assert len(list((tmp_path / "state").glob("outbox.sqlite3.corrupt-*"))) == 1


async def test_http_sinks_ignore_proxy_variables_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rx = Receiver().start()
    with closed_port() as dead:
        for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(var, f"http://127.0.0.1:{dead}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        sink = WebhookSink(rx.url, {}, 2.0)
        try:
            await sink.send([ev(1)])
        finally:
            await sink.close()
            rx.stop()
    assert rx.keys() == [event_key(ev(1))]


async def test_configured_sink_proxy_carries_the_delivery(tmp_path: Path) -> None:
    hook = "http://127.0.0.1:9/hook"  # never contacted directly: the proxy answers for it
    with CannedHttpServer({hook: (200, {}, b"")}) as proxy:
        cfg = parse_config(f'[[sink]]\nkind = "webhook"\nurl = "{hook}"\nproxy = "{proxy.url}"\n')
        sink = build_sink(cfg.sinks[0])
        try:
            await sink.send([ev(1)])
        finally:
            await sink.close()
    assert [(m, p) for m, p, _h in proxy.requests] == [("POST", hook)]


def test_proxy_on_a_sink_that_does_not_speak_http_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[[sink]]\nkind = "stdout"\nproxy = "http://127.0.0.1:3128"\n')
    assert "proxy applies only to" in str(info.value) and "\n" not in str(info.value)


async def test_shutdown_logs_an_exporter_that_fails_to_stop_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    class BadExporter:
        def stop(self) -> None:
            raise RuntimeError("port already closed\nsecond line")

    from surgewatch.config import Config
    d = headless.Daemon(Config(), None, 1.0)
    d.exporter = BadExporter()  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, "surgewatch.headless"):
        await d._stop_export()
    (line,) = [r.getMessage() for r in caplog.records]
    assert "stopping the /metrics exporter failed: RuntimeError" in line


def test_closing_the_loop_logs_a_failure_in_one_line_instead_of_swallowing_it(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.new_event_loop()

    async def broken() -> None:
        raise RuntimeError("loop is in a bad state")

    monkeypatch.setattr(loop, "shutdown_asyncgens", broken)
    with caplog.at_level(logging.WARNING, "surgewatch.headless"):
        headless._close_loop(loop)
    (line,) = [r.getMessage() for r in caplog.records]
    assert "closing async generators failed: RuntimeError: loop is in a bad state" in line
    assert loop.is_closed()


# ---------------------------------------------------------------------------------------------
# Outage and kill -9 (short versions of benchmarks/fault_bench.py)


def test_webhook_outage_then_recovery_delivers_everything_once(tmp_path: Path) -> None:
    fig = faultkit.run_sink_outage(tmp_path, seconds=10.0, retry=RetryPolicy(0.2, 2.0, 2.0, 0.0))
    assert (fig.lost, fig.duplicated) == (0, 0), fig
    assert fig.details["attempts_during_outage"] <= 12, fig  # backoff, not a hot loop
    assert fig.details["warning_lines"] <= 2, fig


def test_kill_9_of_the_daemon_during_delivery_loses_nothing(tmp_path: Path) -> None:
    fig = faultkit.run_kill9(tmp_path, kills=3)
    assert fig.lost == 0 and fig.details["pending_at_end"] == 0 and fig.details["exit_code"] == 0, fig
    assert fig.details["unknown_receipts"] == 0, fig
    assert fig.duplicated <= 3 * 50, fig  # at most the batch on its way at each kill
    assert fig.alerts >= 30, fig
