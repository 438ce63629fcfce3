"""Campaigns from Mailchimp: scheduled and sending email campaigns, with an expected size.

Mailchimp Marketing API 3.0 (`GET /3.0/campaigns?status=schedule` and `?status=sending`), HTTP basic auth with
any user name and the API key as password; the key's `-us6` suffix names the data centre
(`https://us6.api.mailchimp.com`) unless `url` is set. One campaign per send:

- name: `settings.title`, else `settings.subject_line`, else the campaign id;
- start: `send_time`; end: start + the feed's `duration` (an email's clicks come within hours);
- utm_campaign: `tracking.google_analytics` (the UTM campaign Mailchimp appends to links), else the name;
- expected_visitors: `recipients.recipient_count` × the click rate: the feed's `click_rate`, else learned from
  this list's earlier sends (the median `report_summary.click_rate` of its last 10 sent campaigns).

A campaign with no recipients is kept without an expected size and named once; a 401 is one line (the key).
"""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..config import CampaignConfig
from ..sources.base import SourceError
from ..sources.http import HttpPoller
from .base import FeedResult, campaign_name

if TYPE_CHECKING:  # the kinds module imports this one when it builds a feed
    from ..sources.feed_kinds import MailchimpFeedConfig

FIELDS = ("campaigns.id,campaigns.status,campaigns.send_time,campaigns.settings.title,"
          "campaigns.settings.subject_line,campaigns.recipients.recipient_count,campaigns.recipients.list_id,"
          "campaigns.tracking.google_analytics,campaigns.report_summary.click_rate")
LEARN_FROM = 10  # earlier sends of a list whose click rates give the learned rate
LEARN_EVERY = 3600.0  # seconds between refreshes of the learned click rates


def api_url(cfg: MailchimpFeedConfig) -> str:
    """The API's base URL: the configured one, else the data centre named by the key's suffix."""
    if cfg.url:
        return cfg.url.rstrip("/")
    dc = (cfg.token or "").rpartition("-")[2]
    if not dc or not dc.isalnum():
        raise SourceError("the API key has no data-centre suffix (like -us6): set url")
    return f"https://{dc}.api.mailchimp.com"


def _when(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _table(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


class MailchimpFetcher:
    def __init__(self, cfg: MailchimpFeedConfig, traffic: str, timeout: float) -> None:
        import base64

        self.cfg, self.traffic = cfg, traffic
        auth = base64.b64encode(f"surgewatch:{cfg.token or ''}".encode()).decode()
        self._http = HttpPoller(label=f"feed:{cfg.name}", base_url=api_url(cfg) if cfg.url or cfg.token else None,
                                headers={**cfg.headers, "Authorization": f"Basic {auth}"}, timeout=timeout,
                                tls=cfg.tls)
        self.learned: dict[str, float] = {}  # list id → median click rate of its last sends (0–1)
        self._learned_at = float("-inf")

    async def __call__(self, now: float) -> FeedResult:
        result = FeedResult()
        sends: list[dict[str, Any]] = []
        for status in ("sending", "schedule"):
            doc = await self._http.get_json("/3.0/campaigns", {"status": status, "count": 1000, "fields": FIELDS})
            items = doc.get("campaigns") if isinstance(doc, dict) else None
            if not isinstance(items, list):
                raise SourceError("campaigns response has no 'campaigns' list")
            sends.extend(i for i in items if isinstance(i, dict))
        if self.cfg.click_rate is None and now - self._learned_at >= LEARN_EVERY:
            await self._learn({str((s.get("recipients") or {}).get("list_id") or "") for s in sends} - {""})
            self._learned_at = now
        for send in sends:
            campaign = self._campaign(send, result)
            if campaign is not None:
                result.add(campaign)
        return result

    async def _learn(self, lists: set[str]) -> None:
        """The median click rate of each list's last sends (Mailchimp reports it per sent campaign)."""
        for list_id in sorted(lists):
            doc = await self._http.get_json("/3.0/campaigns", {
                "status": "sent", "list_id": list_id, "count": LEARN_FROM, "sort_field": "send_time",
                "sort_dir": "DESC", "fields": FIELDS})
            items = doc.get("campaigns") if isinstance(doc, dict) else None
            rates = []
            for item in items if isinstance(items, list) else []:
                rate = ((item.get("report_summary") or {}) if isinstance(item, dict) else {}).get("click_rate")
                if isinstance(rate, int | float) and not isinstance(rate, bool) and 0 <= rate <= 1:
                    rates.append(float(rate))
            if rates:
                self.learned[list_id] = statistics.median(rates)

    def _campaign(self, send: dict[str, Any], result: FeedResult) -> CampaignConfig | None:
        settings, recipients, tracking = (_table(send, k) for k in ("settings", "recipients", "tracking"))
        title = str(settings.get("title") or settings.get("subject_line") or send.get("id") or "untitled")
        name = campaign_name(title)
        start = _when(send.get("send_time"))
        if start is None:
            result.notices.append(f"campaign {name!r} has no send_time: skipped")
            return None
        count = recipients.get("recipient_count")
        visitors = None
        if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
            result.notices.append(f"campaign {name!r} has no recipients: kept without an expected size")
        else:
            rate = self.cfg.click_rate
            if rate is None:
                rate = self.learned.get(str(recipients.get("list_id") or ""))
            if rate is None:
                result.notices.append(f"campaign {name!r}: no click rate (set click_rate, or one is learned after a "
                                      f"send to list {recipients.get('list_id')!r})")
            else:
                visitors = count * rate
        utm = tracking.get("google_analytics")
        return CampaignConfig(name=name, traffic=self.traffic, utm_campaign=str(utm) if utm else None, start=start,
                              end=start + self.cfg.duration, hosts=self.cfg.hosts, expected_visitors=visitors,
                              feed=self.cfg.name)

    async def close(self) -> None:
        await self._http.aclose()
