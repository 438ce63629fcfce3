"""`surgewatch plan`: before a send, what it will do to each host — and how many hosts keep it under the limit.

    surgewatch plan [--config F] [--from-state | --recording R] (CAMPAIGN | --visitors N | --lift X |
                    --recipients N --click-rate P) [--at TIME] [--hosts H,...] [--json]

The load models come from a recording (`--recording R`: the analysis runs over it, as `analyze` does). The peak
comes from the command line or from the campaign (a `[[campaign]]` table, or an event of a `[[campaign_feed]]`,
read once): its `expected_lift` with the site's baseline, else its `expected_visitors` as an email-like arrival.
Exit 0 fits, 1 tight (above 8/9 of a limit), 2 saturates, 3 unknown (no usable model; it says which data would
make one), 4 bad input or usage. A marketing team can run it in CI before a send is scheduled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from datetime import UTC, datetime
from typing import Any, NoReturn

from ..analysis.plan import (
    EMAIL_HALF_LIFE,
    REALTIME_WINDOW,
    Demand,
    ModelFact,
    Plan,
    demand_from_clicks,
    demand_from_lift,
    demand_from_visitors,
    make_plan,
    rule_limits,
)
from ..config import CampaignConfig, Config, ConfigError, load_config
from ..units import format_duration

BAD_INPUT = 4


class PlanError(Exception):
    """Bad input, one line."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    def usage_error(message: str) -> NoReturn:  # exit 2 means "saturates" here: usage errors get their own code
        p.print_usage(sys.stderr)
        print(f"surgewatch plan: error: {message}", file=sys.stderr)
        sys.exit(BAD_INPUT)

    p.error = usage_error  # type: ignore[method-assign]
    p.add_argument("campaign", nargs="?", metavar="CAMPAIGN",
                   help="a [[campaign]] or campaign-feed event with an expected size (expected_lift or "
                        "expected_visitors)")
    p.add_argument("--config", "-c", metavar="F", help="config: campaigns, feeds, host groups, rule limits")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--recording", "-r", metavar="R", help="learn the load models from this recording")
    where.add_argument("--from-state", action="store_true",
                       help="use the load models the daemon saved in its state directory")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--visitors", type=float, metavar="N", help="peak visitors at once, as the traffic source "
                                                                  "counts them")
    size.add_argument("--lift", type=float, metavar="X", help="peak site traffic as a multiple of its baseline")
    size.add_argument("--recipients", type=float, metavar="N", help="an email send's recipients (with --click-rate)")
    p.add_argument("--click-rate", type=float, metavar="P", help="visitors per recipient, 0–1 (with --recipients)")
    p.add_argument("--half-life", type=float, default=EMAIL_HALF_LIFE / 60, metavar="MIN",
                   help=f"minutes in which half of a send's visitors arrive (default {EMAIL_HALF_LIFE / 60:g})")
    p.add_argument("--at", metavar="TIME", help="launch time (ISO 8601; default: the campaign's start, else now)")
    p.add_argument("--hosts", metavar="H,...", help="only these hosts (default: the campaign's, else every "
                                                    "modelled host)")
    p.add_argument("--json", action="store_true", help="the plan as one JSON document")


def run(args: argparse.Namespace) -> int:
    try:
        plan = build(args)
    except PlanError as exc:
        print(f"surgewatch plan: {exc}", file=sys.stderr)
        return BAD_INPUT
    if args.json:
        json.dump(plan_json(plan), sys.stdout, indent=1, allow_nan=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(plan_text(plan))
    return plan.exit_code


# -- inputs ---------------------------------------------------------------------------------------


def build(args: argparse.Namespace) -> Plan:
    config = _config(args.config)
    if args.recipients is not None and args.click_rate is None:
        raise PlanError("--recipients needs --click-rate (visitors per recipient, 0–1)")
    if args.click_rate is not None and not 0 <= args.click_rate <= 1:
        raise PlanError(f"--click-rate is visitors per recipient, 0–1, got {args.click_rate:g}")
    given = args.visitors is not None or args.lift is not None or args.recipients is not None
    if args.campaign is None and not given:
        raise PlanError("name a CAMPAIGN or give its size: --visitors, --lift or --recipients with --click-rate")
    campaign = _campaign(args.campaign, config) if args.campaign else None
    facts, baseline = _models(args, config)
    half_life = args.half_life * 60.0
    if not half_life > 0:
        raise PlanError(f"--half-life must be above 0 minutes, got {args.half_life:g}")
    demand = _demand(args, campaign, baseline, half_life)
    at = _time(args.at) if args.at else (campaign.start if campaign and campaign.start is not None else None)
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()] if args.hosts else (
        list(campaign.hosts) if campaign and campaign.hosts else None)
    limits = rule_limits(config.rules if config else ())
    groups = {h.name: h.group for h in config.hosts} if config else {}
    return make_plan(facts, demand, campaign=campaign.name if campaign else args.campaign, hosts=hosts, at=at,
                     limits=limits, groups=groups)


def _config(path: str | None) -> Config | None:
    if path is None:
        return None
    try:
        return load_config(path)
    except ConfigError as exc:
        raise PlanError(str(exc)) from None


def _campaign(name: str, config: Config | None) -> CampaignConfig:
    if config is None:
        raise PlanError(f"campaign {name!r}: give --config with the campaign (or its feed), or give its size "
                        "with --visitors, --lift or --recipients")
    for c in config.campaigns:
        if c.name == name:
            return c
    found = asyncio.run(_feed_campaigns(config)) if config.campaign_feeds else []
    for c in found:
        if c.name == name:
            return c
    known = sorted({c.name for c in config.campaigns} | {c.name for c in found})
    raise PlanError(f"campaign {name!r} is in neither the config nor its feeds (known: {', '.join(known) or 'none'})")


async def _feed_campaigns(config: Config) -> list[CampaignConfig]:
    """Every feed's campaigns, read once (a failing feed is one warning line; the others still count)."""
    from ..feeds import build_feed
    from ..sources.base import SourceError

    out: list[CampaignConfig] = []
    for f in config.campaign_feeds:
        src = build_feed(f, config)
        try:
            reading = await asyncio.wait_for(src.poll(), src.timeout)
            out.extend(reading.details.get("campaigns", ()))
        except (SourceError, TimeoutError) as exc:
            print(f"surgewatch plan: warning: feed {f.name}: {exc or 'timed out'}", file=sys.stderr)
        finally:
            await src.close()
    return out


def _models(args: argparse.Namespace, config: Config | None) -> tuple[list[ModelFact], float]:
    """The load models and the site's baseline visitors (for --lift), from a recording or the state dir."""
    if args.from_state:
        return _saved_models(config)
    if not args.recording:
        raise PlanError("give --recording R: the load models are learned from a recording of earlier traffic")
    from ..scenarios import resolve
    from .analyze import AnalyzeError, analyze_file, campaign_specs, read_input

    path = resolve(args.recording)  # a shipped scenario by name, as `replay` takes it
    try:
        report = analyze_file(path, args.config)
        _ts, names, cols = read_input(path)
    except AnalyzeError as exc:
        raise PlanError(str(exc)) from None
    # a campaign's models are of its site's traffic when the recording has that series, else of its own
    drivers = {spec.name: "site" if spec.traffic_series != spec.series else "campaign"
               for spec in campaign_specs(names, config)}
    facts = [ModelFact(p.campaign, p.host, p.metric, p.lag_seconds, p.slope, p.intercept, p.r2, p.usable,
                       report.end, drivers.get(p.campaign, "campaign")) for p in report.pairs]
    return facts, _baseline(names, cols, config)


def _saved_models(config: Config | None) -> tuple[list[ModelFact], float]:
    """The per-host load models the daemon keeps in its state dir (analysis/loadmodels.py), and the site's
    baseline visitors kept with the newest of them."""
    from ..analysis.loadmodels import HOST, ModelStore, plan_facts
    from ..statedir import resolve_state_dir

    store = ModelStore.in_state_dir(resolve_state_dir(config.monitor.state_dir if config else None,
                                                      config.path if config else None)).load(repair=False)
    if store.problem:
        raise PlanError(f"{store.path}: {store.problem}")
    facts = plan_facts(store.models())
    known = [m for m in store.models() if m.scope == HOST and m.traffic_baseline is not None]
    if not facts:
        raise PlanError(f"no load models saved in {store.path} yet: the daemon keeps them once a campaign has "
                        "run on its hosts; or give --recording R")
    newest = max(known, key=lambda m: m.learned_at).traffic_baseline if known else None
    return facts, newest if newest is not None else math.nan


def _baseline(names: list[str], cols: Any, config: Config | None) -> float:
    """The site's baseline visitors: a low quantile of its traffic series (a surge is never most of it)."""
    import numpy as np

    from ..analysis.correlation import baseline

    wanted = {f"traffic:{t.name}/visitors" for t in config.traffic} if config else set()
    for name, col in zip(names, cols, strict=True):
        if name.startswith("traffic:") and name.endswith("/visitors") and (not wanted or name in wanted):
            return baseline(np.asarray(col, dtype=float))
    return math.nan


def _demand(args: argparse.Namespace, campaign: CampaignConfig | None, baseline: float,
            half_life: float) -> Demand:
    if args.visitors is not None:
        if not args.visitors >= 0:
            raise PlanError(f"--visitors must be 0 or more, got {args.visitors:g}")
        return demand_from_visitors(args.visitors, baseline)
    if args.lift is not None or (campaign is not None and campaign.expected_lift and math.isfinite(baseline)):
        lift = args.lift if args.lift is not None else float(campaign.expected_lift or 0.0)  # type: ignore[union-attr]
        d = demand_from_lift(lift, baseline)
        if d is None:
            raise PlanError("--lift needs the site's baseline traffic, and the recording has no traffic series")
        return d
    if args.recipients is not None:
        return demand_from_clicks(args.recipients * args.click_rate, half_life, REALTIME_WINDOW, baseline)
    if campaign is not None and campaign.expected_visitors is not None:
        return demand_from_clicks(campaign.expected_visitors, half_life, REALTIME_WINDOW, baseline)
    name = campaign.name if campaign else "?"
    raise PlanError(f"campaign {name!r} has no expected size: set expected_lift or expected_visitors, or give "
                    "--visitors, --lift or --recipients")


def _time(text: str) -> float:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PlanError(f"--at {text!r} is not an ISO 8601 time (like 2026-12-03T10:00Z)") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


# -- output ---------------------------------------------------------------------------------------


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 4)


def _when(t: float | None) -> str | None:
    from ..model import rfc3339

    return rfc3339(t) if t is not None and math.isfinite(t) else None


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan in the vocabulary the post-mortem report shares: peak, peak_at, limit, headroom per host metric."""
    return {
        "campaign": plan.campaign, "verdict": plan.verdict, "exit": plan.exit_code, "at": _when(plan.at),
        "peak_visitors": _num(plan.demand.peak_visitors), "assumptions": list(plan.assumptions),
        "hosts": [{"host": h.host, "group": h.group, "metric": h.metric, "peak": _num(h.peak),
                   "peak_at": _when(h.peak_at), "limit": h.limit, "warn": _num(h.warn), "headroom": _num(h.headroom),
                   "verdict": h.verdict, "add_hosts": h.add_hosts,
                   "model": {"campaign": h.model.campaign, "lag_seconds": _num(h.model.lag_seconds),
                             "slope": _num(h.model.slope), "intercept": _num(h.model.intercept),
                             "r2": _num(h.model.r2), "learned_at": _when(h.model.learned_at)}}
                  for h in plan.hosts],
        "groups": [{"group": g.group, "metric": g.metric, "hosts": list(g.hosts), "peak": _num(g.peak),
                    "limit": g.limit, "target": _num(g.target), "add_hosts": g.add_hosts, "verdict": g.verdict}
                   for g in plan.groups],
        "unknown": [{"host": g.host, "metric": g.metric, "why": g.why} for g in plan.gaps],
    }


def _level(metric: str, v: float) -> str:
    if metric.endswith("percent"):
        return ">100%" if v > 100 else f"{v:.1f}%"  # a percent cannot pass 100: the host is saturated before
    return f"{v:.3g}"


def _add(n: int | None) -> str:
    return "-" if n is None else f"+{n}" if n else "0"


def plan_text(plan: Plan) -> str:
    what = f"campaign {plan.campaign!r}" if plan.campaign else "this campaign"
    at = f" launching {datetime.fromtimestamp(plan.at, UTC):%Y-%m-%d %H:%M} UTC" if plan.at is not None else ""
    lines = [f"plan for {what}{at}: {plan.verdict.upper()} (exit {plan.exit_code})",
             f"  demand: {plan.demand.how}"]
    if plan.hosts:
        lines.append("")
        rows = [("HOST", "METRIC", "PEAK", "WHEN", "LIMIT", "HEADROOM", "VERDICT", "ADD", "MODEL")]
        for h in plan.hosts:
            when = (f"{datetime.fromtimestamp(h.peak_at, UTC):%H:%M:%S}" if h.peak_at is not None
                    else f"+{format_duration(h.model.lag_seconds)}")
            rows.append((h.host, h.metric, _level(h.metric, h.peak), when, _level(h.metric, h.limit),
                         f"{h.headroom:+.1f}", h.verdict, _add(h.add_hosts),
                         f"{h.model.campaign}, r² {h.model.r2:.2f}, lag {format_duration(h.model.lag_seconds)}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if plan.hosts:
        lines.append("  ADD: hosts to add beside it to stay under the warning level (8/9 of the limit); "
                     "'-': its load without the campaign is already above that level")
    for g in plan.groups:
        if g.add_hosts is None:
            advice = "its load without the campaign is already above that level: more hosts cannot fix it"
        elif g.add_hosts == 0:
            advice = "no more hosts needed"
        else:
            advice = f"+{g.add_hosts} host{'s' if g.add_hosts != 1 else ''}"
        lines.append(f"  group {g.group} ({', '.join(g.hosts)}) {g.metric}: peak {_level(g.metric, g.peak)}; to "
                     f"stay under {_level(g.metric, g.target)}: {advice}")
    for gap in plan.gaps:
        lines.append(f"  unknown: {gap.host} {gap.metric}: {gap.why}")
    lines.append("  assumptions: " + "; ".join(plan.assumptions[1:]))
    return "\n".join(lines) + "\n"
