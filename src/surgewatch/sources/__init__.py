"""Builds the configured sources; one module per kind of endpoint lives beside this file."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Config, TrafficConfig
from .base import Reading, Source, SourceError

__all__ = ["BuildOptions", "Reading", "Source", "SourceError", "build_sources"]


@dataclass
class BuildOptions:
    """Knobs frontends pass down: demo speed, injected clocks, whether to collect process lists."""

    demo_speed: float = 1.0
    wall_clock: Callable[[], float] = time.time
    top_processes: int = 0
    demo_seed: int = 7  # used unless a demo [[host]] or [[traffic]] sets `seed`


def build_sources(config: Config, options: BuildOptions | None = None) -> list[Source]:
    """One Source per [[host]], [[probe]] and [[traffic]] entry, in config order."""
    opts = options or BuildOptions()
    out: list[Source] = []
    demo = None

    def demo_parts() -> tuple[object, object]:
        nonlocal demo
        if demo is None:
            from .demo import DemoClock, DemoScenario

            # One scenario drives every demo source (host load must follow the same traffic): the first
            # `seed` a demo entry sets wins.
            seeds = [e.seed for e in config.hosts if e.source == "demo" and e.seed is not None]
            seeds += [e.seed for e in config.traffic if e.source == "demo" and e.seed is not None]
            seed = seeds[0] if seeds else opts.demo_seed
            demo = (DemoScenario(seed), DemoClock(opts.demo_speed, opts.wall_clock))
        return demo

    for h in config.hosts:
        interval, timeout = config.interval_of(h.interval), config.timeout_of(h.timeout)
        if h.source == "local":
            from .local import LocalHostSource

            out.append(LocalHostSource(h.name, interval, timeout, top_processes=opts.top_processes))
        elif h.source == "demo":
            from .demo import DemoHostSource

            scenario, clock = demo_parts()
            out.append(DemoHostSource(h.name, interval, timeout, scenario, clock))  # type: ignore[arg-type]
        elif h.source == "prometheus":
            from .prometheus import PrometheusHostSource

            out.append(PrometheusHostSource(h.name, h.url or "", interval, timeout, h.headers, tls=h.tls))
        elif h.source == "promql":
            from .promql import PromQLHostSource

            out.append(PromQLHostSource(h.name, h.url or "", interval, timeout, h.queries, h.host_label,
                                        h.headers, max_series=h.max_series, tls=h.tls,
                                        group_label=h.group_label))
        else:  # pragma: no cover - config rejects kinds this build does not implement
            raise SourceError(f"host {h.name!r}: source {h.source!r} is not available")
    for p in config.probes:
        from .probe import ProbeSource

        interval, timeout = config.interval_of(p.interval), config.timeout_of(p.timeout)
        out.append(ProbeSource(p.name, p.url, interval, timeout, p.expect_status, p.headers, tls=p.tls))
    if config.campaign_feeds:
        from ..feeds import build_feed  # lazy: the calendar libraries only when a feed is configured

        out.extend(build_feed(f, config) for f in config.campaign_feeds)
    for t in config.traffic:
        interval, timeout = config.interval_of(t.interval), config.timeout_of(t.timeout)
        campaigns = [c.name for c in config.campaigns if c.traffic == t.name]
        if t.source == "demo":
            from .demo import DemoTrafficSource

            scenario, clock = demo_parts()
            out.append(DemoTrafficSource(t.name, campaigns, interval, timeout, scenario, clock))  # type: ignore[arg-type]
        else:
            pairs = [(c.name, c.utm_campaign or c.name) for c in config.campaigns if c.traffic == t.name]
            out.append(_traffic_source(t, pairs, interval, timeout))
    return out


def _traffic_source(t: TrafficConfig, pairs: list[tuple[str, str]], interval: float,
                    timeout: float) -> Source:
    """The source for one non-demo [[traffic]] entry; `pairs` are (campaign name, utm_campaign) it feeds."""
    if t.source == "access-log":
        from .accesslog import AccessLogSource

        return AccessLogSource(t.name, t.path or "", t.format, pairs, interval, timeout, window=t.window)
    if t.source == "json":
        from .jsonapi import JsonTrafficSource

        return JsonTrafficSource(t.name, t.url or "", pairs, interval, timeout, value=t.value or "",
                                 items=t.items, key=t.key, headers=t.headers, tls=t.tls)
    if t.source == "plausible":
        from .plausible import PlausibleSource

        return PlausibleSource(t.name, t.site_id or "", pairs, interval, timeout, url=t.url, token=t.token,
                               goals=t.goals,
                               window=t.window, headers=t.headers, tls=t.tls)
    if t.source == "umami":
        from .umami import UmamiSource

        return UmamiSource(t.name, t.site_id or "", pairs, interval, timeout, url=t.url, token=t.token,
                           username=t.username, password=t.password, window=t.window, headers=t.headers,
                           tls=t.tls)
    if t.source == "matomo":
        from .matomo import MatomoSource

        return MatomoSource(t.name, t.url or "", t.site_id or "", pairs, interval, timeout, token=t.token,
                            conversions=bool(t.goals),
                            window=t.window, headers=t.headers, tls=t.tls)
    if t.source == "ga4":
        from .ga4 import GA4Source

        return GA4Source(t.name, t.site_id or "", pairs, interval, timeout, token=t.token, url=t.url,
                         window=t.window, headers=t.headers, tls=t.tls,
                         credentials_file=os.path.expanduser(t.credentials_file) if t.credentials_file else None)
    if t.source == "promql":
        from .traffic_promql import PromQLTrafficSource

        return PromQLTrafficSource(t.name, t.url or "", t.query or "", pairs, interval, timeout,
                                   campaign_label=t.campaign_label, headers=t.headers, tls=t.tls)
    raise SourceError(f"traffic {t.name!r}: source {t.source!r} is not available")  # pragma: no cover
