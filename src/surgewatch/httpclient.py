"""HTTP clients for sources and sinks: httpx's API over aiohttp's wire (llhttp) through `httpx-aiohttp`.

A monitor talks to many servers it does not control, so the bytes on the wire go through aiohttp's hardened
llhttp parser (it refuses conflicting or signed Content-Length, Content-Length with chunked, bad chunk sizes,
NUL bytes and invalid header names, status codes outside 100-999) while callers keep httpx's Client, Request,
Response and exceptions. `PollTransport` extends httpx-aiohttp's `AiohttpTransport` where it falls short for
polling: aiohttp errors become the httpx exception of the same kind (a server disconnect is a
RemoteProtocolError, not a ConnectTimeout) with messages that never carry the URL, per-server connection
limits and keep-alive expiry, no cookie jar on either side, per-source TLS (`config.TlsConfig`), and timeouts built
once instead of per request.
"""

from __future__ import annotations

import asyncio
import datetime
import errno
import functools
import socket
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from aiohttp.client_proto import ResponseHandler
from httpx_aiohttp import AiohttpTransport

from .config import TlsConfig

__all__ = ["REUSED", "USER_AGENT", "MalformedResponse", "PollTransport", "PollingClient", "TlsError",
           "connect_error_message", "new_client", "ssl_context"]

USER_AGENT = "surgewatch"
_READ_BUFSIZE = 64 * 1024  # aiohttp stops reading a socket whose unread body passes this (flow control)


# ---------------------------------------------------------------------------------------------
# TLS


class MalformedResponse(httpx.RemoteProtocolError):
    """The server's bytes are not valid HTTP/1.1 (as llhttp judges them); a retry would get the same."""


class TlsError(ValueError):
    """A TLS file (CA bundle, client certificate or key) cannot be loaded; the message is one line."""


_CONTEXTS: dict[TlsConfig, ssl.SSLContext] = {}


def ssl_context(tls: TlsConfig | None) -> ssl.SSLContext:
    """The SSL context for these options, cached (loading CAs costs milliseconds); by default the system CAs."""
    tls = tls or TlsConfig()
    ctx = _CONTEXTS.get(tls)
    if ctx is not None:
        return ctx
    try:
        ctx = ssl.create_default_context(cafile=tls.ca_file) if tls.ca_file else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load ca_file {tls.ca_file}: {_reason(exc)}") from None
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.cert_file:
        try:
            ctx.load_cert_chain(tls.cert_file, tls.key_file or None)
        except (OSError, ssl.SSLError) as exc:
            files = tls.cert_file + (f" / key_file {tls.key_file}" if tls.key_file else "")
            raise TlsError(f"cannot load cert_file {files}: {_reason(exc)}") from None
    _CONTEXTS[tls] = ctx
    return ctx


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return " ".join(str(exc).split()) or type(exc).__name__


# ---------------------------------------------------------------------------------------------
# aiohttp errors → httpx errors


def _mapped(exc: BaseException, request: httpx.Request, reading: bool = False) -> httpx.TransportError | None:
    """The httpx exception for an aiohttp one (message without the URL); None when it is not aiohttp's."""
    kind: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind, msg = httpx.ConnectTimeout, "timed out connecting"
    elif isinstance(exc, aiohttp.ServerTimeoutError):
        kind, msg = httpx.ReadTimeout, "timed out reading the response"
    elif isinstance(exc, aiohttp.ClientConnectorError):  # DNS, refused, unreachable, TLS handshake
        kind, msg = httpx.ConnectError, _os_message(exc)
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        kind, msg = httpx.RemoteProtocolError, "server disconnected without sending a complete response"
    elif isinstance(exc, aiohttp.ClientResponseError):  # llhttp refused the status line or headers
        kind, msg = MalformedResponse, f"malformed response: {_clean(exc.message) or exc.status}"
    elif isinstance(exc, aiohttp.ClientPayloadError):  # bad chunk sizes, a body shorter than Content-Length
        if "not enough data" in str(exc.__cause__ or exc).lower():
            kind, msg = httpx.ReadError, "server closed the connection before the body ended"
        else:
            kind, msg = MalformedResponse, f"malformed response body: {_payload_reason(exc)}"
    elif isinstance(exc, aiohttp.ClientOSError | aiohttp.ClientConnectionResetError):
        kind = httpx.ReadError if reading else httpx.WriteError
        msg = f"connection lost: {_os_message(exc)}"
    elif isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return None  # httpx checked the URL when the Request was built; only odd cases land here
    elif isinstance(exc, aiohttp.ClientConnectionError):
        kind, msg = httpx.ReadError if reading else httpx.NetworkError, f"connection error: {type(exc).__name__}"
    elif isinstance(exc, aiohttp.ClientError):
        kind, msg = httpx.TransportError, f"{type(exc).__name__}"
    else:
        return None
    out = kind(msg, request=request)
    out.__cause__ = exc
    return out


def _clean(text: object, n: int = 120) -> str:
    """One line, printable, short: what an error from the wire may say."""
    s = "".join(c if c.isprintable() else " " for c in str(text))
    s = " ".join(s.split()).removesuffix(" ^")  # llhttp's messages end with a caret under the bad byte
    return s if len(s) <= n else s[: n - 1] + "…"


def _payload_reason(exc: aiohttp.ClientPayloadError) -> str:
    cause = exc.__cause__
    text = str(exc)
    if cause is not None and str(cause):
        text = f"{text.split('.')[0]} ({cause})" if text else str(cause)
    return _clean(text)


def _os_message(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, OSError):
        return _clean(os_error.strerror or os_error) or type(os_error).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return _clean(exc.strerror)
    return type(exc).__name__


def connect_error_message(exc: BaseException, url: str) -> str:
    """One line for a failed connect: DNS, refused, unreachable, or which certificate problem, never the URL."""
    try:
        u = httpx.URL(url)
        host = u.host
        target = f"{host}:{u.port or (443 if u.scheme == 'https' else 80)}"
    except httpx.InvalidURL:  # pragma: no cover - a request was already built from it
        host = target = "the server"
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    for e in chain:
        if isinstance(e, socket.gaierror):
            return f"DNS lookup failed for {host}"
        if isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED:
            return f"connection refused by {target}"
        if getattr(e, "errno", None) in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return f"network unreachable for {target}"
        if isinstance(e, ssl.SSLCertVerificationError):
            return _certificate_message(e, host, target)
        if isinstance(e, ssl.SSLError):
            inner = getattr(e, "os_error", e)  # aiohttp's ClientConnectorSSLError wraps ssl's error
            reason = getattr(inner, "reason", None) or str(inner)
            return f"TLS failed with {target}: {_clean(reason, 80).replace('_', ' ').lower()}"
    low = " ".join(str(e) for e in chain).lower()
    if "name or service not known" in low or "nodename nor servname" in low or "name resolution" in low:
        return f"DNS lookup failed for {host}"
    if "refused" in low:
        return f"connection refused by {target}"
    return f"cannot connect to {target}: {_clean(str(exc), 80) or type(exc).__name__}"


# OpenSSL's X509_V_ERR codes for the certificate problems users meet most.
_CERT_EXPIRED, _CERT_NOT_YET_VALID = 10, 9
_UNKNOWN_CA = {2, 18, 19, 20, 21}  # no issuer cert, self-signed leaf, self-signed in chain, local issuer, leaf only
_NAME_MISMATCH = {62, 64}  # host name, IP address


def _certificate_message(e: ssl.SSLCertVerificationError, host: str, target: str) -> str:
    """One line for a certificate the client refused: expired, for another host, or from an unknown CA."""
    e = getattr(e, "certificate_error", e)  # aiohttp's ClientConnectorCertificateError wraps ssl's error
    code = getattr(e, "verify_code", None)
    what = f"TLS certificate of {target}"
    if code == _CERT_EXPIRED:
        return f"{what} has expired"
    if code == _CERT_NOT_YET_VALID:
        return f"{what} is not valid yet (check the clocks)"
    if code in _NAME_MISMATCH or "mismatch" in str(getattr(e, "verify_message", "")).lower():
        return f"{what} is not valid for host name {host}"
    if code in _UNKNOWN_CA:
        return f"{what} is signed by an unknown CA (set ca_file to the CA that signed it)"
    return f"{what} was refused: {_clean(getattr(e, 'verify_message', None) or e, 80)}"


# ---------------------------------------------------------------------------------------------
# The transport


class _OneAnswerPerRequest(ResponseHandler):
    """aiohttp's connection protocol, closed when the server sends a response nobody asked for.

    llhttp keeps parsing what arrives on an idle keep-alive connection: junk fails the parser (aiohttp closes),
    but whole responses were queued without limit (6 MiB of empty responses held 60 MiB) and the next request
    on that connection got the first of them as its answer. Here the first unasked-for final response closes
    the connection, so the pool drops it and nothing piles up.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.asked = 0  # requests sent on this connection
        self.answered = 0  # final (non-1xx) responses parsed on it

    def set_response_params(self, **kwargs: Any) -> None:
        self.asked += 1
        super().set_response_params(**kwargs)

    def feed_data(self, data: Any, size: int = 0) -> None:
        code = getattr(data[0], "code", 200) if isinstance(data, tuple) and data else 200
        if not 100 <= code < 200 or code == 101:
            self.answered += 1
            if self.answered > self.asked:
                self.force_close()
                if self.transport is not None:
                    self.transport.close()
                return
        super().feed_data(data, size)


class _Body(httpx.AsyncByteStream):
    """One response body off an aiohttp connection; aiohttp errors while reading become httpx errors."""

    __slots__ = ("_request", "_resp", "_response", "_started")

    def __init__(self, resp: aiohttp.ClientResponse, request: httpx.Request, started: float) -> None:
        self._resp = resp
        self._request = request
        self._started = started
        self._response: httpx.Response | None = None  # set once the httpx.Response exists; dropped at close

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._resp.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except (aiohttp.ClientError, OSError) as exc:
            mapped = _mapped(exc, self._request, reading=True)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        # A body read to its end hands the connection back to the pool; anything else closes it.
        self._resp.release()
        response, self._response = self._response, None  # no response <-> stream cycle left for the GC
        if response is not None:
            response.elapsed = datetime.timedelta(seconds=time.perf_counter() - self._started)


# A caller that sends one httpx.Request many times, unchanged (HttpPoller's prebuilt GETs), sets this extension
# to True; the transport then converts URL and headers for aiohttp once and keeps them in the extension.
REUSED = "surgewatch.reused"


def _wire(request: httpx.Request) -> tuple[str, list[tuple[str, str]]]:
    """URL and headers as aiohttp takes them, names in the caller's case (httpx's items() lower-cases them)."""
    reused = request.extensions.get(REUSED)
    if isinstance(reused, tuple):
        return reused
    wire = (str(request.url), [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw])
    if reused is True:
        request.extensions[REUSED] = wire
    return wire


class PollTransport(AiohttpTransport):
    """httpx-aiohttp's transport with per-server connection limits, keep-alive expiry, TLS and mapped errors."""

    def __init__(self, *, max_connections: int = 4, keepalive_expiry: float = 30.0,
                 tls: TlsConfig | None = None, proxy: str | None = None) -> None:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                              keepalive_expiry=keepalive_expiry)
        self._ssl = ssl_context(tls)  # raises TlsError now, at construction, not at the first poll
        # The session is made on the first request, inside the event loop that will use it.
        super().__init__(verify=self._ssl, trust_env=False, limits=limits, client=self._make_session)
        self._session: aiohttp.ClientSession | None = None
        self._proxy = proxy  # only a configured proxy: HTTP(S)_PROXY from the environment is never read
        self._timeouts: dict[tuple[Any, Any, Any], aiohttp.ClientTimeout] = {}

    def _make_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=0,  # no total cap: the limit that matters is per server
            limit_per_host=max(1, self.limits.max_connections or 1),
            keepalive_timeout=self.limits.keepalive_expiry or 0.0,
            ssl=self._ssl,
        )
        # aiohttp makes each connection's protocol with this factory (a documented-by-code attribute, pinned
        # by tests/integration/test_http_wire.py: an unasked-for response on an idle connection must close it).
        connector._factory = functools.partial(  # type: ignore[assignment]
            _OneAnswerPerRequest, loop=asyncio.get_running_loop())
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None), read_bufsize=_READ_BUFSIZE, skip_auto_headers=("User-Agent",),
        )

    def _timeout(self, t: dict[str, Any]) -> aiohttp.ClientTimeout:
        key = (t.get("connect"), t.get("read"), t.get("pool"))
        out = self._timeouts.get(key)
        if out is None:
            pool, connect = key[2], key[0]
            # aiohttp's `connect` covers waiting for a pooled connection and connecting; sock_connect the latter.
            whole = None if pool is None or connect is None else pool + connect
            out = self._timeouts[key] = aiohttp.ClientTimeout(total=None, connect=whole, sock_connect=connect,
                                                             sock_read=key[1])
        return out

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        session = self._session
        if session is None or session.closed:
            session = self._session = self._make_session()
            self.client = session
        try:
            data: bytes | None = request.content or None
        except httpx.RequestNotRead:
            data = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        url, headers = _wire(request)
        try:
            resp = await session._request(
                request.method, url, headers=headers, data=data,
                allow_redirects=False, timeout=self._timeout(request.extensions.get("timeout") or {}),
                proxy=self._proxy, server_hostname=request.extensions.get("sni_hostname"))
        except (aiohttp.ClientError, OSError) as exc:
            mapped = _mapped(exc, request)
            if mapped is not None:
                raise mapped from exc
            if isinstance(exc, aiohttp.NonHttpUrlClientError):
                raise httpx.UnsupportedProtocol("URL must start with http:// or https://") from exc
            if isinstance(exc, aiohttp.ClientError | ValueError):
                raise httpx.InvalidURL(f"invalid URL ({type(exc).__name__})") from exc
            raise
        if resp.status < 100:  # llhttp takes any three digits; 000-099 are no HTTP status
            resp.close()
            raise MalformedResponse(f"malformed response: status {resp.status:03d} is not an HTTP status",
                                    request=request)
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if resp.reason:
            extensions["reason_phrase"] = resp.reason.encode("latin-1", "replace")
        body = _Body(resp, request, started)
        response = body._response = httpx.Response(resp.status, headers=resp.raw_headers, stream=body,
                                                   request=request, extensions=extensions)
        return response

    async def aclose(self) -> None:
        session, self._session = self._session, None
        self.client = None
        if session is not None:
            await session.close()


# ---------------------------------------------------------------------------------------------
# The client


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing: pollers are stateless, and parsing Set-Cookie costs CPU per poll."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class PollingClient(httpx.AsyncClient):
    """An httpx.AsyncClient for polling: no cookie jar, and `send` straight to the transport when it can.

    httpx's client layer costs more CPU per request than aiohttp's whole request (benchmarks/poll_bench.py):
    an auth-flow generator, the redirect loop, event hooks, a Set-Cookie parse through email.message, an INFO
    log line and a stream wrapper, per request. With no auth, no redirects and no hooks (how pollers and sinks
    use it) none of that does anything, so `send` skips it; anything else takes httpx's own path.
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self._jar: httpx.Cookies = _NoCookies()
        self._direct = transport

    async def send(self, request: httpx.Request, *, stream: bool = False,
                   auth: Any = httpx.USE_CLIENT_DEFAULT,
                   follow_redirects: Any = httpx.USE_CLIENT_DEFAULT) -> httpx.Response:
        hooks = self.event_hooks
        if (auth is not httpx.USE_CLIENT_DEFAULT or follow_redirects is not httpx.USE_CLIENT_DEFAULT
                or self.auth is not None or self.follow_redirects or hooks["request"] or hooks["response"]
                or self.is_closed):
            return await super().send(request, stream=stream, auth=auth, follow_redirects=follow_redirects)
        if "timeout" not in request.extensions:
            request.extensions["timeout"] = self.timeout.as_dict()
        response = await self._direct.handle_async_request(request)
        if not stream:
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        return response

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, value: Any) -> None:
        self._jar = _NoCookies(value)


def new_client(max_connections: int = 4, keepalive_expiry: float = 30.0, *, tls: TlsConfig | None = None,
               timeout: float | None = None, headers: dict[str, str] | None = None,
               proxy: str | None = None) -> httpx.AsyncClient:
    """A keep-alive client for polling or alerting: aiohttp's wire, no cookies, no redirects.

    Nothing goes through an HTTP(S)_PROXY from the environment (polls are often to loopback or the LAN, and
    sources and sinks behave alike); a sink reaches a receiver through a proxy only when its `proxy` key says so.
    """
    return PollingClient(
        transport=PollTransport(max_connections=max_connections, keepalive_expiry=keepalive_expiry, tls=tls,
                                proxy=proxy),
        trust_env=False,  # httpx's own proxy mounts would bypass the transport; aiohttp reads the env instead
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        timeout=timeout if timeout is not None else httpx.Timeout(5.0),
    )
