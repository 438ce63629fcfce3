"""The [[host]] source kinds: local, demo, prometheus, promql (options, build; see surgewatch.plugins).

Build functions import their source module when called: reading a config never imports psutil or httpx.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import plugins as opt
from ..plugins import Endpoint, Kind
from .base import DemoSeed, HostConfig, SourceContext

if TYPE_CHECKING:
    from .base import Source


def _local(cfg: HostConfig, ctx: SourceContext) -> Source:
    """This machine, through psutil: no keys of its own (its options are HostConfig)."""
    from .local import LocalHostSource

    return LocalHostSource(cfg.name, ctx.interval, ctx.timeout, top_processes=ctx.options.top_processes,
                           wanted=ctx.options.wanted)


@dataclass(frozen=True, kw_only=True)
class DemoHostConfig(DemoSeed, HostConfig):
    """source = "demo": a simulated web host whose load follows the demo campaign."""

    source: str = "demo"


def _demo(cfg: DemoHostConfig, ctx: SourceContext) -> Source:
    from .demo import DemoHostSource

    scenario, clock = ctx.demo()
    return DemoHostSource(cfg.name, ctx.interval, ctx.timeout, scenario, clock)


@dataclass(frozen=True, kw_only=True)
class PrometheusHostConfig(Endpoint, HostConfig):
    """A Prometheus text endpoint (node_exporter, `surgewatch agent`)."""

    source: str = "prometheus"


def _prometheus(cfg: PrometheusHostConfig, ctx: SourceContext) -> Source:
    from .prometheus import PrometheusHostSource

    return PrometheusHostSource(cfg.name, cfg.url, ctx.interval, ctx.timeout, cfg.headers, tls=cfg.tls)


@dataclass(frozen=True, kw_only=True)
class PromQLHostConfig(PrometheusHostConfig):
    """Many hosts through one Prometheus server's query API: one host per value of `host_label`."""

    source: str = "promql"
    host_label: str = opt.option(lambda r, k: r.string(k, None) or "instance", default="instance")
    queries: Mapping[str, str] = opt.str_map()
    max_series: int = opt.count(10_000)  # at most this many series taken from one query's answer
    group_label: str | None = opt.string()  # the label whose value names each host's group


def _promql(cfg: PromQLHostConfig, ctx: SourceContext) -> Source:
    from .promql import PromQLHostSource

    return PromQLHostSource(cfg.name, cfg.url, ctx.interval, ctx.timeout, cfg.queries, cfg.host_label,
                            cfg.headers, max_series=cfg.max_series, tls=cfg.tls, group_label=cfg.group_label)


KINDS = [Kind("local", HostConfig, _local), Kind("demo", DemoHostConfig, _demo),
         Kind("prometheus", PrometheusHostConfig, _prometheus), Kind("promql", PromQLHostConfig, _promql)]
