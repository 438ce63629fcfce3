"""The contract every source follows: one async `poll()` that returns a Reading or raises SourceError.

Also what every source kind is built from (surgewatch.plugins): the keys every [[host]] and [[traffic]]
table takes (HostConfig, TrafficConfig, which each kind's options extend) and the context its build
function gets (SourceContext). Cheap to import: the config reads tables against these.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .. import plugins as opt
from ..textsafe import one_line

if TYPE_CHECKING:
    from .demo import DemoClock, DemoScenario


class SourceError(Exception):
    """A poll failed; the message is one line, safe to show (no secrets, no traceback, no terminal controls)."""

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(one_line(message), *args)  # remote text may carry ESC sequences or newlines


@dataclass(slots=True)
class Reading:
    """What one poll yields: values by series name, plus optional details for frontends."""

    values: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)


class Source(Protocol):
    """A thing that is polled on its own schedule (a host, an analytics site, a log file)."""

    name: str  # the label shown to users, e.g. "host:web-1"
    interval: float
    timeout: float
    demo: bool

    async def poll(self) -> Reading:
        """Take one reading; raise SourceError with a one-line message on failure."""
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...


@runtime_checkable
class Immediate(Protocol):
    """A source whose reading needs no waiting (it reads this machine, or computes it): the collector takes it
    on the spot from one timer shared by every such source with the same interval, with no task, timeout or
    extra wake-up of its own. `poll_now` raises SourceError as `poll` does, and returns None when this poll
    has to go through `poll()` after all (e.g. it has work for a thread)."""

    def poll_now(self) -> Reading | None:
        """The reading now, or None: poll() instead."""
        ...


@dataclass(frozen=True, slots=True)
class Backfill:
    """Past samples a source can supply at start-up (the demo's history): ts and values by series."""

    ts: list[float]
    values: dict[str, list[float]]


@runtime_checkable
class CampaignAware(Protocol):
    """A traffic source that reports per-campaign visitors and can be told the campaigns as they change (a
    campaign feed adds, moves or cancels them while it runs)."""

    def set_campaigns(self, campaigns: list[tuple[str, str]]) -> None:
        """Report on these (campaign name, utm_campaign) pairs from the next poll on."""
        ...


@dataclass(frozen=True, kw_only=True)
class PolledConfig:
    """The keys every polled source's table takes: its name, its kind, how often and how long to poll."""

    name: str
    source: str
    interval: float | None = opt.duration(minimum=0.05)  # None: [monitor] interval
    timeout: float | None = opt.duration(minimum=0.01)

    def validate(self) -> None:
        """Raise plugins.OptionError when the keys are wrong together (a kind overrides it)."""


@dataclass(frozen=True, kw_only=True)
class HostConfig(PolledConfig):
    """The keys every [[host]] table takes; each source kind's options extend it (sources/host_kinds.py)."""

    group: str | None = opt.string()  # the host group of this host (of every host a fleet source reports)


@dataclass(frozen=True, kw_only=True)
class TrafficConfig(PolledConfig):
    """The keys every [[traffic]] table takes; each kind extends it (traffic_kinds.py, web_kinds.py)."""


@dataclass(frozen=True, kw_only=True)
class DemoSeed:
    """A demo table's key: the demo scenario's seed (one scenario drives every demo source; the first set wins)."""

    seed: int | None = opt.integer()


@dataclass
class BuildOptions:
    """Knobs frontends pass down: demo speed, injected clocks, whether to collect process lists."""

    demo_speed: float = 1.0
    wall_clock: Callable[[], float] = time.time
    top_processes: int = 0
    demo_seed: int = 7  # used unless a demo [[host]] or [[traffic]] sets `seed`
    # Which series anything needs (surgewatch.needed); None: all. A source may skip reading the others.
    wanted: Callable[[str], bool] | None = None


@dataclass(frozen=True)
class SourceContext:
    """What a source kind's build function gets besides its options."""

    interval: float  # the table's own interval, else [monitor]'s
    timeout: float
    options: BuildOptions
    demo: Callable[[], tuple[DemoScenario, DemoClock]]  # the one scenario and clock every demo source shares
    campaigns: tuple[tuple[str, str], ...] = ()  # traffic: (campaign name, utm_campaign) of campaigns it feeds
