"""The source kinds this build knows, in plain lists: `source = …` of [[host]], [[traffic]], [[campaign_feed]].

A kind is added by appending its `Kind` (see surgewatch.plugins) to a section's list here. The
config validates each table against its kind's options; build_sources() builds each through its kind.
Cheap to import: no source module is imported until a kind is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..plugins import Section, one_of
from . import feed_kinds, host_kinds, traffic_kinds
from .base import Source, SourceContext
from .feed_kinds import FeedContext

if TYPE_CHECKING:
    from ..feeds.base import FeedSource


def _needs(kind: str, key: str) -> str:
    return f"source {kind!r} needs {key}"


def _only(key: str, kinds: Sequence[str]) -> str:
    return f"{key} only applies to source{'s' if len(kinds) > 1 else ''} {one_of(kinds)}"


HOSTS: Section[SourceContext, Source] = Section(
    "host", "source",
    [host_kinds.LOCAL, host_kinds.DEMO, host_kinds.PROMETHEUS, host_kinds.PROMQL],
    elsewhere=_only)

TRAFFIC: Section[SourceContext, Source] = Section(
    "traffic", "source",
    [traffic_kinds.DEMO, traffic_kinds.ACCESS_LOG, traffic_kinds.JSON, traffic_kinds.PLAUSIBLE,
     traffic_kinds.UMAMI, traffic_kinds.MATOMO, traffic_kinds.GA4, traffic_kinds.PROMQL],
    missing=_needs, elsewhere=_only)

FEEDS: Section[FeedContext, FeedSource] = Section(
    "campaign_feed", "source", [feed_kinds.ICAL, feed_kinds.MAILCHIMP, feed_kinds.JSON], elsewhere=_only)
