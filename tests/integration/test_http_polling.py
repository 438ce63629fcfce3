"""The shared HTTP polling layer against real loopback servers: success, every failure kind, secrets, sharing.

Runtime: about 3 s (one deliberate 0.5-1 s timeout per timeout test).
"""

from __future__ import annotations

import asyncio
import socket
import threading

import httpx
import pytest

from surgewatch.sources.base import SourceError
from surgewatch.sources.http import HttpPoller, as_number, client_key, dig, redact_url, shared_client
from surgewatch.sources.probe import ProbeSource
from surgewatch.sources.prometheus import PrometheusHostSource
from tests.support.servers import CannedHttpServer, ScriptedServer, SilentServer, closed_port

JSON = {"Content-Type": "application/json"}
SECRET = "s3cr3t-T0ken-value"


@pytest.fixture
def server():
    routes = {
        "/ok": (200, JSON, b'{"data": {"visitors": 42, "items": [{"n": "7"}]}}'),
        "/html": (200, {"Content-Type": "text/html"}, b"<html><body>login</body></html>"),
        "/unauthorized": (401, JSON, b'{"error": "bad token"}'),
        "/forbidden": (403, JSON, b'{"error": "no"}'),
        "/missing": (404, {}, b"nope"),
        "/broken": (500, {}, b"boom"),
        "/busy": (503, {}, b"later"),
        "/big": (200, JSON, b"[" + b"1," * 600_000 + b"1]"),
        "/echo": lambda h: (200, JSON, b'{"method": "%s", "body": "%s"}' % (h.command.encode(), h.body)),
    }
    with CannedHttpServer(routes) as srv:
        yield srv


def poller(srv: CannedHttpServer, **kw) -> HttpPoller:
    kw.setdefault("timeout", 2.0)
    return HttpPoller(label="traffic:site", base_url=srv.url, **kw)


async def test_get_json_returns_the_document_and_records_success(server):
    p = poller(server)
    doc = await p.get_json("/ok")
    assert dig(doc, "data.visitors") == 42
    assert as_number(dig(doc, "data.items.0.n")) == 7.0
    assert p.last_success is not None
    await p.aclose()


async def test_post_json_sends_a_form_body(server):
    p = poller(server)
    doc = await p.post_json("/echo", data={"module": "API", "token_auth": "abc"})
    assert doc["method"] == "POST"
    assert "module=API" in doc["body"]
    await p.aclose()


@pytest.mark.parametrize("path", ["/unauthorized", "/forbidden"])
async def test_401_and_403_are_named_as_an_auth_problem_without_leaking_the_token(server, path):
    p = poller(server, headers={"Authorization": f"Bearer {SECRET}"})
    with pytest.raises(SourceError) as err:
        await p.get_json(f"{path}?token={SECRET}&site=x")
    msg = str(err.value)
    assert "authentication failed" in msg and "traffic:site" in msg
    assert SECRET not in msg and "\n" not in msg
    assert "token=***" in msg
    await p.aclose()


async def test_server_errors_are_retried_then_reported(server):
    p = poller(server, retries=2)
    with pytest.raises(SourceError, match="HTTP 500"):
        await p.get_json("/broken")
    assert sum(1 for r in server.requests if r[1] == "/broken") == 3
    await p.aclose()


async def test_client_errors_are_not_retried(server):
    p = poller(server, retries=3)
    with pytest.raises(SourceError, match="HTTP 404"):
        await p.get_json("/missing")
    assert sum(1 for r in server.requests if r[1] == "/missing") == 1
    await p.aclose()


async def test_non_json_body_is_one_clear_line(server):
    p = poller(server)
    with pytest.raises(SourceError, match=r"not JSON \(text/html, starts '<html><body>login"):
        await p.get_json("/html")
    await p.aclose()


async def test_body_over_the_size_cap_is_refused(server):
    p = poller(server, max_bytes=64 * 1024)
    with pytest.raises(SourceError, match="over the 64 KiB limit"):
        await p.get_json("/big")
    await p.aclose()


class EndlessServer:
    """Answers 200 without Content-Length and streams bytes until the client hangs up (bounded to 64 MiB)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.sent = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
            chunk = b"x" * 65536
            try:
                while self.sent < 64 * 1024 * 1024:
                    conn.sendall(chunk)
                    self.sent += len(chunk)
            except OSError:
                return


async def test_a_body_without_length_stops_being_read_past_the_cap():
    srv = EndlessServer()
    p = HttpPoller(label="host:x", timeout=5.0, max_bytes=256 * 1024)
    with pytest.raises(SourceError, match="stopped reading"):
        await p.get_text(srv.url + "/metrics")
    await p.aclose()
    assert srv.sent < 64 * 1024 * 1024
    srv.sock.close()


async def test_refused_connection_is_named():
    with closed_port() as port:
        p = HttpPoller(label="host:x", timeout=1.0, retries=1)
        with pytest.raises(SourceError, match=f"connection refused by 127.0.0.1:{port}"):
            await p.get_text(f"http://127.0.0.1:{port}/metrics")
        await p.aclose()


async def test_a_server_that_never_answers_times_out_within_the_poll_timeout():
    with SilentServer() as silent:
        p = HttpPoller(label="host:x", timeout=0.5, retries=3)
        with pytest.raises(SourceError, match="timed out after 500ms"):
            await p.get_text(silent.url + "/metrics")
        await p.aclose()


async def test_dns_failure_is_named():
    def fail(request: httpx.Request) -> httpx.Response:
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError("[Errno -2] Name or service not known", request=request) from exc

    client = httpx.AsyncClient(transport=httpx.MockTransport(fail))
    p = HttpPoller(label="host:x", timeout=1.0, retries=0, client=client)
    with pytest.raises(SourceError, match=r"DNS lookup failed for shop\.example"):
        await p.get_json("http://shop.example/stats")
    await p.aclose()
    assert not client.is_closed  # a client passed in belongs to the caller
    await client.aclose()


async def test_invalid_url_scheme_is_reported():
    p = HttpPoller(label="host:x", timeout=1.0)
    with pytest.raises(SourceError, match="http:// or https://"):
        await p.get_json("ftp://127.0.0.1/x")
    await p.aclose()


def test_redact_url_hides_secret_query_values_and_userinfo():
    url = "http://user:pw@127.0.0.1:8080/api?module=API&token_auth=abc&api_key=k&x_api_key=z&site=3"
    out = redact_url(url)
    assert out == "http://127.0.0.1:8080/api?module=API&token_auth=***&api_key=***&x_api_key=***&site=3"


def test_dig_names_the_missing_step():
    with pytest.raises(SourceError, match=r"no 'data.realtime' \(keys there: items, visitors\)"):
        dig({"data": {"visitors": 1, "items": []}}, "data.realtime.visitors")
    with pytest.raises(SourceError, match="is a list, cannot take 'x'"):
        dig({"a": [1]}, "a.x")


@pytest.mark.parametrize("value,expected", [(3, 3.0), ("12", 12.0), (" 1.5e3 ", 1500.0), (0.25, 0.25)])
def test_as_number_accepts_numbers_and_numeric_strings(value, expected):
    assert as_number(value) == expected


@pytest.mark.parametrize("value", ["abc", None, True, [1], "nan", {"a": 1}])
def test_as_number_rejects_everything_else(value):
    with pytest.raises(SourceError):
        as_number(value, "visitors")


async def test_pollers_of_one_server_share_one_client_until_the_last_closes(server):
    a, b = poller(server), poller(server)
    await a.get_json("/ok")
    await b.get_json("/ok")
    assert a._client is b._client
    shared = a._client
    await a.aclose()
    assert not shared.is_closed
    await b.aclose()
    assert shared.is_closed
    c = shared_client(client_key(server.url))
    assert c is not shared and not c.is_closed
    await c.aclose()


async def test_a_slow_source_does_not_delay_another(server):
    with SilentServer() as silent:
        slow = PrometheusHostSource("stuck", silent.url + "/metrics", interval=1.0, timeout=3.0)
        fast = ProbeSource("shop", server.url + "/ok", interval=1.0, timeout=3.0)
        slow_task = asyncio.create_task(slow.poll())
        fast_task = asyncio.create_task(fast.poll())
        done, pending = await asyncio.wait({slow_task, fast_task}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {fast_task} and pending == {slow_task}
        assert fast_task.result().values["probe:shop/up"] == 1.0
        slow_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow_task
        await slow.close()
        await fast.close()


# ---------------------------------------------------------------------------------------------
# The wire (aiohttp under httpx, see surgewatch.httpclient) against a loopback server that answers raw bytes


def ok(body: bytes = b'{"n": 1}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def fetch_all(url: str, n: int, **kw) -> list[str]:
    p = HttpPoller(label="t", timeout=2.0, **kw)
    try:
        return [await p.get_text(url) for _ in range(n)]
    finally:
        await p.aclose()


async def test_keep_alive_reuses_one_connection():
    srv = ScriptedServer(lambda c, r, h: ok())
    assert await fetch_all(srv.url + "/x", 5) == ['{"n": 1}'] * 5
    assert srv.connections == 1
    srv.close()


async def test_chunked_bodies_with_extensions_and_trailers_are_decoded():
    body = b"4;ext=1\r\nnode\r\n6\r\n_load1\r\n0\r\nX-Trailer: y\r\n\r\n"
    srv = ScriptedServer(lambda c, r, h: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert await fetch_all(srv.url, 2) == ["node_load1"] * 2
    assert srv.connections == 1
    srv.close()


async def test_gzip_bodies_are_decoded():
    import gzip

    packed = gzip.compress(b"node_load1 0.5\n")
    srv = ScriptedServer(lambda c, r, h: ok(packed, b"Content-Encoding: gzip\r\n"))
    assert await fetch_all(srv.url, 1) == ["node_load1 0.5\n"]
    srv.close()


async def test_a_keep_alive_connection_closed_by_the_server_is_replaced_transparently():
    # The server answers once per connection, then hangs up without saying so (an idle-timeout race).
    srv = ScriptedServer(lambda c, r, h: ok() if r == 1 else None)
    assert await fetch_all(srv.url, 3, retries=0) == ['{"n": 1}'] * 3
    assert srv.connections == 3
    srv.close()


async def test_bodies_without_length_are_read_until_close_and_close_is_honoured():
    old = ScriptedServer(lambda c, r, h: (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold", True))
    assert await fetch_all(old.url, 2, retries=0) == ["old"] * 2
    assert old.connections == 2
    old.close()
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye"
    bye = ScriptedServer(lambda c, r, h: (closing, True))
    assert await fetch_all(bye.url, 2, retries=0) == ["bye"] * 2
    assert bye.connections == 2
    bye.close()


async def test_informational_responses_are_skipped_and_bodiless_responses_reuse_the_connection():
    def respond(c, r, h):
        if r == 1:
            return b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"after 100")
        if h.startswith(b"HEAD"):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
        if r == 3:
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        return ok(b"last")

    srv = ScriptedServer(respond)
    p = HttpPoller(label="t", timeout=2.0)
    assert await p.get_text(srv.url) == "after 100"
    head = await p.request("HEAD", srv.url)
    assert head.status == 200 and head.body == b""
    assert (await p.request("GET", srv.url + "/empty")).status == 204
    assert await p.get_text(srv.url + "/last") == "last"
    await p.aclose()
    assert srv.connections == 1
    srv.close()


async def test_a_response_that_is_not_http_is_a_protocol_error():
    srv = ScriptedServer(lambda c, r, h: b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    p = HttpPoller(label="t", timeout=2.0, retries=0)
    with pytest.raises(SourceError, match=r"server broke the HTTP protocol: malformed response: Bad status line"):
        await p.get_text(srv.url)
    await p.aclose()
    srv.close()


async def test_a_body_cut_short_is_an_error_not_a_truncated_value():
    short = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"{" * 10
    srv = ScriptedServer(lambda c, r, h: (short, True))
    p = HttpPoller(label="t", timeout=2.0, retries=0)
    with pytest.raises(SourceError, match="connection lost while reading the body"):
        await p.get_text(srv.url)
    await p.aclose()
    srv.close()


async def test_the_connection_limit_per_server_holds_under_concurrency():
    import time as _time

    def slow(c, r, h):
        _time.sleep(0.05)
        return ok()

    srv = ScriptedServer(slow)
    p = HttpPoller(label="t", timeout=5.0, max_connections=2)
    results = await asyncio.gather(*(p.get_text(srv.url) for _ in range(8)))
    await p.aclose()
    assert results == ['{"n": 1}'] * 8
    assert srv.max_active <= 2 and srv.connections == 2
    srv.close()


async def test_polling_leaves_no_cyclic_garbage(server):
    import gc

    p = poller(server)
    await p.get_json("/ok")
    gc.collect()
    gc.disable()
    try:
        for _ in range(50):
            await p.get_json("/ok")
        leftovers = gc.collect()
    finally:
        gc.enable()
    await p.aclose()
    assert leftovers < 25  # 50 polls; before unlinking responses from their streams it was 750
