"""Capacity plans: what a campaign of a given size will do to each host, from the load models learned so far.

A load model says load ≈ intercept + slope · campaign visitors (t − lag) for one host metric (correlation.py).
A plan takes the campaign's peak in the same unit as the analytics source reports it (visitors now, e.g. the last
5 minutes) and predicts, per host and metric, the peak load and when it comes (launch + lag); the headroom to the
metric's limit; and, per host group, how many more hosts keep the group under its warning level (8/9 of the
limit: 80 % for a 90 % limit), assuming the balancer
spreads the campaign's load evenly (the variable part of each host's load shrinks by k / (k + m) with m more
hosts; the intercept, the load without the campaign, stays).

A model learned from one campaign serves another on the same hosts: load per visitor is a property of the site
and the hosts far more than of the campaign. The plan says which campaign's model it used.

The peak can be given directly (visitors), as a lift of the site's traffic over its baseline (the campaign adds
(lift − 1) × baseline), or as an email send: recipients × click rate visitors in all, arriving at a decaying rate
with half of them within `half_life`, of whom the traffic source sees those of its last `window` at once:
peak = clicks × (1 − 2^(−window / half_life)).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .forecast import DEFAULT_LIMITS

WARN_FRACTION = 8 / 9  # a peak above this share of the limit is "tight" (80 % for a 90 % limit)
EMAIL_HALF_LIFE = 3600.0  # half of an email's clicks arrive within this many seconds of the send
REALTIME_WINDOW = 300.0  # analytics "visitors now" counts the last 5 minutes (Plausible, Umami, Matomo)

FITS, TIGHT, SATURATES, UNKNOWN = "fits", "tight", "saturates", "unknown"
EXIT_CODES = {FITS: 0, TIGHT: 1, SATURATES: 2, UNKNOWN: 3}
SEVERITY = {FITS: 0, TIGHT: 1, SATURATES: 2}


@dataclass(frozen=True, slots=True)
class ModelFact:
    """A learned load model of one campaign on one host metric (what a plan needs of it)."""

    campaign: str
    host: str
    metric: str
    lag_seconds: float
    slope: float
    intercept: float
    r2: float
    usable: bool
    learned_at: float | None = None  # when it was fitted (None: unknown)
    driver: str = "campaign"  # what the model's traffic is: "campaign" visitors, or the whole "site"'s


@dataclass(frozen=True, slots=True)
class Demand:
    """The campaign's peak in the traffic source's unit, and how it was arrived at (said in every plan)."""

    peak_visitors: float  # the campaign's own visitors at its peak
    how: str
    baseline: float = math.nan  # the site's visitors without the campaign (models of site traffic add it)

    def traffic(self, driver: str) -> float:
        """The model input at the peak: the campaign's visitors, or the site's (its baseline plus them)."""
        return self.peak_visitors + self.baseline if driver == "site" else self.peak_visitors


def demand_from_visitors(visitors: float, baseline: float = math.nan) -> Demand:
    return Demand(visitors, f"peak of {visitors:,.0f} campaign visitors at once (as the traffic source counts "
                            f"them)", baseline)


def demand_from_lift(lift: float, baseline: float) -> Demand | None:
    """(lift − 1) × the site's baseline visitors; None without a baseline."""
    if not math.isfinite(baseline) or baseline <= 0:
        return None
    extra = max(0.0, lift - 1.0) * baseline
    return Demand(extra, f"lift {lift:g}x over the site's baseline of {baseline:,.0f} visitors: "
                         f"{extra:,.0f} campaign visitors at the peak", baseline)


def demand_from_clicks(clicks: float, half_life: float = EMAIL_HALF_LIFE, window: float = REALTIME_WINDOW,
                       baseline: float = math.nan) -> Demand:
    share = 1.0 - 2.0 ** (-window / half_life)
    peak = clicks * share
    return Demand(peak, f"{clicks:,.0f} visitors in all, half within {half_life / 60:g} min of the send: "
                        f"{peak:,.0f} at once in a {window / 60:g}-min window ({share:.1%})", baseline)


@dataclass(frozen=True, slots=True)
class HostPlan:
    host: str
    group: str | None
    metric: str
    model: ModelFact
    peak: float
    peak_at: float | None
    limit: float
    warn: float
    verdict: str
    add_hosts: int | None = 0  # more hosts beside this one that keep it under `warn` (None: more cannot)

    @property
    def headroom(self) -> float:
        """Limit minus the predicted peak, in the metric's unit (negative: over the limit)."""
        return self.limit - self.peak


@dataclass(frozen=True, slots=True)
class GroupPlan:
    group: str
    metric: str
    hosts: tuple[str, ...]
    peak: float  # the highest predicted host peak
    limit: float
    target: float  # the level added hosts keep every host under (the warning level)
    add_hosts: int | None  # more hosts that keep every host under `target` (None: adding hosts cannot)
    verdict: str


@dataclass(frozen=True, slots=True)
class Gap:
    """A host metric the plan cannot speak for, and what would let it."""

    host: str
    metric: str
    why: str


@dataclass
class Plan:
    campaign: str | None
    demand: Demand
    at: float | None
    hosts: list[HostPlan] = field(default_factory=list)
    groups: list[GroupPlan] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if not self.hosts:
            return UNKNOWN
        worst = max(self.hosts, key=lambda h: SEVERITY[h.verdict])
        return worst.verdict

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]


class ThresholdRule(Protocol):
    """What limits are read from: a rule's series glob and its `above` (config.RuleConfig has both)."""

    @property
    def series(self) -> str: ...

    @property
    def above(self) -> float | None: ...


def rule_limits(rules: Iterable[ThresholdRule]) -> dict[str, float]:
    """Per metric, the lowest `above` of the host threshold rules (`host:*/cpu.percent` above 85 → 85)."""
    out: dict[str, float] = {}
    for r in rules:
        if r.above is not None and r.series.startswith("host:") and "/" in r.series:
            metric = r.series.rsplit("/", 1)[1]
            if "*" not in metric and "?" not in metric:
                out[metric] = min(out.get(metric, math.inf), r.above)
    return out


def limit_of(metric: str, limits: Mapping[str, float]) -> float | None:
    return limits.get(metric, DEFAULT_LIMITS.get(metric))


def choose_models(facts: Iterable[ModelFact], campaign: str | None,
                  hosts: Sequence[str] | None) -> tuple[dict[tuple[str, str], ModelFact], list[Gap]]:
    """Per (host, metric): the campaign's own usable model, else the best-fitting usable one of another campaign
    on that host. Host metrics with models but none usable become gaps."""
    best: dict[tuple[str, str], ModelFact] = {}
    seen: dict[tuple[str, str], ModelFact] = {}
    for f in facts:
        if hosts and f.host not in hosts:
            continue
        key = (f.host, f.metric)
        prev = seen.get(key)
        if prev is None or f.r2 > prev.r2:
            seen[key] = f
        if not f.usable or not (f.slope > 0):
            continue
        cur = best.get(key)
        own, cur_own = f.campaign == campaign, cur is not None and cur.campaign == campaign
        if cur is None or (own and not cur_own) or (own == cur_own and f.r2 > cur.r2):
            best[key] = f
    gaps = [Gap(h, m, f"the best model (campaign {f.campaign}, r² {f.r2:.2f}) is not clear enough to plan with: "
                      f"a send with more traffic, or longer, gives one")
            for (h, m), f in sorted(seen.items()) if (h, m) not in best]
    return best, gaps


def make_plan(facts: Iterable[ModelFact], demand: Demand, *, campaign: str | None = None,
              hosts: Sequence[str] | None = None, at: float | None = None,
              limits: Mapping[str, float] | None = None, groups: Mapping[str, str | None] | None = None,
              warn_fraction: float = WARN_FRACTION) -> Plan:
    """The plan for a campaign of this demand on `hosts` (all modelled hosts when None)."""
    limits = limits or {}
    groups = groups or {}
    chosen, gaps = choose_models(facts, campaign, hosts)
    plan = Plan(campaign, demand, at, gaps=gaps)
    plan.assumptions.append(demand.how)
    plan.assumptions.append("load per visitor as learned (a model from another campaign on the same host serves "
                            "when this one has none)")
    for want in hosts or ():
        if not any(h == want for h, _m in chosen) and not any(g.host == want for g in gaps):
            gaps.append(Gap(want, "*", "no load model yet: it needs a campaign's traffic landing on it with the "
                                       "load measured (a recording, or the daemon's state after a send)"))
    for (host, metric), f in sorted(chosen.items()):
        limit = limit_of(metric, limits)
        if limit is None:
            continue
        x = demand.traffic(f.driver)
        if not math.isfinite(x):
            gaps.append(Gap(host, metric, "its model is of the site's whole traffic, and the site's baseline is "
                                          "unknown: a recording or history with the traffic series gives it"))
            continue
        warn = limit * warn_fraction
        peak = f.intercept + f.slope * x
        verdict = SATURATES if peak >= limit else TIGHT if peak >= warn else FITS
        peak_at = at + f.lag_seconds if at is not None and math.isfinite(f.lag_seconds) else None
        add = _add_hosts([f], 1, warn, demand)
        plan.hosts.append(HostPlan(host, groups.get(host), metric, f, peak, peak_at, limit, warn, verdict, add))
    plan.groups = _groups([h for h in plan.hosts if h.group], demand)
    if plan.groups:
        plan.assumptions.append("hosts added to a group share the campaign's load evenly behind the balancer; the "
                                "load without the campaign stays per host")
    return plan


def _add_hosts(models: Sequence[ModelFact], k: int, target: float, demand: Demand) -> int | None:
    """More hosts that keep each of these k hosts' load under `target` when the campaign's load (the variable
    part) spreads evenly over k + m hosts; None when a host is above `target` even without the campaign."""
    need = 0.0
    for m in models:
        # the campaign's share moves to the new hosts; for a site-traffic model the baseline's load stays
        variable = m.slope * demand.peak_visitors
        room = target - m.intercept - (m.slope * demand.baseline if m.driver == "site" else 0.0)
        if room <= 0:
            return None
        if variable > 0:
            need = max(need, variable / room)
    return max(0, math.ceil(k * need - 1e-9) - k)


def _groups(hosts: Sequence[HostPlan], demand: Demand) -> list[GroupPlan]:
    """Per configured host group and metric: the highest peak and the hosts to add to stay under the warning
    level."""
    by: dict[tuple[str, str], list[HostPlan]] = {}
    for h in hosts:
        by.setdefault((h.group or h.host, h.metric), []).append(h)
    out = []
    for (group, metric), members in sorted(by.items()):
        limit, target = members[0].limit, members[0].warn
        add = _add_hosts([h.model for h in members], len(members), target, demand)
        verdict = max((h.verdict for h in members), key=lambda v: SEVERITY[v])
        out.append(GroupPlan(group, metric, tuple(h.host for h in members), max(h.peak for h in members), limit,
                             target, add, verdict))
    return out
