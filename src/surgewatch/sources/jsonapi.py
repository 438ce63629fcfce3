"""Campaign traffic from any JSON endpoint: one number at a dotted path, or one number per campaign.

Two modes (paths are dotted, list indexes allowed: `data.sites.0.visitors`; numbers may be strings):
- `value = "data.realtime.visitors"`: `traffic:NAME/visitors` is that number; no per-campaign series.
- `items = "data.campaigns"`, `key = "name"`, `value = "visitors"`: `items` is a list of objects (or an
  object keyed by campaign); each item's `key` is matched against a campaign's utm_campaign and its `value`
  becomes `campaign:CAMPAIGN/visitors` (0 when the campaign is absent from the list); the total
  `traffic:NAME/visitors` is the sum over all items.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import TlsConfig
from ..model import series
from .analytics import CampaignPairs, call_json
from .base import Reading, SourceError
from .http import HttpPoller, as_number, dig


class JsonTrafficSource:
    """Polls one JSON URL and picks visitor numbers out of it by path."""

    def __init__(self, traffic: str, url: str, campaigns: CampaignPairs, interval: float, timeout: float, *,
                 value: str, items: str | None = None, key: str | None = None,
                 headers: Mapping[str, str] | None = None, http: HttpPoller | None = None,
                 tls: TlsConfig | None = None) -> None:
        self.name = f"traffic:{traffic}"
        self.traffic = traffic
        self.url = url
        self.campaigns = list(campaigns)
        self.interval = interval
        self.timeout = timeout
        self.demo = False
        self.value = value
        self.items = items
        self.key = key or "name"
        self.http = http or HttpPoller(label=self.name, headers=headers, timeout=timeout, tls=tls)
        self.notice: str | None = None
        self.set_campaigns(self.campaigns)

    def set_campaigns(self, campaigns: list[tuple[str, str]]) -> None:
        """Report on these (campaign name, utm_campaign) pairs from the next poll on."""
        self.campaigns = list(campaigns)
        self.notice = None
        if self.items is None and self.campaigns:
            names = ", ".join(n for n, _ in self.campaigns)
            self.notice = (f"{self.name}: no per-campaign numbers without `items` (campaign series not "
                           f"produced for: {names})")

    async def poll(self) -> Reading:
        """Fetch the document and extract the configured numbers."""
        doc = await call_json(self.http, "GET", self.url)
        details: dict[str, Any] = {"notice": self.notice} if self.notice else {}
        if self.items is None:
            total = self._number(doc, self.value, "value")
            return Reading({series("traffic", self.traffic, "visitors"): total}, details)
        by_key = self._items(doc)
        out = {series("traffic", self.traffic, "visitors"): float(sum(by_key.values()))}
        for name, utm in self.campaigns:
            out[series("campaign", name, "visitors")] = by_key.get(utm, 0.0)
        details["items"] = len(by_key)
        return Reading(out, details)

    def _number(self, doc: Any, path: str, what: str) -> float:
        try:
            return as_number(dig(doc, path, "response"), f"the value at {path!r}")
        except SourceError as exc:
            raise SourceError(f"{self.name}: {what} path {path!r}: {exc}") from None

    def _items(self, doc: Any) -> dict[str, float]:
        assert self.items is not None
        try:
            found = dig(doc, self.items, "response")
        except SourceError as exc:
            raise SourceError(f"{self.name}: items path {self.items!r}: {exc}") from None
        out: dict[str, float] = {}
        if isinstance(found, Mapping):  # {"spring_sale": {"visitors": 3}, …} or {"spring_sale": 3}
            for k, item in found.items():
                if isinstance(item, Mapping):
                    out[str(k)] = self._number(item, self.value, f"items[{k!r}] value")
                else:
                    out[str(k)] = self._number(item, "", f"items[{k!r}]")
            return out
        if not isinstance(found, list):
            raise SourceError(f"{self.name}: items path {self.items!r} is not a list or object of items")
        for i, item in enumerate(found):
            if not isinstance(item, Mapping):
                raise SourceError(f"{self.name}: items path {self.items!r}: item {i} is not an object")
            if self.key not in item:
                raise SourceError(f"{self.name}: items path {self.items!r}: item {i} has no key {self.key!r}")
            k = str(item[self.key])
            out[k] = out.get(k, 0.0) + self._number(item, self.value, f"items[{i}] value")
        return out

    async def close(self) -> None:
        """Release the HTTP client."""
        await self.http.aclose()
