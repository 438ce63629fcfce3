"""GA4 access tokens from a Google service-account key file, refreshed through `google-auth`.

The key file (JSON, `"type": "service_account"`) holds the account's e-mail, its RSA private key and the token
endpoint (`token_uri`). `google-auth` signs a JWT with the key and trades it at that endpoint
(`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`) for an access token that lasts about an hour.
Its refresh is blocking, so it runs in a worker thread, and only when the token is missing or near expiry
(google-auth's own threshold, a few minutes before `expires_in` runs out).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..redact import scrub
from .base import SourceError

SCOPE = "https://www.googleapis.com/auth/analytics.readonly"


class KeyFileError(ValueError):
    """The key file cannot be read or is not a service-account key; the message is one line."""


@dataclass(frozen=True)
class ServiceAccountKey:
    """google-auth credentials (analytics read-only scope) and where they are refreshed."""

    credentials: Any  # google.oauth2.service_account.Credentials
    token_uri: str
    email: str


def load_key(path: str) -> ServiceAccountKey:
    """The service-account key in `path`, or KeyFileError saying what is wrong with the file."""
    from google.auth.exceptions import GoogleAuthError
    from google.oauth2 import service_account

    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path} is not JSON: {_line(str(exc))}") from None
    if not isinstance(info, dict):
        raise KeyFileError(f"{path} is not a service-account key (a JSON object)")
    if info.get("type") != "service_account":
        raise KeyFileError(f'{path} is not a service-account key ("type" is {info.get("type")!r})')
    try:
        creds = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
    except KeyError as exc:  # missing field
        raise KeyFileError(f"{path}: service-account key has no {exc.args[0]!r}") from None
    except (ValueError, TypeError, GoogleAuthError) as exc:  # malformed private key and the like
        raise KeyFileError(f"{path}: unusable service-account key: {_line(str(exc))}") from None
    return ServiceAccountKey(creds, str(info["token_uri"]), str(info["client_email"]))


class _Response:
    """google-auth's transport Response over an httpx response."""

    def __init__(self, resp: httpx.Response) -> None:
        self.status = resp.status_code
        self.headers = resp.headers
        self.data = resp.content


class HttpxRequest:
    """google-auth's transport `Request` interface over httpx (the HTTP library the project already uses)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def __call__(self, url: str, method: str = "GET", body: bytes | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float | None = None,
                 **kwargs: Any) -> _Response:
        from google.auth.exceptions import TransportError

        try:
            with httpx.Client(timeout=timeout or self.timeout, follow_redirects=False) as client:
                return _Response(client.request(method, url, content=body, headers=dict(headers or {})))
        except httpx.HTTPError as exc:
            kind = type(exc).__name__
            raise TransportError(f"{kind}: {exc}" if str(exc) else kind) from None


class ServiceAccountToken:
    """Hands out a valid access token, refreshing it off the event loop when it is near expiry."""

    def __init__(self, key: ServiceAccountKey, label: str, timeout: float) -> None:
        self.credentials = key.credentials
        self.token_uri = key.token_uri
        self.label = label
        self.timeout = timeout
        self.refreshes = 0
        self._request = HttpxRequest(timeout + 1.0)  # the thread outlives a timed-out wait, then ends itself
        self._task: asyncio.Task[None] | None = None

    async def bearer(self) -> str:
        """The current access token; refreshed first when missing or about to expire."""
        from google.auth.exceptions import GoogleAuthError

        if not self.credentials.valid:
            if self._task is None or self._task.done():  # one refresh at a time, even past a timeout
                self._task = asyncio.create_task(asyncio.to_thread(self.credentials.refresh, self._request))
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.timeout)
            except TimeoutError:
                raise SourceError(f"{self.label}: token refresh at {self.token_uri} timed out after "
                                  f"{self.timeout:g} s") from None
            except (GoogleAuthError, ValueError, TypeError, KeyError) as exc:  # incl. malformed token answers
                raise SourceError(self._message(exc)) from None
            self.refreshes += 1
        return str(self.credentials.token)

    def _message(self, exc: BaseException) -> str:
        from google.auth.exceptions import RefreshError, TransportError

        if isinstance(exc, RefreshError):
            what = exc.args[0] if exc.args else "no detail"
            return f"{self.label}: authentication failed: token refresh at {self.token_uri}: {_line(str(what))}"
        if isinstance(exc, TransportError):
            return f"{self.label}: cannot reach the token endpoint {self.token_uri}: {_line(str(exc))}"
        return f"{self.label}: token endpoint {self.token_uri} answered unreadably: {type(exc).__name__}: " \
               f"{_line(str(exc))}"

    async def close(self) -> None:
        """Wait for a refresh still running in its thread (it cannot be cancelled)."""
        if self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)


def _line(text: str, n: int = 200) -> str:
    """`text` on one line, at most `n` characters."""
    text = scrub(text, ())
    return text if len(text) <= n else text[: n - 1] + "…"
