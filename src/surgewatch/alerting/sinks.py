"""Where alert events go: each sink turns events into one delivery (a line, a POST, a command)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Protocol, TextIO

from ..config import SinkConfig
from ..model import AlertEvent, Severity


class SinkError(Exception):
    """A delivery failed (one line, no secrets); the outbox retries it later."""


class Sink(Protocol):
    """A destination for alert events."""

    kind: str
    min_severity: Severity

    async def send(self, events: Sequence[AlertEvent]) -> None:
        """Deliver events in order; raise SinkError if the receiver did not accept them."""
        ...

    async def close(self) -> None: ...


class StdoutSink:
    """JSON lines on stdout (the default in --headless)."""

    kind = "stdout"

    def __init__(self, min_severity: Severity = Severity.INFO, stream: TextIO | None = None) -> None:
        self.min_severity = min_severity
        self.stream = stream

    async def send(self, events: Sequence[AlertEvent]) -> None:
        out = self.stream or sys.stdout
        for e in events:
            out.write(json.dumps(e.to_json(), ensure_ascii=False) + "\n")
        out.flush()

    async def close(self) -> None:
        return None


def build_sink(cfg: SinkConfig) -> Sink:
    """The sink object for one [[sink]] entry."""
    if cfg.kind == "stdout":
        return StdoutSink(cfg.min_severity)
    raise SinkError(f"sink kind {cfg.kind!r} is not available")  # config rejects these first
