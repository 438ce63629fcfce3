"""Builds the configured sources; one module per kind of endpoint lives beside this file.

Which kinds exist, and how each is built, is the registry's (surgewatch/registry.py): a kind is its options
dataclass and build function (host_kinds.py, traffic_kinds.py, web_kinds.py, feed_kinds.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..registry import HOSTS, TRAFFIC
from .base import BuildOptions, DemoSeed, Reading, Source, SourceContext, SourceError

if TYPE_CHECKING:
    from ..config import Config
    from .demo import DemoClock, DemoScenario

__all__ = ["BuildOptions", "Reading", "Source", "SourceError", "build_sources"]


def build_sources(config: Config, options: BuildOptions | None = None) -> list[Source]:
    """One Source per [[host]], [[probe]] and [[traffic]] entry, in config order."""
    opts = options or BuildOptions()
    demo: tuple[DemoScenario, DemoClock] | None = None

    def demo_parts() -> tuple[DemoScenario, DemoClock]:
        nonlocal demo
        if demo is None:
            from .demo import DemoClock, DemoScenario

            # One scenario drives every demo source (host load must follow the same traffic): the first
            # `seed` a demo entry sets wins.
            seeds = [e.seed for e in (*config.hosts, *config.traffic) if isinstance(e, DemoSeed)]
            seed = next((s for s in seeds if s is not None), opts.demo_seed)
            demo = (DemoScenario(seed), DemoClock(opts.demo_speed, opts.wall_clock))
        return demo

    out: list[Source] = []
    for h in config.hosts:
        ctx = SourceContext(config.interval_of(h.interval), config.timeout_of(h.timeout), opts, demo_parts)
        out.append(HOSTS.build(h, ctx))
    for p in config.probes:
        from .probe import ProbeSource

        interval, timeout = config.interval_of(p.interval), config.timeout_of(p.timeout)
        out.append(ProbeSource(p.name, p.url, interval, timeout, p.expect_status, p.headers, tls=p.tls))
    if config.campaign_feeds:
        from ..feeds import build_feed  # lazy: the calendar libraries only when a feed is configured

        out.extend(build_feed(f, config) for f in config.campaign_feeds)
    for t in config.traffic:
        pairs = tuple((c.name, c.utm_campaign or c.name) for c in config.campaigns if c.traffic == t.name)
        ctx = SourceContext(config.interval_of(t.interval), config.timeout_of(t.timeout), opts, demo_parts, pairs)
        out.append(TRAFFIC.build(t, ctx))
    return out
