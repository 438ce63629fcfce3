"""Campaign feeds: `[[campaign_feed]]` entries whose events become campaigns (an iCalendar, Mailchimp, any JSON).

`build_feed(cfg, config)` gives a source the collector polls like any other (`feed:NAME`); the engine merges each
feed's last good list with the config's campaigns (`base.merge_campaigns`). Each kind is one module with a fetcher:
`ical.py`, `mailchimp.py`, `jsonfeed.py`.
"""

from __future__ import annotations

from ..config import CampaignFeedConfig, Config
from ..registry import FEEDS
from ..sources.feed_kinds import FeedContext
from ..statedir import resolve_state_dir
from .base import FeedSource, merge_campaigns

__all__ = ["FeedSource", "build_feed", "merge_campaigns"]


def build_feed(cfg: CampaignFeedConfig, config: Config) -> FeedSource:
    """The source polling one feed, built by its kind (sources/feed_kinds.py: a kind's fetcher and its libraries
    are imported only when a feed of that kind exists)."""
    traffic = cfg.traffic or config.traffic[0].name
    timeout = cfg.timeout if cfg.timeout is not None else max(config.monitor.timeout, 10.0)
    cache = resolve_state_dir(config.monitor.state_dir, config.path) / "feeds" / f"{cfg.name}.json"
    return FEEDS.build(cfg, FeedContext(traffic, timeout, cache))
