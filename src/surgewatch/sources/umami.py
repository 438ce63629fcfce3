"""Campaign traffic from Umami: active visitors for the site, per-campaign views from the UTM report.

- `traffic:NAME/visitors`: `GET …/websites/<site_id>/active` (unique visitors in the last 5 minutes, Umami's
  definition); both the current `{"visitors": n}` and the older `{"x": n}` shapes are read.
- `campaign:CAMPAIGN/visitors`: `POST …/reports/utm` over the last `window` (default 5m); Umami's UTM report
  counts *views* per utm_campaign value, so these are page views of campaign visits, not unique visitors.
  Releases without the UTM report (2.10 and older: the path is taken for a saved report's id, so the request
  is refused with 400 "name is a required field", or 404) are asked for the page views per query string
  instead (`GET …/websites/<site_id>/metrics?type=query`), summed per utm_campaign value: the same views.
Auth: Umami Cloud with `token` (sent as `x-umami-api-key`, base URL `https://api.umami.is/v1` by default), or
self-hosted with `username`/`password` (`POST /api/auth/login` → bearer token, logged in again on a 401).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from ..config import TlsConfig
from ..model import series
from .analytics import (
    DEFAULT_WINDOW,
    CampaignPairs,
    CampaignTrafficSource,
    HttpStatusError,
    call_json,
    iso_utc,
    shape_error,
)
from .base import Reading, SourceError
from .http import HttpPoller, as_number

CLOUD_URL = "https://api.umami.is/v1"


def api_base(url: str | None, cloud: bool) -> str:
    """The API root: Cloud URLs are used as given (Umami Cloud's without one); a self-hosted site's API lives
    under `/api` (its url is required by the config: web_kinds.UmamiConfig)."""
    if url is None:
        return CLOUD_URL
    url = url.rstrip("/")
    return url if cloud or url.endswith("/api") else f"{url}/api"


def active_visitors(doc: Any) -> float:
    """Visitors from either shape of the active answer: `{"visitors": n}` (current) or `{"x": n}` (older)."""
    if isinstance(doc, list) and len(doc) == 1:  # some releases wrapped it in a one-element list
        doc = doc[0]
    if isinstance(doc, Mapping):
        for k in ("visitors", "x"):
            if k in doc:
                return as_number(doc[k], f"active.{k}")
    raise SourceError('active visitors answer is neither {"visitors": n} nor {"x": n}')


class UmamiSource(CampaignTrafficSource):
    """Polls one Umami website (self-hosted or Cloud)."""

    def __init__(self, traffic: str, site_id: str, campaigns: CampaignPairs, interval: float,
                 timeout: float, *, url: str | None = None, token: str | None = None,
                 username: str | None = None, password: str | None = None, window: float | None = None,
                 headers: Mapping[str, str] | None = None, http: HttpPoller | None = None,
                 wall_clock: Callable[[], float] = time.time, tls: TlsConfig | None = None) -> None:
        super().__init__(traffic, site_id, campaigns, interval, timeout)
        self.window = window or DEFAULT_WINDOW
        self.cloud = bool(token)  # else self-hosted: the config made sure of url, username and password
        self.token, self.username, self.password = token, username, password
        all_headers = dict(headers or {})
        if token:
            all_headers["x-umami-api-key"] = token
        base = api_base(url, self.cloud)
        self._base, self._headers, self._tls = base, all_headers, tls
        # Pollers cache built requests with their headers, so a new bearer token means a new poller
        # (cheap: the keep-alive client underneath is shared per server).
        self.http = http or HttpPoller(label=self.name, base_url=base, headers=all_headers, timeout=timeout,
                                       tls=tls)
        self._bearer: str | None = None
        self._login_lock = asyncio.Lock()
        self._wall = wall_clock
        self.logins = 0
        self.utm_report: bool | None = None  # None until the server said whether it has the UTM report

    @property
    def _secrets(self) -> list[str | None]:
        return [self.token, self.password, self._bearer]

    async def _login(self, stale: str | None) -> None:
        """Log in (self-hosted) unless another call already replaced the `stale` token."""
        async with self._login_lock:
            if self._bearer is not None and self._bearer != stale:
                return
            login = self._poller(None)
            try:
                doc = await call_json(login, "POST", "/auth/login",
                                      json_body={"username": self.username, "password": self.password},
                                      secrets=self._secrets)
            finally:
                await login.aclose()
            token = doc.get("token") if isinstance(doc, Mapping) else None
            if not isinstance(token, str) or not token:
                raise SourceError(f"{self.name}: login answer has no token")
            self._bearer = token
            old, self.http = self.http, self._poller(token)
            await old.aclose()
            self.logins += 1

    def _poller(self, bearer: str | None) -> HttpPoller:
        """A poller for the API, with `Authorization: Bearer …` when a token is given."""
        headers = dict(self._headers)
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return HttpPoller(label=self.name, base_url=self._base, headers=headers, timeout=self.timeout,
                          tls=self._tls)

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        """A JSON call; self-hosted logs in first and once more when the token has expired (401)."""
        if self.cloud:
            return await call_json(self.http, method, path, secrets=self._secrets, **kw)
        if self._bearer is None:
            await self._login(None)
        used = self._bearer
        try:
            return await call_json(self.http, method, path, secrets=self._secrets, **kw)
        except HttpStatusError as exc:
            if exc.status != 401:
                raise
        await self._login(used)
        return await call_json(self.http, method, path, secrets=self._secrets, **kw)

    async def poll(self) -> Reading:
        """Active visitors and, with campaigns, their views in the window."""
        if not self.cloud and self._bearer is None:
            await self._login(None)  # once, before the concurrent calls
        jobs = [self._total()]
        if self.campaigns:
            jobs.append(self._by_campaign())
        out: dict[str, float] = {}
        for r in await asyncio.gather(*jobs, return_exceptions=True):
            if isinstance(r, BaseException):
                raise r
            out.update(r)
        return Reading(out)

    async def _total(self) -> dict[str, float]:
        doc = await self._call("GET", f"/websites/{self.site_id}/active")
        try:
            n = active_visitors(doc)
        except SourceError as exc:
            raise shape_error(self.name, str(exc), doc) from None
        return {series("traffic", self.traffic, "visitors"): n}

    def report_body(self, now: float) -> dict[str, Any]:
        """The UTM report request over [now - window, now]."""
        return {"websiteId": self.site_id, "type": "utm", "filters": {},
                "parameters": {"startDate": iso_utc(now - self.window, millis=True),
                               "endDate": iso_utc(now, millis=True)}}

    async def _by_campaign(self) -> dict[str, float]:
        now = self._wall()
        if self.utm_report is not False:
            try:
                doc = await self._call("POST", "/reports/utm", json_body=self.report_body(now))
                self.utm_report = True
            except HttpStatusError as exc:
                if exc.status not in (400, 404) or self.utm_report:
                    raise
                self.utm_report = False  # an older release: ask the query-string metric from now on
        if self.utm_report is False:
            found = await self._views_by_query(now)
        else:
            found = self._utm_rows(doc)
        return {series("campaign", name, "visitors"): found.get(utm, 0.0) for name, utm in self.campaigns}

    async def _views_by_query(self, now: float) -> dict[str, float]:
        """Page views per utm_campaign from `metrics?type=query` (rows `{"x": query string, "y": views}`)."""
        params = {"type": "query", "startAt": int((now - self.window) * 1000), "endAt": int(now * 1000),
                  "limit": 1000}
        doc = await self._call("GET", f"/websites/{self.site_id}/metrics", params=params)
        if not isinstance(doc, list):
            raise shape_error(self.name, "query metrics answer is not a list", doc)
        found: dict[str, float] = {}
        for i, row in enumerate(doc):
            if not isinstance(row, Mapping) or "x" not in row or "y" not in row:
                raise shape_error(self.name, f"query metrics [{i}] is not {{x, y}}", row)
            utm = parse_qs(str(row["x"] or "")).get("utm_campaign")
            if utm:
                try:
                    views = as_number(row["y"], f"metrics[{i}].y")
                except SourceError as exc:
                    raise SourceError(f"{self.name}: query metrics: {exc}") from None
                found[utm[-1]] = found.get(utm[-1], 0.0) + views
        return found

    def _utm_rows(self, doc: Any) -> dict[str, float]:
        """Views per utm_campaign value from the UTM report."""
        rows = doc.get("utm_campaign") if isinstance(doc, Mapping) else None
        if not isinstance(rows, list):
            raise shape_error(self.name, "UTM report has no `utm_campaign` list", doc)
        found: dict[str, float] = {}
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping) or "utm" not in row or "views" not in row:
                raise shape_error(self.name, f"UTM report utm_campaign[{i}] is not {{utm, views}}", row)
            try:
                found[str(row["utm"])] = found.get(str(row["utm"]), 0.0) + as_number(row["views"],
                                                                                      f"utm_campaign[{i}].views")
            except SourceError as exc:
                raise SourceError(f"{self.name}: UTM report: {exc}") from None
        return found

    async def close(self) -> None:
        """Release the HTTP client."""
        await self.http.aclose()
