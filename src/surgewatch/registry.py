"""The one registry of plug-in kinds: for each table type whose `source`/`kind` key picks its keys, every
kind, in order, and the module that declares it (in its `KINDS` list of surgewatch.plugins.Kind).

A kind is added by a module with its options, its build function and `KINDS = [Kind(...)]`, and its line
here. A module is imported when one of its kinds is first needed: importing this module costs four Sections.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .plugins import Section, and_list, one_of

if TYPE_CHECKING:
    from .alerting.sinks import Sink
    from .feeds.base import FeedSource
    from .sources.base import Source, SourceContext
    from .sources.feed_kinds import FeedContext


def _needs(kind: str, key: str) -> str:
    return f"source {kind!r} needs {key}"


def _only_sources(key: str, kinds: Sequence[str]) -> str:
    return f"{key} only applies to source{'s' if len(kinds) > 1 else ''} {one_of(kinds)}"


def _only_sinks(key: str, kinds: Sequence[str]) -> str:
    return f"{key} applies only to {and_list(kinds)} sinks"


_HOST = "surgewatch.sources.host_kinds"
_LOCAL_TRAFFIC = "surgewatch.sources.traffic_kinds"
_WEB_TRAFFIC = "surgewatch.sources.web_kinds"
_FEED = "surgewatch.sources.feed_kinds"
_SINK = "surgewatch.alerting.sink_kinds"

HOSTS: Section[SourceContext, Source] = Section("host", "source", {
    "local": _HOST, "demo": _HOST, "prometheus": _HOST, "promql": _HOST,
}, elsewhere=_only_sources)

TRAFFIC: Section[SourceContext, Source] = Section("traffic", "source", {
    "demo": _LOCAL_TRAFFIC, "access-log": _LOCAL_TRAFFIC, "json": _WEB_TRAFFIC, "plausible": _WEB_TRAFFIC,
    "umami": _WEB_TRAFFIC, "matomo": _WEB_TRAFFIC, "ga4": _WEB_TRAFFIC, "promql": _WEB_TRAFFIC,
}, elsewhere=_only_sources, missing=_needs)

FEEDS: Section[FeedContext, FeedSource] = Section("campaign_feed", "source", {
    "ical": _FEED, "mailchimp": _FEED, "json": _FEED,
}, elsewhere=_only_sources)

# webhook, slack, alertmanager in this order: "proxy applies only to webhook, slack and alertmanager sinks".
SINKS: Section[None, Sink] = Section("sink", "kind", {
    "stdout": _SINK, "file": _SINK, "webhook": _SINK, "slack": _SINK, "alertmanager": _SINK, "command": _SINK,
    "bell": _SINK,
}, elsewhere=_only_sinks, named=False)
