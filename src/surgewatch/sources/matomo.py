"""Campaign traffic from Matomo's real-time counters (`Live.getCounters`, raw logs, no archiving lag).

- `traffic:NAME/visitors`: `visitors` of `Live.getCounters` over the last `window` (whole minutes, default 5).
- `campaign:CAMPAIGN/visitors`: the same counter with `segment=referrerType==campaign;referrerName==<utm>`.
With campaigns, all counters come in one `API.getBulkRequest` call per poll. Matomo sends the numbers as
strings. `token_auth` always travels in the POST body, never in the URL ("secure requests only" tokens
refuse it there, and URLs end up in logs). `site_id` is Matomo's idSite.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from ..config import TlsConfig
from ..model import series
from .analytics import (
    DEFAULT_WINDOW,
    CampaignPairs,
    CampaignTrafficSource,
    call_json,
    shape_error,
    vendor_message,
    window_minutes,
)
from .base import Reading, SourceError
from .http import HttpPoller, as_number


def campaign_segment(utm: str) -> str:
    """The Matomo segment selecting visits of one campaign (the value URL-encoded, as segments require)."""
    return f"referrerType==campaign;referrerName=={quote(utm, safe='')}"


class MatomoSource(CampaignTrafficSource):
    """Polls one Matomo site's live counters, overall and per campaign."""

    def __init__(self, traffic: str, url: str, site_id: str, campaigns: CampaignPairs, interval: float,
                 timeout: float, *, token: str | None = None, window: float | None = None,
                 headers: Mapping[str, str] | None = None, http: HttpPoller | None = None,
                 tls: TlsConfig | None = None, conversions: bool = False) -> None:
        super().__init__(traffic, site_id, campaigns, interval, timeout)
        self.conversions = conversions  # campaign:NAME/conversions from the counters' visitsConverted
        self.token = token
        self.minutes = window_minutes(window or DEFAULT_WINDOW)
        base = url.rstrip("/")
        self.endpoint = base if base.endswith(".php") else f"{base}/index.php"
        self.http = http or HttpPoller(label=self.name, headers=headers, timeout=timeout, tls=tls)

    def counters_params(self, segment: str | None = None) -> dict[str, str]:
        """The parameters of one Live.getCounters call."""
        p = {"method": "Live.getCounters", "idSite": self.site_id, "lastMinutes": str(self.minutes),
             "format": "JSON"}
        if segment is not None:
            p["segment"] = segment
        return p

    def _body(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        body = dict(extra or {})
        if self.token:
            body["token_auth"] = self.token
        return body

    async def poll(self) -> Reading:
        """One request per poll: the plain counters, or a bulk request with one counter per campaign."""
        if not self.campaigns:
            doc = await call_json(self.http, "POST", self.endpoint,
                                  params={"module": "API", **self.counters_params()}, data=self._body(),
                                  secrets=[self.token])
            total = self._visitors(doc, "Live.getCounters")
            return Reading({series("traffic", self.traffic, "visitors"): total})
        utms = sorted({utm for _, utm in self.campaigns})
        subs = [self.counters_params()] + [self.counters_params(campaign_segment(u)) for u in utms]
        urls = {f"urls[{i}]": urlencode(p) for i, p in enumerate(subs)}
        doc = await call_json(self.http, "POST", self.endpoint,
                              params={"module": "API", "method": "API.getBulkRequest", "format": "JSON"},
                              data=self._body(urls), secrets=[self.token])
        if not isinstance(doc, list) or len(doc) != len(subs):
            raise shape_error(self.name, f"bulk request answer is not a list of {len(subs)} results", doc)
        out = {series("traffic", self.traffic, "visitors"): self._visitors(doc[0], "Live.getCounters")}
        per_utm = {u: self._visitors(doc[i + 1], f"Live.getCounters for campaign {u!r}")
                   for i, u in enumerate(utms)}
        converted = {u: self._counter(doc[i + 1], f"Live.getCounters for campaign {u!r}", "visitsConverted")
                     for i, u in enumerate(utms)} if self.conversions else {}
        for name, utm in self.campaigns:
            out[series("campaign", name, "visitors")] = per_utm[utm]
            if self.conversions:
                out[series("campaign", name, "conversions")] = converted[utm]
        return Reading(out)

    def _visitors(self, doc: Any, what: str) -> float:
        """`visitors` of a Live.getCounters answer: a one-element list of string counters."""
        return self._counter(doc, what, "visitors")

    def _counter(self, doc: Any, what: str, key: str) -> float:
        """One counter (`visitors`, `visitsConverted`) of a Live.getCounters answer."""
        err = vendor_message(doc)
        if err is not None:
            raise SourceError(f"{self.name}: {what}: the server answered with an error: {err}")
        row = doc[0] if isinstance(doc, list) and doc else doc
        if not isinstance(row, Mapping) or key not in row:
            raise shape_error(self.name, f'{what} answer is not [{{"{key}": "…", …}}]', doc)
        try:
            return as_number(row[key], f"{what} {key}")
        except SourceError as exc:
            raise SourceError(f"{self.name}: {exc}") from None

    async def close(self) -> None:
        """Release the HTTP client."""
        await self.http.aclose()
