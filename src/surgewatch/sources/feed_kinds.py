"""The [[campaign_feed]] kinds: ical, mailchimp, json (options and build; see surgewatch.plugins).

A feed is a source the collector polls (`feed:NAME`); its fetcher lives in surgewatch.feeds and is imported
by the build function, so reading a config never imports the calendar libraries.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import plugins as opt
from ..model import FEED_FIELDS
from ..plugins import Endpoint, HttpOptions, Kind, OptionError

if TYPE_CHECKING:
    from ..feeds.base import FeedSource, Fetcher

F = TypeVar("F", bound="CampaignFeedConfig")



@dataclass(frozen=True)
class FeedContext:
    """What a feed kind's build function gets besides its options."""

    traffic: str  # the [[traffic]] its campaigns' visitors come from
    timeout: float
    cache: Path | None = None  # where the last good list is kept (state dir) for a restart while the feed is down


@dataclass(frozen=True, kw_only=True)
class CampaignFeedConfig(HttpOptions):
    """A place marketing plans campaigns (a calendar, Mailchimp, any JSON list); its events become campaigns.
    The keys every [[campaign_feed]] takes; each kind's options extend it."""

    name: str
    source: str  # ical | mailchimp | json
    interval: float = opt.duration(300.0, minimum=1.0)
    timeout: float | None = opt.duration(minimum=0.01)
    traffic: str | None = opt.string()  # the [[traffic]] the campaigns' visitors come from (default: the only one)
    hosts: tuple[str, ...] = opt.str_list()  # hosts of an event that names none
    duration: float = opt.duration(6 * 3600.0, minimum=60.0)  # length of a campaign whose event has no end
    horizon: float = opt.duration(14 * 86400.0)  # events starting up to this far ahead become (scheduled) campaigns
    lookback: float = opt.duration(86400.0)  # events that ended this long ago are still listed (post-mortems, plans)

    def validate(self) -> None:
        """Raise plugins.OptionError when the keys are wrong together (a kind overrides it)."""


def _fields() -> Any:
    """`[campaign_feed.fields]`: campaign field → event property (ical) or item path (json)."""
    return opt.option(_read_fields, default_factory=dict)


def _read_fields(r: opt.Reader, key: str) -> dict[str, str]:
    fields = r.str_map(key)
    for name in fields:
        if name not in FEED_FIELDS:
            raise r.fail(key, f"fields names {name!r}, which is not a campaign field "
                              f"(one of: {', '.join(FEED_FIELDS)})")
    return fields


def _polled(cfg: F, ctx: FeedContext, fetcher: Callable[[F, str, float], Fetcher]) -> FeedSource:
    """The source the collector polls for one feed, reading it through its kind's fetcher."""
    from ..feeds.base import FeedSource

    return FeedSource(cfg, ctx.traffic, ctx.timeout, fetcher(cfg, ctx.traffic, ctx.timeout), cache=ctx.cache)


@dataclass(frozen=True, kw_only=True)
class IcalFeedConfig(CampaignFeedConfig):
    """source = "ical": an iCalendar at `url` or in the file at `path`."""

    source: str = "ical"
    url: str | None = opt.string()
    path: str | None = opt.option(lambda r, k: _expand(r.string(k, None)), default=None)  # a local .ics file
    categories: tuple[str, ...] = opt.str_list()  # only events with one of these CATEGORIES (empty: every event)
    fields: Mapping[str, str] = _fields()

    def validate(self) -> None:
        if (self.url is None) == (self.path is None):
            raise OptionError("url", "needs one of url (an iCalendar URL) or path (an .ics file)")


def _expand(path: str | None) -> str | None:
    return os.path.expanduser(path) if path else None


def _ical(cfg: IcalFeedConfig, ctx: FeedContext) -> FeedSource:
    from ..feeds.ical import CalendarFetcher

    return _polled(cfg, ctx, CalendarFetcher)


@dataclass(frozen=True, kw_only=True)
class MailchimpFeedConfig(CampaignFeedConfig):
    """source = "mailchimp": scheduled and sending campaigns, sized by a click rate."""

    source: str = "mailchimp"
    # the API key (its -dc suffix names the server)
    token: str = opt.secret(required=True)
    # the API's base URL; default https://DC.api.mailchimp.com from the key's -DC suffix
    url: str | None = opt.string()
    # visitors per recipient (else learned from earlier sends)
    click_rate: float | None = opt.option(lambda r, k: r.number(k, None, minimum=0.0), default=None)

    def validate(self) -> None:
        if self.url is None and not re.fullmatch(r".+-[a-z]+[0-9]+", self.token):
            raise OptionError("url", "needs url, or an API key ending in its data centre (like -us6)")
        if self.click_rate is not None and self.click_rate > 1.0:
            raise OptionError("click_rate", f"click_rate is visitors per recipient, 0 to 1, got {self.click_rate:g}")


def _mailchimp(cfg: MailchimpFeedConfig, ctx: FeedContext) -> FeedSource:
    from ..feeds.mailchimp import MailchimpFetcher

    return _polled(cfg, ctx, MailchimpFetcher)


@dataclass(frozen=True, kw_only=True)
class JsonFeedConfig(Endpoint, CampaignFeedConfig):
    """source = "json": any endpoint listing campaigns (`items`, `[campaign_feed.fields]`)."""

    source: str = "json"
    items: str | None = opt.string()  # dotted path to the list of campaigns
    fields: Mapping[str, str] = _fields()


def _json(cfg: JsonFeedConfig, ctx: FeedContext) -> FeedSource:
    from ..feeds.jsonfeed import JsonFeedFetcher

    return _polled(cfg, ctx, JsonFeedFetcher)


KINDS = [Kind("ical", IcalFeedConfig, _ical), Kind("mailchimp", MailchimpFeedConfig, _mailchimp),
         Kind("json", JsonFeedConfig, _json)]
