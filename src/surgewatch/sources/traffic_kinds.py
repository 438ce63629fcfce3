"""The [[traffic]] source kinds read on this machine: demo, access-log (HTTP kinds: web_kinds.py).

Each is an options dataclass (the keys it takes, see surgewatch.plugins), a build function that imports its
source module when called, and a Kind. Campaigns reach a build function as (name, utm_campaign) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import plugins as opt
from ..plugins import Kind
from .base import DemoSeed, SourceContext, TrafficConfig

if TYPE_CHECKING:
    from .base import Source


def window() -> Any:
    """`window`: visitors are counted over this sliding window (sources default to 5m)."""
    return opt.duration(minimum=1.0)


@dataclass(frozen=True, kw_only=True)
class DemoTrafficConfig(DemoSeed, TrafficConfig):
    """source = "demo": simulated site traffic with a campaign launch."""

    source: str = "demo"


def _demo(cfg: DemoTrafficConfig, ctx: SourceContext) -> Source:
    from .demo import DemoTrafficSource

    scenario, clock = ctx.demo()
    return DemoTrafficSource(cfg.name, [name for name, _ in ctx.campaigns], ctx.interval, ctx.timeout, scenario,
                             clock)


@dataclass(frozen=True, kw_only=True)
class AccessLogConfig(TrafficConfig):
    """source = "access-log": tails a web server log (`format` combined or json)."""

    source: str = "access-log"
    path: str = opt.string(required=True)
    format: str = opt.choice("combined", {"combined", "json"})
    window: float | None = window()


def _access_log(cfg: AccessLogConfig, ctx: SourceContext) -> Source:
    from .accesslog import AccessLogSource

    return AccessLogSource(cfg.name, cfg.path, cfg.format, ctx.campaigns, ctx.interval, ctx.timeout,
                           window=cfg.window)


KINDS = [Kind("demo", DemoTrafficConfig, _demo), Kind("access-log", AccessLogConfig, _access_log)]
