"""The HTTP wire (httpx over aiohttp's llhttp, surgewatch.httpclient) against a raw loopback TCP server.

Each crafted response must make the poll an error with one line saying what was wrong: never a value, never a
hang. What llhttp does with obs-fold and bare-LF headers, which real servers still send, is pinned here too.
Runtime: about 2 s.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import tracemalloc

import pytest

from surgewatch.sources.base import SourceError
from surgewatch.sources.http import HttpPoller
from tests.support.servers import ScriptedServer, SilentServer, closed_port

SECRET = "s3cr3t-query-t0ken"


def ok(body: bytes = b'{"n": 1}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def poll(url: str, **kw) -> str:
    p = HttpPoller(label="host:web-1", timeout=kw.pop("timeout", 2.0), retries=kw.pop("retries", 0), **kw)
    try:
        return await p.get_text(url + f"/metrics?token={SECRET}")
    finally:
        await p.aclose()


MALFORMED = {
    "two different Content-Length": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 2\r\n\r\nabcd", "Duplicate Content-Length"),
    "Content-Length +4": (b"HTTP/1.1 200 OK\r\nContent-Length: +4\r\n\r\nabcd", "Invalid character in Content-Length"),
    "Content-Length 1_0": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n\r\nabcdefghij", "Invalid character in Content-Length"),
    "Content-Length -1": (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nabcd", "Invalid character in Content-Length"),
    "Content-Length with chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
        "Transfer-Encoding can't be present with Content-Length"),
    "chunk size -1": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabcd\r\n0\r\n\r\n",
                      "Invalid character in chunk size"),
    "chunk size 0x4": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x4\r\nabcd\r\n0\r\n\r\n",
                       "Invalid character in chunk size"),
    "chunk size 1_0": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n",
                       "Invalid character in chunk size"),
    "chunk not followed by CRLF": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdXX0\r\n\r\n",
                                   "Expected LF after chunk data"),
    "NUL byte in a header value": (b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 4\r\n\r\nabcd",
                                   "Invalid HTTP header"),
    "space in a header name": (b"HTTP/1.1 200 OK\r\nX A: b\r\nContent-Length: 4\r\n\r\nabcd", "Invalid header token"),
    "control byte in a header name": (b"HTTP/1.1 200 OK\r\nX\x01A: b\r\nContent-Length: 4\r\n\r\nabcd",
                                      "Invalid header token"),
    "space before the colon": (b"HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 4\r\n\r\nabcd", "Invalid header token"),
    "status 2000": (b"HTTP/1.1 2000 OK\r\nContent-Length: 4\r\n\r\nabcd", "Invalid response status"),
    "status 099": (b"HTTP/1.1 099 OK\r\nContent-Length: 4\r\n\r\nabcd", "status 099 is not an HTTP status"),
    "not HTTP at all": (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "Bad status line"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_a_malformed_response_is_a_one_line_error_naming_the_fault(name):
    answer, fault = MALFORMED[name]
    srv = ScriptedServer(lambda c, r, h: answer)
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        await poll(srv.url, timeout=5.0, retries=2)
    srv.close()
    msg = str(info.value)
    assert time.monotonic() - started < 2.0  # never waits for the timeout (Content-Length: -1 used to hang)
    assert msg.startswith("host:web-1: server broke the HTTP protocol: malformed response")
    assert fault in msg
    assert "\n" not in msg and SECRET not in msg and "token=***" in msg
    assert srv.connections == 1  # not retried: the same server sends the same bytes


async def test_obs_fold_headers_are_unfolded_and_the_body_is_read():
    # RFC 9112 §5.2: a client must accept obs-fold and may replace it with spaces; llhttp keeps the value joined.
    srv = ScriptedServer(lambda c, r, h: b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\nContent-Length: 4\r\n\r\nabcd")
    p = HttpPoller(label="t", timeout=2.0, retries=0)
    resp = await p.request("GET", srv.url)
    await p.aclose()
    srv.close()
    assert resp.body == b"abcd"
    assert resp.headers["x-folded"].split() == ["a", "b"]


async def test_bare_lf_line_endings_are_accepted_as_real_servers_send_them():
    srv = ScriptedServer(lambda c, r, h: b"HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 4\n\nabcd")
    assert await poll(srv.url) == "abcd"
    srv.close()


async def test_a_body_cut_short_is_an_error_not_a_truncated_value():
    srv = ScriptedServer(lambda c, r, h: (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"{" * 10, True))
    with pytest.raises(SourceError, match="connection lost while reading the body"):
        await poll(srv.url)
    srv.close()


async def test_a_server_disconnect_is_named_as_such_not_as_a_connect_timeout():
    srv = ScriptedServer(lambda c, r, h: None)  # reads the request, hangs up without a byte
    with pytest.raises(SourceError) as info:
        await poll(srv.url)
    srv.close()
    assert "server disconnected without sending a complete response" in str(info.value)
    assert "timed out" not in str(info.value)


async def test_refused_and_timeouts_each_have_their_own_line():
    with closed_port() as port, pytest.raises(SourceError, match=f"connection refused by 127.0.0.1:{port} "):
        await poll(f"http://127.0.0.1:{port}")
    with SilentServer() as silent, pytest.raises(SourceError, match=r"timed out after 300ms \(GET"):
        await poll(silent.url, timeout=0.3)


class IdleFlood:
    """Answers the first request, then, while the connection sits idle, sends `piece` 40 times (40 MiB)."""

    def __init__(self, piece: bytes) -> None:
        self.piece = piece
        self.sent = 0
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections == 1), daemon=True).start()

    def _serve(self, conn: socket.socket, flood: bool) -> None:
        with conn:
            try:
                while conn.recv(65536):
                    conn.sendall(ok())
                    if flood:
                        time.sleep(0.2)  # the client has read its answer: the connection is idle now
                        conn.settimeout(1.0)
                        for _ in range(40):
                            conn.sendall(self.piece)
                            self.sent += len(self.piece)
                        return
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("kind", ["empty responses", "one 40 MiB response", "junk"])
async def test_an_idle_keep_alive_connection_never_buffers_what_the_server_pushes(kind):
    piece = {"empty responses": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" * 27594,
             "one 40 MiB response": b"y" * (1 << 20), "junk": b"x" * (1 << 20)}[kind]
    srv = IdleFlood(piece)
    if kind == "one 40 MiB response":
        srv.piece = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (40 << 20) + piece[:-64]
    p = HttpPoller(label="t", timeout=3.0, retries=0)
    tracemalloc.start()
    try:
        assert await p.get_text(srv.url) == '{"n": 1}'
        base = tracemalloc.get_traced_memory()[0]
        await asyncio.sleep(1.0)  # the flood arrives on the idle connection
        held = tracemalloc.get_traced_memory()[0] - base
        # The next poll is answered by its own response, on a new connection, never by a pushed one.
        assert await p.get_text(srv.url) == '{"n": 1}'
    finally:
        tracemalloc.stop()
        await p.aclose()
        srv.close()
    assert held < 2 << 20, f"{held / 2**20:.1f} MiB held for an idle connection"
    assert srv.sent < 16 << 20  # the connection was dropped, not drained
    assert srv.connections == 2


async def test_an_idle_connection_past_the_keep_alive_expiry_is_not_reused():
    from surgewatch.httpclient import new_client

    srv = ScriptedServer(lambda c, r, h: ok())
    client = new_client(max_connections=2, keepalive_expiry=0.2)
    p = HttpPoller(label="t", timeout=2.0, client=client)
    try:
        await p.get_text(srv.url)
        await p.get_text(srv.url)
        assert srv.connections == 1  # kept alive between polls close together
        await asyncio.sleep(0.6)
        await p.get_text(srv.url)
        assert srv.connections == 2  # past the expiry: a fresh connection
    finally:
        await p.aclose()
        await client.aclose()
        srv.close()
