"""Campaigns from an iCalendar feed: the marketing calendar most teams already keep in a shared calendar.

Parsed with `icalendar`; recurring sends (RRULE, RDATE, EXDATE, moved occurrences) are expanded with
`recurring-ical-events` over the feed's window (`lookback` back, `horizon` ahead).
Each occurrence is one campaign; its fields come from (first found):

- name: SUMMARY (made safe; a recurring event's occurrences get their date: `newsletter@2026-12-07`);
- start, end: DTSTART, DTEND (or DURATION; without either: start + the feed's `duration`); all-day events run
  from 00:00 UTC;
- hosts, traffic, utm_campaign, expected_lift, expected_visitors: a property `X-SURGEWATCH-HOSTS` (`-TRAFFIC`,
  `-UTM`, `-LIFT`, `-VISITORS`), else a `key: value` line in DESCRIPTION (`hosts: web-1, web-2`,
  `utm_campaign: spring`, `expected_lift: 4`, `visitors: 20000`), else the feed's defaults.

`[campaign_feed.fields]` maps a campaign field to another property (e.g. `hosts = "LOCATION"`). Events with
STATUS:CANCELLED are dropped (a cancelled send ends its campaign); `categories` keeps only events in one of them.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import CampaignConfig
from ..sources.base import SourceError
from ..sources.http import HttpPoller
from .base import CANCELLED, FeedResult, campaign_name, host_list

if TYPE_CHECKING:  # the kinds module imports this one when it builds a feed
    from ..sources.feed_kinds import IcalFeedConfig

MAX_BYTES = 8 * 1024 * 1024
MAX_OCCURRENCES = 2000  # a daily event over a long window is capped here (one notice)
PROPERTY = {"hosts": "X-SURGEWATCH-HOSTS", "traffic": "X-SURGEWATCH-TRAFFIC", "utm_campaign": "X-SURGEWATCH-UTM",
            "expected_lift": "X-SURGEWATCH-LIFT", "expected_visitors": "X-SURGEWATCH-VISITORS"}
DESCRIPTION_KEYS = {"hosts": "hosts", "traffic": "traffic", "utm_campaign": "utm_campaign", "utm": "utm_campaign",
                    "expected_lift": "expected_lift", "lift": "expected_lift", "visitors": "expected_visitors",
                    "expected_visitors": "expected_visitors"}
_LINE = re.compile(r"^\s*([A-Za-z_]+)\s*[:=]\s*(.+?)\s*$", re.M)


def _stamp(value: Any) -> float | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    return None


def _number(text: str, what: str) -> float:
    try:
        v = float(text.replace(",", "").replace("_", "").strip().rstrip("x×"))
    except ValueError:
        raise ValueError(f"{what} is {text[:30]!r}, expected a number") from None
    if not v >= 0 or v == float("inf"):
        raise ValueError(f"{what} is {text[:30]!r}, expected a number ≥ 0")
    return v


def parse_calendar(text: str | bytes, cfg: IcalFeedConfig, traffic: str, now: float) -> FeedResult:
    """The campaigns of a calendar document in the feed's window; SourceError when it is not iCalendar."""
    import icalendar
    import recurring_ical_events

    try:
        cal = icalendar.Calendar.from_ical(text)
    except Exception as exc:  # the library raises ValueError and others for broken documents
        raise SourceError(f"not an iCalendar document: {' '.join(str(exc).split())[:120]}") from None
    lo = datetime.fromtimestamp(now - cfg.lookback - cfg.duration, UTC)
    hi = datetime.fromtimestamp(now + cfg.horizon, UTC)
    result = FeedResult()
    for component in cal.walk("VEVENT"):  # an event without a start is named and left out of the expansion
        if component.get("DTSTART") is None:
            title = str(component.get("SUMMARY") or component.get("UID") or "an event")
            result.notices.append(f"event {campaign_name(title)!r} has no start (DTSTART): skipped")
    cal.subcomponents = [c for c in cal.subcomponents if not (c.name == "VEVENT" and c.get("DTSTART") is None)]
    try:
        occurrences = recurring_ical_events.of(cal, skip_bad_series=True).between(lo, hi)
    except Exception as exc:  # a broken RRULE or date: the library's message, one line
        raise SourceError(f"cannot expand the calendar's events: {' '.join(str(exc).split())[:120]}") from None
    if len(occurrences) > MAX_OCCURRENCES:
        result.notices.append(f"{len(occurrences)} events in the window; the first {MAX_OCCURRENCES} are kept")
        occurrences = occurrences[:MAX_OCCURRENCES]
    recurring = {str(e.get("UID")) for e in cal.walk("VEVENT") if e.get("RRULE") or e.get("RDATE")}
    for event in occurrences:
        try:
            campaign = _campaign(event, cfg, traffic, recurring)
        except ValueError as exc:
            title = campaign_name(str(event.get("SUMMARY") or "an event"))
            result.notices.append(f"event {title!r}: {exc}: skipped")
            continue
        if campaign is not None:
            result.add(campaign)
    return result


def _campaign(event: Any, cfg: IcalFeedConfig, traffic: str, recurring: set[str]) -> CampaignConfig | None:
    if str(event.get("STATUS") or "").lower() in CANCELLED:
        return None
    if cfg.categories:
        cats: set[str] = set()
        raw = event.get("CATEGORIES")
        for item in raw if isinstance(raw, list) else [raw] if raw is not None else []:
            cats.update(str(c).strip().lower() for c in getattr(item, "cats", [item]))
        if not cats & {c.lower() for c in cfg.categories}:
            return None
    start = _stamp(event.decoded("DTSTART")) if event.get("DTSTART") is not None else None
    if start is None:
        raise ValueError("no start (DTSTART)")
    end = _stamp(event.decoded("DTEND")) if event.get("DTEND") is not None else None
    if end is None and event.get("DURATION") is not None:
        dur = event.decoded("DURATION")
        end = start + dur.total_seconds() if isinstance(dur, timedelta) else None
    if end is None or end <= start:
        end = start + cfg.duration
    fields = _fields(event, cfg.fields)
    title = fields.get("name") or str(event.get("SUMMARY") or "untitled")
    name = campaign_name(title)
    if str(event.get("UID")) in recurring:
        name = f"{name}@{datetime.fromtimestamp(start, UTC):%Y-%m-%d}"
    hosts = host_list(fields["hosts"]) if fields.get("hosts") else cfg.hosts
    lift = _number(fields["expected_lift"], "expected_lift") if fields.get("expected_lift") else None
    visitors = _number(fields["expected_visitors"], "visitors") if fields.get("expected_visitors") else None
    return CampaignConfig(name=name, traffic=fields.get("traffic") or traffic,
                          utm_campaign=fields.get("utm_campaign") or None, start=start, end=end, hosts=hosts,
                          expected_lift=lift, expected_visitors=visitors, feed=cfg.name)


def _plain(text: str) -> str:
    """A description as plain lines: Google Calendar writes HTML (`<br>`, `<p>`, entities) into DESCRIPTION."""
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>", "\n", text)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _fields(event: Any, mapping: Mapping[str, str]) -> dict[str, str]:
    """Campaign fields of one event: mapped properties, X-SURGEWATCH-* properties, then description lines."""
    out: dict[str, str] = {}
    desc = _plain(str(event.get("DESCRIPTION") or ""))
    for key, value in _LINE.findall(desc):
        field_name = DESCRIPTION_KEYS.get(key.lower())
        if field_name:
            out.setdefault(field_name, value)
    for field_name, prop in PROPERTY.items():
        value = event.get(prop)
        if value is not None and str(value).strip():
            out[field_name] = str(value).strip()
    for field_name, prop in mapping.items():
        value = event.get(prop.upper())
        if value is not None:
            raw = value if isinstance(value, list) else [value]
            parts = [", ".join(map(str, getattr(v, "cats", [v]))) for v in raw]
            if any(p.strip() for p in parts):
                out[field_name] = ", ".join(p for p in parts if p.strip())
    return out


class CalendarFetcher:
    """Reads the calendar from its URL (HttpPoller: retries, size cap, one-line errors) or its file."""

    def __init__(self, cfg: IcalFeedConfig, traffic: str, timeout: float) -> None:
        self.cfg, self.traffic = cfg, traffic
        self._http = (HttpPoller(label=f"feed:{cfg.name}", headers=cfg.headers, timeout=timeout,
                                 max_bytes=MAX_BYTES, tls=cfg.tls) if cfg.url else None)

    async def __call__(self, now: float) -> FeedResult:
        if self._http is not None:
            resp = await self._http.request("GET", self.cfg.url or "", accept="text/calendar")
            body: str | bytes = resp.body
        else:
            path = Path(self.cfg.path or "")
            try:
                if path.stat().st_size > MAX_BYTES:
                    raise SourceError(f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MiB")
                body = path.read_bytes()
            except OSError as exc:
                raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
        # parsing and expanding a large calendar takes ~0.1 s of CPU: off the event loop, so other sources stay
        # on time
        return await asyncio.to_thread(parse_calendar, body, self.cfg, self.traffic, now)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
