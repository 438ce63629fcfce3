"""`surgewatch --headless` as a real subprocess: alerts on stdout, signals, reloads, export, startup errors.

A loopback JSON endpoint stands in for a traffic source whose value the test moves. Runtime: about 15 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


class Stats:
    """A loopback JSON endpoint: {"v": value}, value set by the test."""

    def __init__(self) -> None:
        self.value = 10.0
        stats = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"v": stats.value}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stats"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stats() -> Iterator[Stats]:
    s = Stats()
    yield s
    s.close()


RULE_BUSY = """
[[rule]]
name = "api-busy"
series = "traffic:api/visitors"
above = 100
clear = 50
severity = "critical"
"""

RULE_QUIET = """
[[rule]]
name = "api-quiet"
series = "traffic:api/visitors"
below = 5
severity = "warning"
"""


def write_config(path: Path, stats: Stats, rules: str = RULE_BUSY, extra: str = "") -> Path:
    path.write_text(f"""
[monitor]
interval = "100ms"
state_dir = "{path.parent / 'state'}"

[[traffic]]
name = "api"
source = "json"
url = "{stats.url}"
value = "v"
interval = "100ms"
{rules}
{extra}
""")
    return path


class Daemon:
    """A running `surgewatch --headless` with its stdout lines and stderr collected by threads."""

    def __init__(self, config: Path, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=SRC, XDG_STATE_HOME=str(config.parent / "xdg"))
        self.proc = subprocess.Popen([sys.executable, "-m", "surgewatch", "--headless", "--config", str(config),
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[dict[str, Any]] = []
        self.log: list[str] = []
        self._threads = [threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True)]
        for t in self._threads:
            t.start()

    def _read(self, stream: Any, is_stdout: bool) -> None:
        for line in stream:
            if is_stdout:
                self.lines.append(json.loads(line))
            else:
                self.log.append(line.rstrip("\n"))

    def wait_for(self, check: Any, what: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"{what} did not happen; exit={self.proc.poll()} stderr={self.log[-5:]}")

    def events(self, event: str, rule: str = "api-busy") -> list[dict[str, Any]]:
        return [d for d in self.lines if d["event"] == event and d["rule"] == rule]

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, float]:
        start = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        elapsed = time.monotonic() - start
        for t in self._threads:
            t.join(timeout=2)
        return rc, elapsed

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_spike_through_a_threshold_fires_then_resolves_as_json_lines(tmp_path: Path, stats: Stats) -> None:
    d = Daemon(write_config(tmp_path / "c.toml", stats))
    try:
        d.wait_for(lambda: any("started" in line for line in d.log), "start")
        stats.value = 500.0
        (fired,) = d.wait_for(lambda: d.events("firing"), "firing line")
        stats.value = 75.0  # between clear and above: hysteresis keeps it firing
        time.sleep(0.5)
        assert d.events("resolved") == []
        stats.value = 10.0
        (resolved,) = d.wait_for(lambda: d.events("resolved"), "resolved line")
        rc, _ = d.stop()
    finally:
        d.kill()
    assert rc == 0
    for doc in (fired, resolved):
        assert {"ts", "event", "rule", "severity", "series", "value", "summary", "fingerprint"} <= set(doc)
        assert doc["series"] == "traffic:api/visitors" and doc["severity"] == "critical"
    assert fired["value"] == 500.0 and resolved["value"] == 10.0
    assert fired["fingerprint"] == resolved["fingerprint"]


def test_sigterm_exits_0_promptly_while_alerts_are_in_flight(tmp_path: Path, stats: Stats) -> None:
    # Deliveries that are stuck when SIGTERM arrives: a webhook that accepts the connection and never answers
    # (30 s timeout) and a command that sleeps; what they hold stays in the outbox for the next start.
    from tests.support.servers import SilentServer

    with SilentServer() as hook:
        extra = f"""
[[sink]]
kind = "stdout"
[[sink]]
kind = "webhook"
url = "{hook.url}/hook"
timeout = "30s"
[[sink]]
kind = "command"
command = ["sleep", "30"]
timeout = "60s"
"""
        d = Daemon(write_config(tmp_path / "c.toml", stats, extra=extra))
        try:
            d.wait_for(lambda: any("started" in line for line in d.log), "start")
            stats.value = 500.0
            d.wait_for(lambda: d.events("firing"), "firing line")
            d.wait_for(lambda: hook._conns, "the webhook delivery to be under way")
            rc, elapsed = d.stop(signal.SIGTERM)
        finally:
            d.kill()
    assert rc == 0
    assert elapsed < 2.0, f"took {elapsed:.2f}s"  # the brief's hard limit, not a speed goal
    assert any("outbox" in line for line in d.log), d.log[-4:]


def test_sigint_also_exits_0(tmp_path: Path, stats: Stats) -> None:
    d = Daemon(write_config(tmp_path / "c.toml", stats))
    try:
        d.wait_for(lambda: any("started" in line for line in d.log), "start")
        rc, _ = d.stop(signal.SIGINT)
    finally:
        d.kill()
    assert rc == 0 and "stopped" in d.log[-1]


def test_sighup_with_a_bad_config_keeps_running_and_logs_one_line(tmp_path: Path, stats: Stats) -> None:
    cfg = write_config(tmp_path / "c.toml", stats)
    d = Daemon(cfg, "--log-format", "json")
    try:
        d.wait_for(lambda: any("started" in line for line in d.log), "start")
        cfg.write_text(cfg.read_text() + '\n[[rule]]\nname = "broken"\nseries = "traffic:api/visitors"\n')
        n = len(d.log)
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda: any("reload failed" in line for line in d.log[n:]), "the reload error")
        errors = [json.loads(line) for line in d.log[n:] if "reload failed" in line]
        assert len(errors) == 1 and errors[0]["level"] == "error"
        assert 'rule "broken"' in errors[0]["message"] and "\n" not in errors[0]["message"]
        stats.value = 500.0  # the old config still runs
        d.wait_for(lambda: d.events("firing"), "firing line")
        assert d.proc.poll() is None
        rc, _ = d.stop()
    finally:
        d.kill()
    assert rc == 0


def test_sighup_with_a_good_config_picks_up_a_new_rule(tmp_path: Path, stats: Stats) -> None:
    cfg = write_config(tmp_path / "c.toml", stats)
    d = Daemon(cfg)
    try:
        d.wait_for(lambda: any("started" in line for line in d.log), "start")
        stats.value = 500.0
        d.wait_for(lambda: d.events("firing"), "firing line")
        write_config(cfg, stats, rules=RULE_BUSY + RULE_QUIET)
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda: any("reloaded" in line for line in d.log), "reload")
        assert len(d.events("firing")) == 1  # the kept rule's alert is not announced again
        stats.value = 1.0
        d.wait_for(lambda: d.events("firing", "api-quiet"), "the new rule firing")
        d.wait_for(lambda: d.events("resolved"), "the old rule resolving")
        rc, _ = d.stop()
    finally:
        d.kill()
    assert rc == 0


def test_sighup_with_a_new_source_address_polls_the_new_one(tmp_path: Path, stats: Stats) -> None:
    cfg = write_config(tmp_path / "c.toml", stats)
    d = Daemon(cfg)
    other = Stats()
    try:
        d.wait_for(lambda: any("started" in line for line in d.log), "start")
        other.value = 500.0  # only the new address reports a spike
        cfg.write_text(cfg.read_text().replace(stats.url, other.url))
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda: any("reloaded" in line for line in d.log), "reload")
        (fired,) = d.wait_for(lambda: d.events("firing"), "firing from the new source")
        assert fired["value"] == 500.0
        rc, _ = d.stop()
    finally:
        d.kill()
        other.close()
    assert rc == 0


def test_silence_added_from_the_command_line_reaches_the_running_daemon(tmp_path: Path, stats: Stats) -> None:
    cfg = write_config(tmp_path / "c.toml", stats)
    d = Daemon(cfg)
    env = dict(os.environ, PYTHONPATH=SRC)
    try:
        d.wait_for(lambda: any("started" in line for line in d.log), "start")
        out = subprocess.run([sys.executable, "-m", "surgewatch", "silence", "add", "--rule", "api-*",
                              "--series", "traffic:*", "--for", "1h", "--comment", "load test", "--config",
                              str(cfg)], capture_output=True, text=True, env=env, check=True).stdout
        sid = out.split()[0]
        time.sleep(1.3)  # the daemon polls the silence file about once a second
        stats.value = 500.0
        time.sleep(1.0)
        assert d.events("firing") == []  # silenced: fired, but not notified
        subprocess.run([sys.executable, "-m", "surgewatch", "silence", "remove", sid, "--config", str(cfg)],
                       capture_output=True, text=True, env=env, check=True)
        d.wait_for(lambda: d.events("firing"), "firing line once the silence is gone")
        rc, _ = d.stop()
    finally:
        d.kill()
    assert rc == 0


def test_export_serves_metrics_with_alert_states(tmp_path: Path, stats: Stats) -> None:
    import urllib.request

    from tests.support.servers import free_port

    port = free_port()
    cfg = write_config(tmp_path / "c.toml", stats, extra=f'[export]\nlisten = "127.0.0.1:{port}"\n')
    d = Daemon(cfg)
    try:
        d.wait_for(lambda: any("started" in line for line in d.log), "start")
        stats.value = 500.0
        d.wait_for(lambda: d.events("firing"), "firing line")

        def scrape() -> str | None:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            return body if 'alertname="api-busy"' in body else None

        body = d.wait_for(scrape, "the alert in /metrics")
        assert 'surgewatch_value{kind="traffic",metric="visitors",name="api",series="traffic:api/visitors"}' in body
        from surgewatch.analysis import DEFAULT_LIVE_DETECTOR

        assert f'surgewatch_detector_info{{detector="{DEFAULT_LIVE_DETECTOR}"}} 1.0' in body
        rc, _ = d.stop()
    finally:
        d.kill()
    assert rc == 0


@pytest.mark.parametrize("case", ["state_dir", "export"])
def test_startup_errors_are_one_line_and_exit_2(tmp_path: Path, stats: Stats, case: str) -> None:
    cfg = write_config(tmp_path / "c.toml", stats)
    if case == "state_dir":
        (tmp_path / "state").write_text("a file where the state dir should be")
    else:
        blocker = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        port = blocker.server_address[1]
        cfg = write_config(cfg, stats, extra=f'[export]\nlisten = "127.0.0.1:{port}"\n')
    env = dict(os.environ, PYTHONPATH=SRC)
    try:
        p = subprocess.run([sys.executable, "-m", "surgewatch", "--headless", "--config", str(cfg)],
                           capture_output=True, text=True, env=env, timeout=20)
    finally:
        if case == "export":
            blocker.server_close()
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    errors = [line for line in p.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1
    assert ("state dir" in errors[0]) if case == "state_dir" else ("cannot listen" in errors[0])
