"""Pieces shared by the analytics-API traffic sources: campaign pairs, time windows and vendor error bodies.

Every vendor reports failures in its own JSON shape (Plausible `{"error": "..."}`, Matomo
`{"result": "error", "message": ...}` even with HTTP 200, GA4 `{"error": {"code", "message", "status"}}`,
Prometheus `{"status": "error", "errorType", "error"}`); `call_json` turns each into one line that names the
source and the request, with every secret replaced by `***`.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..redact import scrub, secrets_of
from .base import SourceError
from .http import HttpPoller, redact_url

# (campaign name, utm_campaign value): what a traffic source needs to know of each [[campaign]] it feeds.
CampaignPairs = Sequence[tuple[str, str]]

RETRY_STATUS = {429, 502, 503, 504}  # answers worth one more try within the poll's timeout
DEFAULT_WINDOW = 300.0  # seconds; the "realtime" window of Plausible and Umami (visitors in the last 5 min)


class HttpStatusError(SourceError):
    """The server answered with an HTTP error status (kept so callers can react, e.g. log in again on 401)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def window_minutes(window: float, cap: int | None = None) -> int:
    """A window in whole minutes (rounded up, at least 1, at most `cap`)."""
    n = max(1, math.ceil(window / 60.0 - 1e-9))
    return min(n, cap) if cap is not None else n


def iso_utc(ts: float, millis: bool = False) -> str:
    """A UNIX time as ISO 8601 UTC: `2026-11-23T12:00:00+00:00`, or `…T12:00:00.000Z` with millis."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    if millis:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.replace(microsecond=0).isoformat()


def vendor_message(doc: Any) -> str | None:
    """The error message inside a vendor's JSON error body, or None when the document is not an error."""
    if not isinstance(doc, Mapping):
        return None
    if doc.get("result") == "error":  # Matomo
        return str(doc.get("message") or "error without a message")
    if doc.get("status") == "error":  # Prometheus envelope
        kind, err = doc.get("errorType"), doc.get("error")
        return f"{kind}: {err}" if kind else str(err or "error without a message")
    err = doc.get("error")
    if isinstance(err, Mapping):  # Google APIs
        parts = [str(err[k]) for k in ("status", "message") if err.get(k)]
        return ": ".join(parts) or json.dumps(err)[:200]
    if isinstance(err, str) and err:  # Plausible, Umami
        return err
    msg = doc.get("message")
    if isinstance(msg, str) and msg and len(doc) <= 3:
        return msg
    return None


async def call_json(http: HttpPoller, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                    json_body: Any = None, data: Mapping[str, Any] | None = None,
                    secrets: Iterable[str | None] = ()) -> Any:
    """One request answered in JSON; SourceError with the vendor's own message for error bodies."""
    deadline = time.monotonic() + http.timeout
    for attempt in range(1 + http.retries):
        # check_status=False keeps the error body (the vendor's message), so busy answers are retried here.
        resp = await http.request(method, path, params=params, json_body=json_body, data=data,
                                  accept="application/json", check_status=False)
        if resp.status not in RETRY_STATUS or attempt == http.retries:
            break
        pause = random.uniform(0, min(1.0, 0.05 * 2**attempt))
        if time.monotonic() + pause >= deadline:
            break
        await asyncio.sleep(pause)
    full = path if "://" in path else f"{http.base_url or ''}/{path.lstrip('/')}"
    where = f"{method} {redact_url(full)}"
    hidden = [*secrets, *secrets_of(http.headers, full, params, data)]
    try:
        doc: Any = json.loads(resp.body)
        parsed = True
    except (ValueError, UnicodeDecodeError):
        doc, parsed = None, False
    detail = vendor_message(doc) if parsed else None
    if resp.status >= 400:
        text = detail or (_short(resp.text()) if resp.body else "")
        head = (f"authentication failed: HTTP {resp.status}" if resp.status in (401, 403)
                else f"HTTP {resp.status} {resp.reason}".rstrip())
        raise HttpStatusError(scrub(f"{http.label}: {head}{': ' + text if text else ''} ({where})", hidden),
                              resp.status)
    if not parsed:
        ctype = resp.headers.get("content-type", "no content type").split(";")[0]
        start = repr(_short(resp.text(), 30)) if resp.body else "an empty body"
        msg = f"{http.label}: response is not JSON ({ctype}, starts {start}) ({where})"
        raise SourceError(scrub(msg, hidden))
    if detail is not None and isinstance(doc, Mapping) and (doc.get("result") == "error"
                                                           or doc.get("status") == "error"):
        msg = f"{http.label}: the server answered with an error: {detail} ({where})"
        raise SourceError(scrub(msg, hidden))
    return doc


def shape_error(label: str, what: str, doc: Any) -> SourceError:
    """A one-line error for a response of the wrong shape, showing the start of what arrived."""
    shown = _short(json.dumps(doc, default=str), 60)
    return SourceError(f"{label}: {what}, got {shown}")


def _short(text: str, n: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


class CampaignTrafficSource:
    """What every analytics source shares: its name, schedule and the campaigns it reports on."""

    def __init__(self, traffic: str, site_id: str, campaigns: Iterable[tuple[str, str]], interval: float,
                 timeout: float) -> None:
        self.name = f"traffic:{traffic}"
        self.traffic = traffic
        self.site_id = site_id
        self.campaigns = list(campaigns)
        self.interval = interval
        self.timeout = timeout
        self.demo = False

    def set_campaigns(self, campaigns: list[tuple[str, str]]) -> None:
        """Report on these (campaign name, utm_campaign) pairs from the next poll on."""
        self.campaigns = list(campaigns)
