"""Campaign traffic from Plausible Analytics: realtime visitors (Stats API v1) and per-campaign visitors (v2).

- `traffic:NAME/visitors`: `GET /api/v1/stats/realtime/visitors?site_id=…`, whose body is a bare JSON
  integer (visitors with a pageview in the last 5 minutes, Plausible's own definition).
- `campaign:CAMPAIGN/visitors`: one `POST /api/v2/query` per poll for all campaigns, grouped by
  `visit:utm_campaign` and filtered to the configured values, over a sliding window (`window`, default 5m)
  given as ISO datetimes; a campaign absent from the results had no visitors in the window.
Both calls carry `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..config import TlsConfig
from ..model import series
from .analytics import DEFAULT_WINDOW, CampaignPairs, CampaignTrafficSource, call_json, iso_utc, shape_error
from .base import Reading, SourceError
from .http import HttpPoller, as_number

DEFAULT_URL = "https://plausible.io"


class PlausibleSource(CampaignTrafficSource):
    """Polls one Plausible site."""

    def __init__(self, traffic: str, site_id: str, campaigns: CampaignPairs, interval: float,
                 timeout: float, *, url: str | None = None, token: str | None = None,
                 window: float | None = None,
                 headers: Mapping[str, str] | None = None, http: HttpPoller | None = None,
                 wall_clock: Callable[[], float] = time.time, tls: TlsConfig | None = None,
                 goals: Sequence[str] = ()) -> None:
        super().__init__(traffic, site_id, campaigns, interval, timeout)
        self.window = window or DEFAULT_WINDOW
        self.goals = list(goals)  # with goals: campaign:NAME/conversions, the visitors who completed one
        self.token = token
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        self.http = http or HttpPoller(label=self.name, base_url=url or DEFAULT_URL, headers=all_headers,
                                       timeout=timeout, tls=tls)
        self._wall = wall_clock

    async def poll(self) -> Reading:
        """The realtime total and, when campaigns are configured, their visitors in the window."""
        jobs = [self._total()]
        if self.campaigns:
            jobs.append(self._by_campaign())
            if self.goals:
                jobs.append(self._by_campaign("conversions"))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        out: dict[str, float] = {}
        for r in results:
            if isinstance(r, BaseException):
                raise r
            out.update(r)
        return Reading(out)

    async def _total(self) -> dict[str, float]:
        doc = await call_json(self.http, "GET", "/api/v1/stats/realtime/visitors",
                              params={"site_id": self.site_id}, secrets=[self.token])
        try:
            n = as_number(doc, "the realtime visitors body")
        except SourceError as exc:
            raise SourceError(f"{self.name}: {exc} (expected a bare integer such as 21)") from None
        return {series("traffic", self.traffic, "visitors"): n}

    def query_body(self, now: float, goals: bool = False) -> dict[str, Any]:
        """The v2 query: visitors per utm_campaign among ours, over [now - window, now]; with `goals`, only
        those who completed one of the configured goals (the campaign's conversions)."""
        utms = sorted({utm for _, utm in self.campaigns})
        filters: list[Any] = [["is", "visit:utm_campaign", utms]]
        if goals:
            filters.append(["is", "event:goal", self.goals])
        return {
            "site_id": self.site_id,
            "metrics": ["visitors"],
            "date_range": [iso_utc(now - self.window), iso_utc(now)],
            "dimensions": ["visit:utm_campaign"],
            "filters": filters,
        }

    async def _by_campaign(self, metric: str = "visitors") -> dict[str, float]:
        body = self.query_body(self._wall(), goals=metric == "conversions")
        doc = await call_json(self.http, "POST", "/api/v2/query", json_body=body, secrets=[self.token])
        rows = doc.get("results") if isinstance(doc, Mapping) else None
        if not isinstance(rows, list):
            raise shape_error(self.name, "v2 query answer has no `results` list", doc)
        found: dict[str, float] = {}
        for i, row in enumerate(rows):
            dims = row.get("dimensions") if isinstance(row, Mapping) else None
            metrics = row.get("metrics") if isinstance(row, Mapping) else None
            if not (isinstance(dims, list) and dims and isinstance(metrics, list) and metrics):
                raise shape_error(self.name, f"v2 query results[{i}] lacks dimensions/metrics lists", row)
            try:
                found[str(dims[0])] = as_number(metrics[0], f"results[{i}].metrics[0]")
            except SourceError as exc:
                raise SourceError(f"{self.name}: v2 query: {exc}") from None
        return {series("campaign", name, metric): found.get(utm, 0.0) for name, utm in self.campaigns}

    async def close(self) -> None:
        """Release the HTTP client."""
        await self.http.aclose()
