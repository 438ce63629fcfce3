"""Campaign traffic from a PromQL query (e.g. a request rate from nginx or ingress metrics).

`query` must return an instant vector (or a scalar). `traffic:NAME/visitors` is the sum of all returned
series. With `campaign_label` (e.g. "utm_campaign"), each series is attributed to the campaign whose
utm_campaign equals that label's value: `campaign:CAMPAIGN/visitors` is the sum of its series (0 when none).
The unit is whatever the query measures (requests per second for a `rate(...)` query).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..config import TlsConfig
from ..model import series
from .analytics import CampaignPairs, call_json, shape_error
from .base import Reading, SourceError
from .http import HttpPoller

QUERY_PATH = "/api/v1/query"


class PromQLTrafficSource:
    """Runs one instant query per poll against a Prometheus server."""

    def __init__(self, traffic: str, url: str, query: str, campaigns: CampaignPairs, interval: float,
                 timeout: float, *, campaign_label: str | None = None,
                 headers: Mapping[str, str] | None = None, http: HttpPoller | None = None,
                 tls: TlsConfig | None = None) -> None:
        self.name = f"traffic:{traffic}"
        self.traffic = traffic
        self.query = query
        self.campaigns = list(campaigns)
        self.campaign_label = campaign_label
        self.interval = interval
        self.timeout = timeout
        self.demo = False
        self.http = http or HttpPoller(label=self.name, base_url=url, headers=headers, timeout=timeout, tls=tls)
        self.notice: str | None = None
        self.set_campaigns(self.campaigns)

    def set_campaigns(self, campaigns: list[tuple[str, str]]) -> None:
        """Report on these (campaign name, utm_campaign) pairs from the next poll on."""
        self.campaigns = list(campaigns)
        self.notice = None
        if self.campaigns and not self.campaign_label:
            names = ", ".join(n for n, _ in self.campaigns)
            self.notice = f"{self.name}: set campaign_label to get campaign series (none for {names})"

    async def poll(self) -> Reading:
        """Evaluate the query now and sum its series, overall and per campaign label value."""
        doc = await call_json(self.http, "POST", QUERY_PATH, data={"query": self.query})
        data = doc.get("data") if isinstance(doc, Mapping) else None
        if not isinstance(data, Mapping) or doc.get("status") != "success":
            raise shape_error(self.name, "answer is not a Prometheus success envelope with data", doc)
        rtype, result = data.get("resultType"), data.get("result")
        by_value: dict[str, float] = {}
        total = 0.0
        if rtype == "scalar":
            total = _value(self.name, result, "scalar")
        elif rtype == "vector" and isinstance(result, list):
            for i, item in enumerate(result):
                if not isinstance(item, Mapping):
                    raise shape_error(self.name, f"result[{i}] is not an object", item)
                v = _value(self.name, item.get("value"), f"result[{i}].value")
                if not math.isfinite(v):
                    continue
                total += v
                if self.campaign_label:
                    labels = item.get("metric")
                    key = labels.get(self.campaign_label) if isinstance(labels, Mapping) else None
                    if isinstance(key, str):
                        by_value[key] = by_value.get(key, 0.0) + v
        else:
            raise SourceError(f"{self.name}: query returned a {rtype or 'missing'} result; it must return an "
                              f"instant vector or a scalar")
        out = {series("traffic", self.traffic, "visitors"): total}
        if self.campaign_label:
            for name, utm in self.campaigns:
                out[series("campaign", name, "visitors")] = by_value.get(utm, 0.0)
        return Reading(out, {"notice": self.notice} if self.notice else {})

    async def close(self) -> None:
        """Release the HTTP client."""
        await self.http.aclose()


def _value(label: str, pair: Any, where: str) -> float:
    """The float of a Prometheus `[timestamp, "value"]` pair (NaN and Inf pass through, to be skipped)."""
    try:
        return float(pair[1])
    except (TypeError, ValueError, IndexError, KeyError):
        raise shape_error(label, f'{where} is not [timestamp, "value"]', pair) from None
