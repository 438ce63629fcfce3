"""The shared HTTP polling layer: pooled httpx clients, retries within a deadline, size caps, one-line errors.

Every remote source (Prometheus, PromQL, probes, analytics APIs) talks HTTP through `HttpPoller`, so they all
get the same behaviour: one keep-alive `httpx.AsyncClient` over aiohttp's wire (`surgewatch.httpclient`) shared
per server and TLS setting (see `shared_client`), retries with
capped exponential backoff and full jitter that never outlive the poll's timeout, a response-size cap enforced
while streaming, and failures turned into `SourceError` messages: one line each, never a secret.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..config import TlsConfig
from ..httpclient import REUSED, MalformedResponse, TlsError, connect_error_message, new_client
from ..redact import param_secrets as _param_secrets
from ..redact import redact_url
from ..redact import scrub as _scrub
from ..redact import secrets_of as _secrets_of
from .base import SourceError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "HttpPoller",
    "HttpResponse",
    "as_number",
    "client_key",
    "dig",
    "new_client",
    "redact_url",
    "shared_client",
    "status_message",
]

DEFAULT_MAX_BYTES = 4 * 1024 * 1024

_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_BACKOFF_BASE = 0.05
_BACKOFF_CAP = 1.0


# ---------------------------------------------------------------------------------------------
# Shared clients


@dataclass
class _Shared:
    client: httpx.AsyncClient
    users: int = 0


# Clients belong to the event loop they were first used in, so the registry is per loop.
_REGISTRY: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Shared]] = (
    weakref.WeakKeyDictionary())


def client_key(url: str) -> str:
    """The sharing key for a URL: scheme, host and port (one pool per server keeps pool scans short)."""
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return url
    return f"{u.scheme}://{u.host}:{u.port or ''}"


def shared_client(key: str, *, max_connections: int = 4, tls: TlsConfig | None = None) -> httpx.AsyncClient:
    """The running loop's client for `key`, created on first use; pair each call with `release_client`.

    Sources with different TLS settings never share a client: `tls` is part of the registry key.
    """
    loop = asyncio.get_running_loop()
    clients = _REGISTRY.setdefault(loop, {})
    if tls is not None and not tls.is_default:
        key = f"{key} {tls!r}"
    entry = clients.get(key)
    if entry is None or entry.client.is_closed:
        entry = clients[key] = _Shared(new_client(max_connections, tls=tls))
    entry.users += 1
    return entry.client


async def release_client(key: str, client: httpx.AsyncClient) -> None:
    """Drop one user of a shared client; the last user closes it."""
    try:
        clients = _REGISTRY.get(asyncio.get_running_loop(), {})
    except RuntimeError:  # pragma: no cover - no loop: nothing is open in it
        return
    entry = clients.get(key)
    if entry is None or entry.client is not client:  # registered under a TLS-qualified key
        key, entry = next(((k, e) for k, e in clients.items() if e.client is client), (key, None))
        if entry is None:
            return
    entry.users -= 1
    if entry.users <= 0:
        del clients[key]
        await client.aclose()


# ---------------------------------------------------------------------------------------------
# Shape helpers for JSON documents


def dig(doc: Any, path: str, what: str = "response") -> Any:
    """The value at a dotted path (`data.items.0.value`); SourceError naming the missing step otherwise."""
    cur = doc
    walked: list[str] = []
    for step in path.split(".") if path else []:
        walked.append(step)
        if isinstance(cur, Mapping):
            if step not in cur:
                keys = ", ".join(sorted(map(str, cur))[:8]) or "none"
                raise SourceError(f"{what} has no {'.'.join(walked)!r} (keys there: {keys})")
            cur = cur[step]
        elif isinstance(cur, list) and step.lstrip("-").isdigit():
            try:
                cur = cur[int(step)]
            except IndexError:
                raise SourceError(
                    f"{what}: {'.'.join(walked)!r} is past the end of a list of {len(cur)}") from None
        else:
            raise SourceError(f"{what}: {'.'.join(walked[:-1]) or 'the document'} is {_kind(cur)}, "
                              f"cannot take {step!r}")
    return cur


def as_number(value: Any, where: str = "value") -> float:
    """A finite float from a JSON number or numeric string (`"12"`, `"1.5e3"`); SourceError otherwise."""
    if isinstance(value, bool):
        raise SourceError(f"{where} is a boolean, expected a number")
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value.strip())
        except ValueError:
            raise SourceError(f"{where} is {_short(value)!r}, expected a number") from None
    else:
        raise SourceError(f"{where} is {_kind(value)}, expected a number")
    if not math.isfinite(out):
        raise SourceError(f"{where} is {value!r}, expected a finite number")
    return out


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, Mapping):
        return "an object"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, str):
        return f"the string {_short(v)!r}"
    return f"{type(v).__name__} {v!r}"


def _short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# ---------------------------------------------------------------------------------------------
# The poller


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A fully read response body (within the size cap) and what a caller may need of the response."""

    status: int
    reason: str
    headers: httpx.Headers
    body: bytes
    elapsed: float  # seconds from sending the request to the end of the body

    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")


_SPENT = httpx.ByteStream(b"")


class _Fatal(Exception):
    """An attempt failed in a way a retry would not fix; carries the one-line message."""


class _Retryable(Exception):
    """An attempt failed in a way that may pass on a retry; carries the one-line message."""


class HttpPoller:
    """One source's HTTP access: shared keep-alive client, deadline-bounded retries, size cap, safe errors."""

    def __init__(self, *, label: str, base_url: str | None = None, headers: Mapping[str, str] | None = None,
                 timeout: float, retries: int = 2, max_bytes: int = DEFAULT_MAX_BYTES,
                 client: httpx.AsyncClient | None = None, share: str | None = None,
                 max_connections: int = 4, tls: TlsConfig | None = None) -> None:
        self.label = label
        self.base_url = base_url.rstrip("/") if base_url else None
        self.headers = dict(headers or {})
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.max_bytes = int(max_bytes)
        self.max_connections = max_connections
        self.tls = tls
        self._own_client = client
        self._share = share
        self._client: httpx.AsyncClient | None = client
        self._shared_key: str | None = None
        self._secrets = _secrets_of(self.headers, self.base_url)
        self._requests: dict[tuple[str, str, str | None], httpx.Request] = {}
        self.last_success: float | None = None  # wall-clock time of the last successful request
        self.last_elapsed: float | None = None  # seconds the last successful request took

    # -- public API -------------------------------------------------------------------------------

    async def get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a JSON document; SourceError on transport, HTTP, size or JSON problems."""
        resp = await self.request("GET", url, params=params, accept="application/json")
        return self._json(resp, "GET", url)

    async def post_json(self, url: str, json: Any = None, data: Mapping[str, Any] | None = None) -> Any:
        """POST a JSON body or a form (`data`) and parse a JSON answer."""
        resp = await self.request("POST", url, json_body=json, data=data, accept="application/json")
        return self._json(resp, "POST", url)

    async def get_text(self, url: str, params: Mapping[str, Any] | None = None) -> str:
        """GET a text document (e.g. Prometheus exposition format)."""
        resp = await self.request("GET", url, params=params, accept="text/plain;version=0.0.4;q=1,*/*;q=0.5")
        return resp.text()

    async def request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
                      json_body: Any = None, data: Mapping[str, Any] | None = None, accept: str | None = None,
                      check_status: bool = True, retry: bool = True) -> HttpResponse:
        """One request with retries inside `timeout`; with check_status=False any HTTP status is returned."""
        full = self._url(url)
        # Finish a little before `timeout`, so a caller's own timeout of the same length (the collector's)
        # sees this clear message or, for probes, the failure as data, instead of a bare cancellation.
        deadline = time.monotonic() + self.timeout - min(0.05, 0.05 * self.timeout)
        attempts = 1 + (self.retries if retry else 0)
        last = "no attempt made"
        for attempt in range(attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    resp = await self._attempt(method, full, params, json_body, data, accept)
            except TimeoutError:
                last = f"timed out after {_secs(self.timeout)}"
                break
            except _Fatal as exc:
                raise self._request_error(str(exc), method, full, params, data) from None
            except _Retryable as exc:
                last = str(exc)
            else:
                if check_status and resp.status >= 400:
                    msg = status_message(resp)
                    if resp.status not in _RETRY_STATUS:
                        raise self._request_error(msg, method, full, params, data)
                    last = msg
                else:
                    self.last_success = time.time()
                    self.last_elapsed = resp.elapsed
                    return resp
            if attempt + 1 < attempts:
                pause = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** attempt))
                if time.monotonic() + pause >= deadline:
                    break
                await asyncio.sleep(pause)
        raise self._request_error(last, method, full, params, data)

    def _request_error(self, msg: str, method: str, full: str, params: Mapping[str, Any] | None,
                       data: Mapping[str, Any] | None) -> SourceError:
        """The one-line error for a request, with every secret it carried scrubbed."""
        secrets = self._secrets + _secrets_of({}, full) + _param_secrets(params) + _param_secrets(data)
        return self._error(msg, f"{method} {redact_url(full)}", secrets)

    async def aclose(self) -> None:
        """Release the client (a shared one is closed by its last user)."""
        client, self._client = self._client, None
        self._requests.clear()
        if client is None or client is self._own_client:
            return
        if self._shared_key is not None:
            await release_client(self._shared_key, client)
            self._shared_key = None

    # -- internals --------------------------------------------------------------------------------

    def _url(self, url: str) -> str:
        if self.base_url and not re.match(r"^[a-z][a-z0-9+.-]*://", url, re.IGNORECASE):
            return f"{self.base_url}/{url.lstrip('/')}"
        return url

    def _get_client(self, url: str) -> httpx.AsyncClient:
        if self._client is None:
            key = self._share or client_key(url)
            self._client = shared_client(key, max_connections=self.max_connections, tls=self.tls)
            self._shared_key = key
        return self._client

    async def _attempt(self, method: str, url: str, params: Mapping[str, Any] | None, json_body: Any,
                       data: Mapping[str, Any] | None, accept: str | None) -> HttpResponse:
        try:
            client = self._get_client(url)
        except TlsError as exc:
            raise _Fatal(str(exc)) from None
        except (httpx.InvalidURL, ValueError) as exc:
            raise _Fatal(f"invalid URL: {exc}") from None
        started = time.monotonic()
        try:
            req = self._build(client, method, url, params, json_body, data, accept)
            resp = await client.send(req, stream=True)
        except httpx.UnsupportedProtocol:
            raise _Fatal("URL must start with http:// or https://") from None
        except httpx.InvalidURL as exc:
            raise _Fatal(f"invalid URL: {exc}") from None
        except httpx.ConnectTimeout:
            raise _Retryable(f"connect timed out after {_secs(self.timeout)}") from None
        except httpx.TimeoutException:
            raise _Retryable(f"timed out after {_secs(self.timeout)}") from None
        except httpx.ConnectError as exc:
            msg = connect_error_message(exc, url)
            if msg.startswith("TLS certificate"):  # a retry meets the same certificate
                raise _Fatal(msg) from None
            raise _Retryable(msg) from None
        except MalformedResponse as exc:
            raise _Fatal(f"server broke the HTTP protocol: {exc}") from None
        except httpx.RemoteProtocolError as exc:
            raise _Retryable(f"server broke the HTTP protocol: {exc}") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"network error: {type(exc).__name__}: {exc}") from None
        try:
            headers = resp.headers
            declared = headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.max_bytes:
                raise _Fatal(f"response is {_size(int(declared))}, over the {_size(self.max_bytes)} limit")
            chunks: list[bytes] = []
            size = 0
            try:
                # Without Content-Encoding the transport's stream is the body: skip httpx's decoder, re-chunker
                # and per-chunk context managers (resp.aclose() below closes the stream either way).
                raw = "content-encoding" not in headers and not resp.is_stream_consumed
                body = resp.stream if raw else resp.aiter_bytes()
                async for chunk in body:  # type: ignore[union-attr]
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise _Fatal(f"response is over the {_size(self.max_bytes)} limit (stopped reading)")
                    chunks.append(chunk)
            except httpx.TimeoutException:
                raise _Retryable(f"timed out after {_secs(self.timeout)} while reading the body") from None
            except httpx.DecodingError as exc:
                raise _Fatal(f"response body cannot be decoded: {exc}") from None
            except MalformedResponse as exc:
                raise _Fatal(f"server broke the HTTP protocol: {exc}") from None
            except httpx.TransportError as exc:
                raise _Retryable(f"connection lost while reading the body: {type(exc).__name__}") from None
        finally:
            await resp.aclose()
            # httpx links a response and its stream both ways: unlinked, the pair is freed at once instead of
            # waiting for the cyclic GC (15 objects per poll; their gen-2 sweeps stalled polling ~100 ms).
            resp.stream = _SPENT
        return HttpResponse(resp.status_code, resp.reason_phrase, resp.headers, b"".join(chunks),
                            time.monotonic() - started)

    def _build(self, client: httpx.AsyncClient, method: str, url: str, params: Mapping[str, Any] | None,
               json_body: Any, data: Mapping[str, Any] | None, accept: str | None) -> httpx.Request:
        """The httpx.Request; body-less requests are built once and reused (building costs ~100 µs)."""
        cacheable = params is None and json_body is None and data is None
        key = (method, url, accept)
        if cacheable:
            cached = self._requests.get(key)
            if cached is not None:
                return cached
        headers = dict(self.headers)
        if accept and not any(k.lower() == "accept" for k in headers):
            headers["Accept"] = accept
        # No per-request timeouts: `request` bounds every attempt with one deadline (asyncio.timeout), which
        # always fires first; timeouts here too would only cost timers per poll in aiohttp.
        req = client.build_request(method, url, params=params, json=json_body, data=data, headers=headers,
                                   timeout=None)
        if cacheable and len(self._requests) < 256:
            req.extensions[REUSED] = True  # sent unchanged every poll: the transport may keep its conversion
            self._requests[key] = req
        return req

    def _json(self, resp: HttpResponse, method: str, url: str) -> Any:
        try:
            return json.loads(resp.body)
        except (ValueError, UnicodeDecodeError):
            ctype = resp.headers.get("content-type", "no content type").split(";")[0]
            start = _short(resp.text(), 30) if resp.body else "an empty body"
            where = f"{method} {redact_url(self._url(url))}"
            msg = f"response is not JSON ({ctype}, starts {start!r})"
            raise self._error(msg, where, self._secrets) from None

    def _error(self, msg: str, where: str, secrets: Iterable[str]) -> SourceError:
        return SourceError(_scrub(f"{self.label}: {msg} ({where})", secrets))

    def fail(self, msg: str, method: str, url: str) -> SourceError:
        """A SourceError in this poller's style (label, message, redacted request) for callers' own checks."""
        return self._error(msg, f"{method} {redact_url(self._url(url))}", self._secrets)

    def status_error(self, resp: HttpResponse, method: str, url: str) -> SourceError:
        """The standard error for an HTTP error status (401/403 named as an authentication problem)."""
        return self.fail(status_message(resp), method, url)


def status_message(resp: HttpResponse) -> str:
    """One line for an HTTP error status; 401 and 403 are named as an authentication problem."""
    reason = resp.reason or ""
    if resp.status in (401, 403):
        return f"authentication failed: HTTP {resp.status} {reason} (check the token or headers)".replace(
            "  ", " ")
    return f"HTTP {resp.status} {reason}".rstrip()


def _secs(s: float) -> str:
    return f"{s * 1000:.0f}ms" if s < 1 else f"{s:g}s"


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n} bytes"
