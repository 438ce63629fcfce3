"""A lean httpx transport for polling: plain-HTTP/1.1 keep-alive on asyncio protocols, httpcore for the rest.

Measured on our 2-core VMs (benchmarks/poll_bench.py), a GET through a stock httpx.AsyncClient costs 5-15x
the CPU of aiohttp's (1,100-2,800 µs against 200-330 µs), and far more with many requests queued on one
pool. The time goes to anyio (a cancel scope per read and write, shielded scopes in the pool), h11's
pure-Python parsing and validation, httpcore's pool bookkeeping (a scan of every connection and queued
request on each change), the per-request `select()` checking whether an idle connection is still readable,
then cookie extraction. With this transport a poll costs 1.0-1.5x aiohttp's.
`FastTransport` keeps the httpx API (Client, Request, Response, exceptions) and replaces only the wire part
for `http://` URLs: one asyncio.Protocol per connection, a per-origin connection limit with O(1) idle lists,
and a small HTTP/1.1 response parser (Content-Length, chunked, read-until-close; 1xx skipped; HEAD, 204 and
304 without body). `https://` goes to httpx's own transport, where TLS dominates the cost anyway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable

import httpx

MAX_HEAD = 64 * 1024
_READ = 65536
_NO_BODY_STATUS = frozenset({204, 304})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


# ---------------------------------------------------------------------------------------------
# One connection


class _Conn(asyncio.Protocol):
    """Buffers what the socket receives and wakes the one reader waiting for it."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.eof = False
        self.exc: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.exc = exc
        self._wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def pause_writing(self) -> None:
        self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- used by the transport -----------------------------------------------------------------

    async def fill(self, timeout: float | None) -> bool:
        """Wait until more bytes arrive (True) or the peer closed (False); TimeoutError after `timeout`."""
        if self.eof:
            return False
        size = len(self.buf)
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            if timeout is None:
                await self._waiter
            else:
                async with asyncio.timeout(timeout):
                    await self._waiter
        finally:
            self._waiter = None
        return len(self.buf) > size or not self.eof

    async def write(self, data: bytes, timeout: float | None) -> None:
        """Send bytes, waiting for the socket buffer to drain only when it is full."""
        assert self.transport is not None
        if self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        self.transport.write(data)
        if self._drain is not None:
            if timeout is None:
                await self._drain
            else:
                async with asyncio.timeout(timeout):
                    await self._drain

    def reusable(self, now: float, expiry: float) -> bool:
        """Idle, open, nothing unexpected buffered, and not past the keep-alive expiry."""
        return (not self.eof and not self.buf and self.transport is not None
                and not self.transport.is_closing() and now - self.idle_since < expiry)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


# ---------------------------------------------------------------------------------------------
# Response body


class _Body(httpx.AsyncByteStream):
    """Streams one response body off a connection; on close, hands the connection back or drops it."""

    def __init__(self, owner: FastTransport, key: tuple[str, int], conn: _Conn, slot: asyncio.Semaphore,
                 framing: str, length: int, keep_alive: bool, read_timeout: float | None,
                 request: httpx.Request) -> None:
        self._owner = owner
        self._key = key
        self._conn = conn
        self._slot: asyncio.Semaphore | None = slot
        self._framing = framing  # "none" | "length" | "chunked" | "close"
        self._left = length
        self._keep = keep_alive
        self._timeout = read_timeout
        self._request = request
        self._done = framing == "none" or (framing == "length" and length == 0)

    async def _more(self) -> bool:
        try:
            return await self._conn.fill(self._timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("timed out reading the response body", request=self._request) from None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if self._framing == "length":
            while self._left > 0:
                if not conn.buf and not await self._more():
                    raise httpx.RemoteProtocolError("server closed the connection before the body ended",
                                                    request=self._request)
                take = min(self._left, len(conn.buf))
                chunk = bytes(conn.buf[:take])
                del conn.buf[:take]
                self._left -= take
                yield chunk
            self._done = True
        elif self._framing == "chunked":
            async for chunk in self._chunks():
                yield chunk
            self._done = True
        elif self._framing == "close":
            while True:
                if conn.buf:
                    chunk = bytes(conn.buf)
                    conn.buf.clear()
                    yield chunk
                if not await self._more() and not conn.buf:
                    break
            self._done = True

    async def _line(self) -> bytes:
        conn = self._conn
        while True:
            end = conn.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(conn.buf[:end])
                del conn.buf[: end + 2]
                return line
            if len(conn.buf) > MAX_HEAD or not await self._more():
                raise httpx.RemoteProtocolError("malformed chunked response body", request=self._request)

    async def _chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            size_text = (await self._line()).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise httpx.RemoteProtocolError("malformed chunk size in response body",
                                                request=self._request) from None
            if size == 0:
                while await self._line():  # trailers, up to the empty line
                    pass
                return
            while size > 0:
                if not conn.buf and not await self._more():
                    raise httpx.RemoteProtocolError("server closed the connection inside a chunk",
                                                    request=self._request)
                take = min(size, len(conn.buf))
                chunk = bytes(conn.buf[:take])
                del conn.buf[:take]
                size -= take
                yield chunk
            if await self._line():
                raise httpx.RemoteProtocolError("chunk not followed by CRLF", request=self._request)

    async def aclose(self) -> None:
        slot, self._slot = self._slot, None
        if slot is None:
            return
        if self._done and self._keep:
            self._owner._checkin(self._key, self._conn)
        else:
            self._conn.close()
        slot.release()


# ---------------------------------------------------------------------------------------------
# Transport


class FastTransport(httpx.AsyncBaseTransport):
    """httpx transport: plain HTTP/1.1 on asyncio protocols, per-origin limits; https via httpx's own."""

    def __init__(self, *, max_connections: int = 4, keepalive_expiry: float = 30.0,
                 fallback: httpx.AsyncBaseTransport | None = None) -> None:
        self.max_connections = max(1, max_connections)
        self.keepalive_expiry = keepalive_expiry
        self._idle: dict[tuple[str, int], list[_Conn]] = {}
        self._slots: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._fallback = fallback  # built on first https request: an SSL context costs ~20 ms to load
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http" or self._closed:
            if self._fallback is None:
                self._fallback = stock_transport(self.max_connections, self.keepalive_expiry)
            return await self._fallback.handle_async_request(request)
        timeouts = request.extensions.get("timeout") or {}
        key = (url.host, url.port or 80)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = asyncio.Semaphore(self.max_connections)
        if slot.locked():  # wait for a free connection (without a timer when one is free already)
            try:
                async with asyncio.timeout(timeouts.get("pool")):
                    await slot.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no free connection in time", request=request) from None
        else:
            await slot.acquire()
        conn: _Conn | None = None
        try:
            body = await _request_body(request)
            head = _request_head(request, body)
            for attempt in (0, 1):
                conn, reused = self._checkout(key), True
                if conn is None:
                    conn, reused = await self._connect(key, timeouts.get("connect"), request), False
                try:
                    await conn.write(head + body, timeouts.get("write"))
                except (OSError, TimeoutError) as exc:
                    conn.close()
                    if reused and attempt == 0:
                        continue
                    if isinstance(exc, TimeoutError):
                        raise httpx.WriteTimeout("timed out sending the request", request=request) from None
                    raise httpx.WriteError(f"connection lost while sending: {exc}", request=request) from exc
                got = await _read_head(conn, timeouts.get("read"), request)
                if got is None:  # closed before any byte: a stale keep-alive connection
                    conn.close()
                    if reused and attempt == 0 and request.method in _IDEMPOTENT:
                        continue
                    raise httpx.RemoteProtocolError("server disconnected without sending a response",
                                                    request=request)
                break
            assert conn is not None and got is not None
            status, reason, version, headers = got
            framing, length, keep = _framing(request.method, status, version, headers, request)
            stream = _Body(self, key, conn, slot, framing, length, keep, timeouts.get("read"), request)
        except BaseException:
            if conn is not None:
                conn.close()
            slot.release()
            raise
        return httpx.Response(status, headers=headers, stream=stream,
                              extensions={"http_version": version, "reason_phrase": reason})

    def _checkout(self, key: tuple[str, int]) -> _Conn | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.reusable(now, self.keepalive_expiry):
                return conn
            conn.close()
        return None

    def _checkin(self, key: tuple[str, int], conn: _Conn) -> None:
        if self._closed or conn.eof or conn.buf:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(key, []).append(conn)

    async def _connect(self, key: tuple[str, int], timeout: float | None, request: httpx.Request) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(_Conn, key[0], key[1])
        except TimeoutError:
            raise httpx.ConnectTimeout("timed out connecting", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        return conn

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        if self._fallback is not None:
            await self._fallback.aclose()


async def _request_body(request: httpx.Request) -> bytes:
    """The request body as bytes, chunk-encoded when httpx chose Transfer-Encoding: chunked."""
    if isinstance(request.stream, httpx.ByteStream) or hasattr(request, "_content"):
        return request.content
    parts = [part async for part in request.stream]  # type: ignore[union-attr]
    if request.headers.get("transfer-encoding", "").lower() == "chunked":
        return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p) + b"0\r\n\r\n"
    return b"".join(parts)


def _request_head(request: httpx.Request, body: bytes) -> bytes:
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), request.url.raw_path)]
    lines.extend(b"%s: %s" % (k, v) for k, v in request.headers.raw)
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _read_head(conn: _Conn, timeout: float | None,
                     request: httpx.Request) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]] | None:
    """(status, reason, version, headers) of the next final response; None if closed before any byte."""
    while True:
        end = conn.buf.find(b"\r\n\r\n")
        while end < 0:
            if len(conn.buf) > MAX_HEAD:
                raise httpx.RemoteProtocolError("response headers are too large", request=request)
            try:
                more = await conn.fill(timeout)
            except TimeoutError:
                raise httpx.ReadTimeout("timed out waiting for the response", request=request) from None
            if not more:
                if not conn.buf:
                    if conn.exc is not None:
                        raise httpx.ReadError(f"connection lost: {conn.exc}", request=request) from conn.exc
                    return None
                raise httpx.RemoteProtocolError("server closed the connection inside the headers",
                                                request=request)
            end = conn.buf.find(b"\r\n\r\n")
        head = bytes(conn.buf[:end])
        del conn.buf[: end + 4]
        status_line, _, rest = head.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise httpx.RemoteProtocolError(f"not an HTTP/1.x response: {status_line[:40]!r}",
                                            request=request)
        status = int(parts[1])
        headers: list[tuple[bytes, bytes]] = []
        for line in rest.split(b"\r\n") if rest else ():
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise httpx.RemoteProtocolError(f"malformed response header line {line[:40]!r}",
                                                request=request)
            headers.append((name, value.strip()))
        if 100 <= status < 200 and status != 101:
            continue  # 100 Continue, 103 Early Hints: the final response follows
        return status, parts[2] if len(parts) > 2 else b"", parts[0], headers


def _framing(method: str, status: int, version: bytes, headers: Iterable[tuple[bytes, bytes]],
             request: httpx.Request) -> tuple[str, int, bool]:
    """How the body is delimited (RFC 9112 §6.3) and whether the connection can be reused afterwards."""
    length = -1
    chunked = False
    connection = b""
    for name, value in headers:
        low = name.lower()
        if low == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise httpx.RemoteProtocolError("malformed Content-Length", request=request) from None
        elif low == b"transfer-encoding":
            chunked = value.lower().rsplit(b",", 1)[-1].strip() == b"chunked"
        elif low == b"connection":
            connection = value.lower()
    keep = b"close" not in connection and (version != b"HTTP/1.0" or b"keep-alive" in connection)
    if method == "HEAD" or status in _NO_BODY_STATUS or status == 101:
        return "none", 0, keep and status != 101
    if chunked:
        return "chunked", 0, keep
    if length >= 0:
        return "length", length, keep
    return "close", 0, False


# ---------------------------------------------------------------------------------------------
# Everything else


def stock_transport(max_connections: int = 4, keepalive_expiry: float = 30.0) -> httpx.AsyncHTTPTransport:
    """httpx's own transport (httpcore pool on anyio) with our limits: used for https."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                          keepalive_expiry=keepalive_expiry)
    return httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
