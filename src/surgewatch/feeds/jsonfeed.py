"""Campaigns from any JSON endpoint that lists them: `items` is the dotted path to the list, and each campaign
field is read from an item at the dotted path `[campaign_feed.fields]` gives (default: the field's own name).

Times are ISO 8601 strings or Unix seconds; `hosts` a list or a comma-separated string; an item whose `status`
is "cancelled"/"canceled" is dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..config import CampaignConfig
from ..model import FEED_FIELDS
from ..sources.base import SourceError
from ..sources.http import HttpPoller, as_number, dig
from .base import CANCELLED, FeedResult, campaign_name, host_list

if TYPE_CHECKING:  # the kinds module imports this one when it builds a feed
    from ..sources.feed_kinds import JsonFeedConfig


def _time(value: Any, what: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise SourceError(f"{what} is {value[:30]!r}, expected an ISO 8601 time or Unix seconds") from None
        return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()
    raise SourceError(f"{what} is not a time")


class JsonFeedFetcher:
    def __init__(self, cfg: JsonFeedConfig, traffic: str, timeout: float) -> None:
        self.cfg, self.traffic = cfg, traffic
        self.paths = {f: cfg.fields.get(f, f) for f in FEED_FIELDS}
        self._http = HttpPoller(label=f"feed:{cfg.name}", headers=cfg.headers, timeout=timeout, tls=cfg.tls)

    async def __call__(self, now: float) -> FeedResult:
        doc = await self._http.get_json(self.cfg.url or "")
        items = dig(doc, self.cfg.items or "")
        if not isinstance(items, list):
            raise SourceError(f"{self.cfg.items or 'the document'} is not a list of campaigns")
        result = FeedResult()
        for i, item in enumerate(items):
            try:
                campaign = self._campaign(item)
            except SourceError as exc:
                result.notices.append(f"item {i}: {exc}: skipped")
                continue
            if campaign is not None:
                result.add(campaign)
        return result

    def _get(self, item: Any, field: str) -> Any:
        try:
            return dig(item, self.paths[field], "item")
        except SourceError:
            return None

    def _campaign(self, item: Any) -> CampaignConfig | None:
        if str(self._get(item, "status") or "").lower() in CANCELLED:
            return None
        raw_name = self._get(item, "name")
        if raw_name is None or not str(raw_name).strip():
            raise SourceError(f"no {self.paths['name']!r}")
        start_raw = self._get(item, "start")
        if start_raw is None:
            raise SourceError(f"campaign {campaign_name(str(raw_name))!r} has no {self.paths['start']!r}")
        start = _time(start_raw, self.paths["start"])
        end_raw = self._get(item, "end")
        end = _time(end_raw, self.paths["end"]) if end_raw is not None else start + self.cfg.duration
        if end <= start:
            end = start + self.cfg.duration
        hosts = self._get(item, "hosts")
        lift, visitors = self._get(item, "expected_lift"), self._get(item, "expected_visitors")
        utm, traffic = self._get(item, "utm_campaign"), self._get(item, "traffic")
        return CampaignConfig(
            name=campaign_name(str(raw_name)), traffic=str(traffic) if traffic else self.traffic,
            utm_campaign=str(utm) if utm else None, start=start, end=end,
            hosts=host_list(hosts) if hosts else self.cfg.hosts,
            expected_lift=as_number(lift, self.paths["expected_lift"]) if lift is not None else None,
            expected_visitors=as_number(visitors, self.paths["expected_visitors"]) if visitors is not None else None,
            feed=self.cfg.name)

    async def close(self) -> None:
        await self._http.aclose()
