"""The contract every source follows: one async `poll()` that returns a Reading or raises SourceError."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..textsafe import one_line


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
