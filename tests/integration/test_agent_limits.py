"""`surgewatch agent` bounds its threads, closes idle or half-sent connections, and warns when exposed."""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from surgewatch import agent
from tests.support.servers import http_get


@pytest.fixture
def small_agent() -> Iterator[agent.AgentServer]:
    server = agent.AgentServer(("127.0.0.1", 0), max_connections=8, timeout=0.5)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)


def test_200_half_sent_requests_hold_a_bounded_number_of_threads(small_agent: agent.AgentServer) -> None:
    before = threading.active_count()
    port = small_agent.server_address[1]
    socks = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            socks.append(s)
        time.sleep(0.2)
        assert threading.active_count() - before <= 8
        assert small_agent.refused >= 150
    finally:
        for s in socks:
            s.close()


def test_a_half_sent_request_is_closed_after_the_timeout_and_service_resumes(
        small_agent: agent.AgentServer) -> None:
    port = small_agent.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        started = time.monotonic()
        assert s.recv(100) == b""  # the server hung up
        assert time.monotonic() - started < 3
    status, body = http_get(small_agent.url, timeout=3)
    assert status == 200 and b"node_load1 " in body


@pytest.mark.parametrize(("listen", "token", "warns"), [
    ("0.0.0.0:9273", None, True), ("[::]:9273", None, True), ("10.1.2.3:9273", None, True),
    ("web-1.internal:9273", None, True), ("0.0.0.0:9273", "t0ken", False), ("127.0.0.1:9273", None, False),
    ("localhost:9273", None, False), ("[::1]:9273", None, False), ("127.0.0.2:9273", None, False),
])
def test_listening_off_loopback_without_a_token_warns(listen: str, token: str | None, warns: bool) -> None:
    line = agent.exposure_warning(listen, token)
    assert (line is not None) == warns
    if line:
        assert "without --token-file" in line and "\n" not in line


def test_run_prints_the_warning_once_before_serving(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # The warning depends on the --listen text only; the server itself binds loopback (tests stay on 127.0.0.1).
    real = agent.serve("127.0.0.1:0")
    real.serve_forever = lambda poll_interval=0.5: None  # type: ignore[method-assign]
    monkeypatch.setattr(agent, "serve", lambda listen, token: real)
    assert agent.run(argparse.Namespace(listen="0.0.0.0:9273", token_file=None)) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("surgewatch agent: warning: listening on 0.0.0.0:9273 without --token-file")
    assert err[1].startswith("surgewatch agent: serving")
