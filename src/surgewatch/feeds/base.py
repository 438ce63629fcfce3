"""What every campaign feed shares: a source polled on its interval whose reading is a list of campaigns.

A feed is polled by the collector like any source (`feed:NAME` on the Sources screen, stale when it fails). A
successful poll's `Reading.details["campaigns"]` is the feed's whole current list (a tuple of CampaignConfig
marked with `feed`); a failing poll raises SourceError, and the collector keeps the last good list, so a feed
that is down keeps its campaigns. Problems with single events (no start, a bad number) are one line each in
`details["notices"]` and leave the other events alone.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ..config import CampaignConfig, CampaignFeedConfig
from ..model import rfc3339
from ..sources.base import Reading, SourceError
from ..statedir import write_atomic
from ..textsafe import strip_controls

log = logging.getLogger("surgewatch.feeds")

_BAD_NAME = re.compile(r"[:/*?\[\]\x00-\x1f\x7f]+")
CANCELLED = {"cancelled", "canceled"}
CACHE_VERSION = 1


def campaign_name(text: str) -> str:
    """An event title made safe as a campaign name (no `: / * ? [ ]`, no controls, at most 60 characters)."""
    name = _BAD_NAME.sub("-", strip_controls(text)).strip(" -")
    return " ".join(name.split())[:60] or "untitled"


def host_list(value: Any) -> tuple[str, ...]:
    """Hosts from a list or a comma/space separated string."""
    items = [str(v) for v in value] if isinstance(value, list | tuple) else re.split(r"[,\s]+", str(value))
    return tuple(h for h in (campaign_name(i) for i in items if i.strip()) if h != "untitled")


@dataclass
class FeedResult:
    """One poll's campaigns and the one-line problems with single events."""

    campaigns: list[CampaignConfig] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def add(self, campaign: CampaignConfig) -> None:
        """Add a campaign, renaming it `NAME-2`, `NAME-3`… when the feed already has one of that name."""
        names = {c.name for c in self.campaigns}
        name, n = campaign.name, 2
        while name in names:
            name, n = f"{campaign.name}-{n}", n + 1
        if name != campaign.name:
            campaign = replace(campaign, name=name)
        self.campaigns.append(campaign)


class Fetcher(Protocol):
    """One feed kind's reader: the feed's campaigns as of `now` (SourceError when the feed cannot be read)."""

    async def __call__(self, now: float) -> FeedResult: ...

    async def close(self) -> None: ...


class FeedSource:
    """Polls one feed through its fetcher; the collector schedules it and marks it stale when it fails."""

    def __init__(self, cfg: CampaignFeedConfig, traffic: str, timeout: float, fetch: Fetcher,
                 clock: Callable[[], float] = time.time, cache: Path | None = None) -> None:
        self.name = f"feed:{cfg.name}"
        self.cfg = cfg
        self.traffic = traffic
        self.interval = cfg.interval
        self.timeout = timeout
        self.demo = False
        self._fetch = fetch
        self.cache = cache  # the last good list, kept in the state dir for a restart while the feed is down
        self._polled = False
        self._clock = clock
        self._warned: set[str] = set()

    async def poll(self) -> Reading:
        now = self._clock()
        first, self._polled = not self._polled, True
        try:
            result: FeedResult = await self._fetch(now)
        except SourceError as exc:
            saved = self._load_cache() if first else None
            if saved is None:
                raise
            campaigns, saved_at = saved  # a restart while the feed is down: the list it last gave
            return Reading({}, {"campaigns": campaigns, "notice": f"{exc}; using the list saved "
                                                                  f"{rfc3339(saved_at)}"})
        lo, hi = now - self.cfg.lookback, now + self.cfg.horizon
        kept = [c for c in result.campaigns
                if (c.start is None or c.start <= hi) and (c.end is None or c.end >= lo)]
        for notice in result.notices:
            if notice not in self._warned:  # each problem once per run, not every poll
                self._warned.add(notice)
                log.warning("%s: %s", self.name, notice)
        details: dict[str, Any] = {"campaigns": tuple(kept)}
        if result.notices:
            details["notice"] = f"{len(result.notices)} event(s) skipped or incomplete: {result.notices[0]}"
        self._save_cache(kept, now)
        return Reading({}, details)

    def _save_cache(self, campaigns: list[CampaignConfig], now: float) -> None:
        if self.cache is None:
            return
        doc = {"version": CACHE_VERSION, "saved": now, "campaigns": [asdict(c) for c in campaigns]}
        try:
            self.cache.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(self.cache, json.dumps(doc, allow_nan=False) + "\n")
        except (OSError, ValueError) as exc:
            if "cache" not in self._warned:
                self._warned.add("cache")
                log.warning("%s: cannot save the campaign list to %s: %s", self.name, self.cache, exc)

    def _load_cache(self) -> tuple[tuple[CampaignConfig, ...], float] | None:
        """The list saved by an earlier run; None (one warning when unreadable) otherwise."""
        if self.cache is None or not self.cache.exists():
            return None
        try:
            doc = json.loads(self.cache.read_text(encoding="utf-8"))
            items = [dict(c, hosts=tuple(c["hosts"])) for c in doc["campaigns"]]
            return tuple(CampaignConfig(**c) for c in items), float(doc["saved"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s: the saved campaign list %s is unreadable (%s): ignored", self.name, self.cache,
                        type(exc).__name__)
            return None

    async def close(self) -> None:
        await self._fetch.close()


def merge_campaigns(declared: Iterable[CampaignConfig], feeds: Iterable[Iterable[CampaignConfig]],
                    warned: set[str]) -> tuple[CampaignConfig, ...]:
    """The config's campaigns, then each feed's, skipping (with one warning each) a feed campaign whose name is
    taken: a [[campaign]] table wins over a feed, an earlier feed over a later one."""
    out = list(declared)
    names = {c.name for c in out}
    for campaigns in feeds:
        for c in campaigns:
            if c.name in names:
                key = f"{c.feed}/{c.name}"
                if key not in warned:
                    warned.add(key)
                    log.warning("feed:%s: campaign %r is already defined; the feed's event is ignored", c.feed,
                                c.name)
                continue
            names.add(c.name)
            out.append(c)
    return tuple(out)
