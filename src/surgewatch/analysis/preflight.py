"""Pre-flight: the plan of every scheduled campaign with an expected size, made live from the models learned so far.

The engine asks for it every half minute while a campaign with an expected size (`expected_lift`, or
`expected_visitors` as from a Mailchimp send) is scheduled to start within the horizon. Each entry says what the
campaign will do to one host metric (plan.py's vocabulary); the campaign screen shows the worst one ("forecast
peak web-2 CPU 97 % at 10:40; +2 hosts to stay under 80 %") and `preflight_above` rules fire on them before launch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..describe import format_value, metric_label
from ..model import series
from .analyzer import CampaignState
from .plan import SEVERITY, ModelFact, demand_from_clicks, demand_from_lift, make_plan

HORIZON = 24 * 3600.0  # campaigns starting within this are planned (a preflight rule's `within` may ask less)


@dataclass(frozen=True, slots=True)
class Preflight:
    campaign: str
    start: float
    series: str  # host:NAME/METRIC
    peak: float
    peak_at: float
    limit: float
    warn: float
    add_hosts: int | None
    verdict: str  # fits, tight, saturates
    text: str


@dataclass(frozen=True, slots=True)
class Upcoming:
    """What pre-flight needs of a scheduled campaign."""

    name: str
    start: float
    hosts: tuple[str, ...]
    expected_lift: float | None
    expected_visitors: float | None
    site_baseline: float  # the site's baseline visitors (for expected_lift); NaN when unknown


def facts_of(states: Iterable[CampaignState], drivers: Mapping[str, str]) -> list[ModelFact]:
    """The load models the live analysis holds, as plan inputs; `drivers` says per campaign whether its models
    are of the site's traffic ("site") or of its own visitors ("campaign", the default)."""
    out = []
    for st in states:
        for p in st.pairs:
            m = p.model
            if m is not None:
                out.append(ModelFact(p.campaign, p.host, p.metric, p.lag_seconds, m.slope, m.intercept, m.r2,
                                     m.usable, driver=drivers.get(p.campaign, "campaign")))
    return out


def preflights(upcoming: Iterable[Upcoming], facts: Sequence[ModelFact], now: float,
               limits: Mapping[str, float] | None = None, groups: Mapping[str, str | None] | None = None,
               horizon: float = HORIZON) -> list[Preflight]:
    """One entry per host metric of every campaign starting within `horizon` that has an expected size."""
    out: list[Preflight] = []
    for c in upcoming:
        if not (now < c.start <= now + horizon):
            continue
        demand = None
        if c.expected_lift:
            demand = demand_from_lift(c.expected_lift, c.site_baseline)
        if demand is None and c.expected_visitors is not None:
            demand = demand_from_clicks(c.expected_visitors, baseline=c.site_baseline)
        if demand is None:
            continue
        plan = make_plan(facts, demand, campaign=c.name, hosts=list(c.hosts) or None, at=c.start, limits=limits,
                         groups=groups)
        for h in plan.hosts:
            group = next((g for g in plan.groups if h.host in g.hosts and g.metric == h.metric), None)
            add = group.add_hosts if group is not None else h.add_hosts
            peak_at = h.peak_at if h.peak_at is not None else c.start
            out.append(Preflight(c.name, c.start, series("host", h.host, h.metric), h.peak, peak_at, h.limit,
                                 h.warn, add, h.verdict, _text(h.host, h.metric, h.peak, peak_at, h.warn, add,
                                                               group.group if group else None)))
    return out


def _text(host: str, metric: str, peak: float, at: float, warn: float, add: int | None, group: str | None) -> str:
    level = ">100 %" if metric.endswith("percent") and peak > 100 else format_value(metric, peak)
    text = f"forecast peak {host} {metric_label(metric)} {level} at {datetime.fromtimestamp(at, UTC):%H:%M} UTC"
    where = f"group {group}" if group else host
    if add is None:
        return text + f"; {where} is above {format_value(metric, warn)} without the campaign"
    if add > 0:
        return text + f"; +{add} host{'s' if add != 1 else ''} ({where}) to stay under {format_value(metric, warn)}"
    return text


def worst(entries: Iterable[Preflight]) -> Preflight | None:
    """The entry to show for a campaign: the worst verdict, then the highest peak relative to its limit."""
    best: Preflight | None = None
    for e in entries:
        if best is None or (SEVERITY[e.verdict], e.peak / e.limit if e.limit else math.inf) > (
                SEVERITY[best.verdict], best.peak / best.limit if best.limit else math.inf):
            best = e
    return best
