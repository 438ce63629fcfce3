"""Read-only views of the engine's state that frontends render: plain, immutable data."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .model import AlertEvent, Annotation, Cause


class RecentValues(Mapping[str, tuple[float, ...]]):
    """Some series' recent values by metric, read from one array that every host of a snapshot shares: a tuple
    is made only when asked for (a fleet's dashboard draws the sparklines of the rows on screen, not of 1,000
    hosts × 4 metrics × 60 points, which as Python floats would be ~6 MB per snapshot)."""

    __slots__ = ("_rows", "_values")

    def __init__(self, values: np.ndarray, rows: Mapping[str, int]) -> None:
        self._values = values  # [row, time], not changed after (a copy taken for the snapshot)
        self._rows = rows

    def __getitem__(self, metric: str) -> tuple[float, ...]:
        return tuple(self._values[self._rows[metric]].tolist())

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return repr(dict(self))


@dataclass(frozen=True, slots=True)
class SourceView:
    name: str
    demo: bool
    ok: bool
    stale: bool
    error: str | None
    last_success: float | None
    last_latency: float | None
    interval: float
    polls: int
    failures: int
    insecure_tls: bool = False  # tls_verify = false: any certificate is accepted (shown on the Sources screen)


@dataclass(frozen=True, slots=True)
class HostView:
    """One host's latest metrics, recent CPU history and the campaigns landing on it."""

    name: str
    demo: bool
    stale: bool
    error: str | None
    metrics: dict[str, float]
    spark: Mapping[str, tuple[float, ...]]  # a dict, or RecentValues (what the engine gives)
    scores: dict[str, float]
    campaigns: tuple[str, ...]
    headroom: float = float("nan")
    seconds_to_limit: float = float("nan")
    top_processes: tuple[dict[str, Any], ...] = ()
    group: str | None = None  # the host group (hostgroups.py), None when the config and sources name none


@dataclass(frozen=True, slots=True)
class PairView:
    host: str
    metric: str
    lag_seconds: float
    slope: float
    intercept: float
    r2: float
    expected_now: float
    headroom: float
    seconds_to_limit: float


@dataclass(frozen=True, slots=True)
class GroupView:
    """A host group under a campaign: its shared load model, headroom, time to saturation, hosts above it."""

    group: str
    metric: str
    hosts: int  # hosts of the group reporting the metric now
    median_now: float
    lag_seconds: float  # NaN: no usable model yet
    slope: float
    intercept: float
    r2: float
    expected_now: float  # the model's group mean at the current traffic
    headroom: float  # multiple of current traffic at which the group's mean reaches the limit
    seconds_to_limit: float
    departing: tuple[str, ...] = ()  # hosts above their group now (unexplained)
    restored: bool = False  # the model comes from the models file (learned before a restart)


@dataclass(frozen=True, slots=True)
class CampaignView:
    """A campaign now: visitors, lift over baseline, trend and its per-host load models."""

    name: str
    demo: bool
    visitors: float
    baseline: float
    lift: float
    expected_lift: float | None
    growth_per_s: float
    spark: tuple[float, ...]
    hosts: tuple[str, ...]
    start: float | None
    end: float | None
    pairs: tuple[PairView, ...] = ()
    feed: str | None = None  # the campaign feed it came from (None: a [[campaign]] table)
    expected_visitors: float | None = None
    forecast: str | None = None  # before launch: the plan's worst host ("forecast peak web-2 CPU 97 % at …")
    groups: tuple[GroupView, ...] = ()  # per host group it lands on (hosts with a `group`): its shared model


@dataclass(frozen=True, slots=True)
class AlertView:
    """A pending or firing alert."""

    rule: str
    series: str
    state: str
    severity: str
    since: float
    value: float
    summary: str
    explanation: str
    cause: Cause | None
    campaign: str | None
    fingerprint: str
    demo: bool
    acked: bool = False  # someone acknowledged it: no repeat notifications until it resolves
    silenced: bool = False  # a silence covers it: its state still changes, notifications are withheld


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a frontend shows, as of one tick."""

    ts: float
    tick: int
    interval: float
    hosts: tuple[HostView, ...]
    campaigns: tuple[CampaignView, ...]
    alerts: tuple[AlertView, ...]
    events: tuple[AlertEvent, ...]
    sources: tuple[SourceView, ...]
    values: dict[str, float] = field(default_factory=dict)
    annotations: tuple[Annotation, ...] = ()  # deploy annotations (charts mark them), oldest first
