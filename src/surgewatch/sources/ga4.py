"""Site traffic from Google Analytics 4's Realtime API (`properties/<id>:runRealtimeReport`).

- `traffic:NAME/visitors`: `activeUsers` over the last `window` minutes (default 5, at most 30: the
  realtime window of standard properties).
- No campaign series: GA4's realtime schema has no campaign, source or medium dimension (only the core,
  non-realtime `runReport` has `sessionCampaignName`), so campaigns fed by a ga4 source get no
  `campaign:…/visitors`; the source says so once in the log and in every reading's `notice`.
Auth: `credentials_file`, a service-account key file: access tokens (scope analytics.readonly, about an hour
each) are obtained and refreshed through google-auth before they expire (see `ga4_auth`). Or `token`, a static
OAuth 2.0 access token for short runs and tests. Either is sent as a bearer token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..config import TlsConfig
from ..model import series
from .analytics import DEFAULT_WINDOW, CampaignPairs, call_json, shape_error, window_minutes
from .base import Reading, SourceError
from .ga4_auth import KeyFileError, ServiceAccountToken, load_key
from .http import HttpPoller, as_number

DEFAULT_URL = "https://analyticsdata.googleapis.com"
log = logging.getLogger(__name__)


class GA4Source:
    """Polls one GA4 property's realtime active users."""

    def __init__(self, traffic: str, property_id: str, campaigns: CampaignPairs, interval: float,
                 timeout: float, *, token: str | None = None, url: str | None = None,
                 window: float | None = None, headers: Mapping[str, str] | None = None,
                 http: HttpPoller | None = None, credentials_file: str | None = None,
                 tls: TlsConfig | None = None) -> None:
        self.name = f"traffic:{traffic}"
        self.traffic = traffic
        self.property_id = property_id.removeprefix("properties/")
        self.interval = interval
        self.timeout = timeout
        self.demo = False
        self.token = token
        self.minutes = window_minutes(window or DEFAULT_WINDOW, cap=30)
        self.auth: ServiceAccountToken | None = None
        if credentials_file:  # else a token: the config made sure of one (web_kinds.GA4Config)
            try:
                self.auth = ServiceAccountToken(load_key(credentials_file), self.name, timeout)
            except KeyFileError as exc:
                raise SourceError(f"{self.name}: credentials_file: {exc}") from None
        self._base, self._headers = url or DEFAULT_URL, dict(headers or {})
        self._bearer = token
        self._tls = tls
        self.http = http or self._poller(token)
        self.notice: str | None = None
        if campaigns:
            names = ", ".join(n for n, _ in campaigns)
            self.notice = (f"{self.name}: GA4 realtime reports have no campaign dimension; "
                           f"no campaign series for {names}")
            log.warning("%s", self.notice)

    def report_body(self) -> dict[str, Any]:
        """Active users over the last `minutes` minutes, no dimensions."""
        return {"metrics": [{"name": "activeUsers"}],
                "minuteRanges": [{"name": "window", "startMinutesAgo": self.minutes - 1, "endMinutesAgo": 0}]}

    def _poller(self, bearer: str | None) -> HttpPoller:
        """A poller sending `Authorization: Bearer <bearer>` (pollers cache their headers: one per token)."""
        headers = dict(self._headers)
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return HttpPoller(label=self.name, base_url=self._base, headers=headers, timeout=self.timeout,
                          tls=self._tls)

    async def _use_current_token(self) -> None:
        """With a key file: a fresh access token when the current one is near expiry, and a poller for it."""
        if self.auth is None:
            return
        bearer = await self.auth.bearer()
        if bearer != self._bearer:
            old, self.http, self._bearer = self.http, self._poller(bearer), bearer
            await old.aclose()

    async def poll(self) -> Reading:
        """Run the realtime report and read its one row (no rows means nobody is active)."""
        await self._use_current_token()
        doc = await call_json(self.http, "POST", f"/v1beta/properties/{self.property_id}:runRealtimeReport",
                              json_body=self.report_body(), secrets=[self.token, self._bearer])
        if not isinstance(doc, Mapping):
            raise shape_error(self.name, "runRealtimeReport answer is not an object", doc)
        rows = doc.get("rows", [])
        if not isinstance(rows, list):
            raise shape_error(self.name, "runRealtimeReport `rows` is not a list", rows)
        total = 0.0
        for i, row in enumerate(rows):
            values = row.get("metricValues") if isinstance(row, Mapping) else None
            if not isinstance(values, list) or not values or not isinstance(values[0], Mapping):
                raise shape_error(self.name, f"rows[{i}] has no metricValues", row)
            try:
                total += as_number(values[0].get("value"), f"rows[{i}].metricValues[0].value")
            except SourceError as exc:
                raise SourceError(f"{self.name}: {exc}") from None
        details = {"notice": self.notice} if self.notice else {}
        return Reading({series("traffic", self.traffic, "visitors"): total}, details)

    async def close(self) -> None:
        """Release the HTTP client (and wait for a token refresh still running in its thread)."""
        if self.auth is not None:
            await self.auth.close()
        await self.http.aclose()
