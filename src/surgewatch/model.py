"""The shared vocabulary: series names, severities, causes and alert events.

Everything here is plain, immutable data so that every layer (sources, store, analysis,
alerting, frontends) can pass it around without knowing about the others.
"""

from __future__ import annotations

import enum
import fnmatch
import math
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

try:  # CPython's built-in SHA-1: hashlib maps OpenSSL's libcrypto (~3.5 MB of RSS) for these two short ids
    from _sha1 import sha1
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import sha1

# The campaign fields a [[campaign_feed]] event or item can carry ([campaign_feed.fields] maps them to other names):
# here, not in sources/feed_kinds.py, so that the feed fetchers need not import the kinds module that builds them.
FEED_FIELDS = ("name", "start", "end", "hosts", "traffic", "utm_campaign", "expected_lift", "expected_visitors",
               "status")

_KEY_RE = re.compile(r"^(?P<kind>[a-z]+):(?P<name>[^/]+)/(?P<metric>.+)$")


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """A series name `KIND:NAME/METRIC`, e.g. `host:web-1/cpu.percent`."""

    kind: str
    name: str
    metric: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}/{self.metric}"

    @classmethod
    def parse(cls, text: str) -> SeriesKey:
        """Parse `KIND:NAME/METRIC`; raise ValueError naming the text when it is malformed."""
        m = _KEY_RE.match(text)
        if not m:
            raise ValueError(f"series name {text!r} is not KIND:NAME/METRIC")
        return cls(m["kind"], m["name"], m["metric"])


def series(kind: str, name: str, metric: str) -> str:
    """Return the string form of a series key (the form used on the hot path)."""
    return f"{kind}:{name}/{metric}"


SPLIT_CACHE = 1 << 15  # series names whose parts are kept; the cache starts over when it is full


def split_series(text: str) -> tuple[str, str, str]:
    """Split `KIND:NAME/METRIC` into its three parts (metric may be empty if malformed).

    The parts are kept per name: a fleet's analysis splits every name again whenever a host joins or leaves
    (ten thousand names, several times a tick with churn), and the same tuple is then shared by everything that
    holds it. Kinds and metrics are interned (a fleet has a dozen of each)."""
    got = _SPLIT.get(text)
    if got is None:
        kind, _, rest = text.partition(":")
        name, _, metric = rest.partition("/")
        if len(_SPLIT) >= SPLIT_CACHE:
            _SPLIT.clear()
        got = _SPLIT[text] = (sys.intern(kind), name, sys.intern(metric))
    return got


_SPLIT: dict[str, tuple[str, str, str]] = {}


def forget_split(names: Iterable[str]) -> None:
    """Drop evicted series' names from `split_series`' cache: under churn (a fleet replacing hosts) the cache
    would otherwise fill with departed hosts' names (and keep them alive) until it starts over."""
    pop = _SPLIT.pop
    for name in names:
        pop(name, None)


def split_cached(text: str) -> bool:
    """Whether `split_series` keeps the parts of this name (for tests of eviction)."""
    return text in _SPLIT


def glob_match(pattern: str, text: str) -> bool:
    """Shell-style, case-sensitive glob match used by rules, silences and exports."""
    return fnmatch.fnmatchcase(text, pattern)


class Severity(enum.IntEnum):
    """Alert severity, ordered so that `max()` gives the worst."""

    INFO = 0
    WARNING = 1
    CRITICAL = 2

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"severity must be info, warning or critical, got {text!r}") from None

    def __str__(self) -> str:
        return self.name.lower()


class Cause(enum.StrEnum):
    """Why a host series moved: a campaign's traffic explains it, or nothing does."""

    CAMPAIGN = "campaign"
    UNEXPLAINED = "unexplained"
    SCHEDULE = "schedule"
    RECURRING = "recurring"

    @property
    def code(self) -> CauseCode:
        """This cause as the small int that per-row arrays hold."""
        return _CAUSE_CODES[self]


class CauseCode(enum.IntEnum):
    """A cause as a small int, for per-row arrays (the rules' view of a tick); 0 where no cause is known.
    Only in memory: JSON, recordings and the outbox carry the Cause's name ("unexplained"). Arrays take and
    compare with a member's `.value` (see AlertState)."""

    NONE = 0
    CAMPAIGN = 1
    UNEXPLAINED = 2
    SCHEDULE = 3
    RECURRING = 4


_CAUSE_CODES = {c: CauseCode[c.name] for c in Cause}


class AlertState(enum.IntEnum):
    """Where one rule stands on one series (per-series int8 arrays in alerting/rules.py). Only in memory:
    snapshots, exports and JSON carry "pending" or "firing" (`str()` of the state). Compare arrays with a
    member's `.value` (a plain int): numpy takes a slow path for an int subclass, ~10x slower."""

    INACTIVE = 0
    PENDING = 1
    FIRING = 2

    def __str__(self) -> str:
        return self.name.lower()


def fingerprint(rule: str, series_name: str) -> str:
    """A stable identifier of one rule applied to one series (the same across restarts)."""
    return short_digest(f"{rule}\x00{series_name}", 16)


def short_digest(text: str, length: int) -> str:
    """The first `length` hex digits of the SHA-1 of `text` (stable ids: the same across restarts)."""
    return str(sha1(text.encode()).hexdigest()[:length])


def rfc3339(ts: float) -> str:
    """Format a UNIX timestamp as RFC 3339 UTC with millisecond precision and a Z suffix."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One transition of an alert (`firing` or `resolved`), as sinks receive it."""

    ts: float
    event: str
    rule: str
    severity: Severity
    series: str
    value: float | None
    expected: float | None
    summary: str
    explanation: str
    fingerprint: str
    started: float
    cause: Cause | None = None
    campaign: str | None = None
    demo: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    group: tuple[str, ...] = ()  # every series of this rule making the same transition in one notification

    def to_json(self) -> dict[str, Any]:
        """The JSON object written by the stdout and file sinks (keys are a public contract)."""
        kind, name, _metric = split_series(self.series)
        doc: dict[str, Any] = {
            "ts": rfc3339(self.ts),
            "event": self.event,
            "rule": self.rule,
            "severity": str(self.severity),
            "series": self.series,
            "value": finite_or_none(self.value),
            "expected": finite_or_none(self.expected),
            "summary": self.summary,
            "explanation": self.explanation,
            "fingerprint": self.fingerprint,
            "started": rfc3339(self.started),
            "cause": self.cause.value if self.cause else None,
            "campaign": self.campaign,
        }
        if kind in ("host", "campaign", "traffic", "probe"):
            doc[kind] = name
        if self.demo:
            doc["demo"] = True
        if self.labels:
            doc["labels"] = dict(self.labels)
            if self.labels.get("reason"):
                doc["reason"] = self.labels["reason"]
        if self.group:
            doc["group"] = list(self.group)
        return doc


def finite_or_none(x: float | None) -> float | None:
    """A number as JSON carries it: rounded to 6 decimals, None for a missing, NaN or infinite one."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), 6)


@dataclass(frozen=True, slots=True)
class Annotation:
    """A deploy (or any change) someone declared: named as the likely cause of anomalies starting in its
    window [ts, ts + duration) on its host (any host when None); it never explains load away."""

    id: int
    ts: float
    text: str
    host: str | None = None
    duration: float = 900.0
    origin: str = ""  # "cli", "http" or "recording"

    @property
    def end(self) -> float:
        return self.ts + self.duration

    def applies_to(self, host: str) -> bool:
        """Whether this annotation concerns `host` (an annotation without a host concerns every host)."""
        h = self.host
        return h is None or h == host or (("*" in h or "?" in h or "[" in h) and glob_match(h, host))

    def to_json(self) -> dict[str, Any]:
        """The public JSON form (recordings, `surgewatch export`, the HTTP answer): the keys a POST takes."""
        return {"id": self.id, "time": rfc3339(self.ts), "text": self.text, "host": self.host,
                "duration": self.duration, "origin": self.origin}
