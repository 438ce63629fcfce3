"""`surgewatch check`: poll every source once (twice where rates need it), judge thresholds, exit 0/1/2/3."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..model import Severity, glob_match, split_series

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", metavar="FILE", help="config file (default: built-in demo + this host)")
    p.add_argument("--json", action="store_true", help="print every series' latest value as one JSON document")
    p.add_argument("--gap", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between the two polls that rates need (default 1)")


@dataclass(frozen=True)
class Breach:
    rule: str
    severity: Severity
    series: str
    value: float
    level: float
    word: str


def evaluate_thresholds(config: Config, values: dict[str, float]) -> list[Breach]:
    """Every threshold rule breached by the latest values (`for` does not apply to a one-shot check)."""
    out = []
    for rule in config.rules:
        if rule.kind != "threshold":
            continue
        for name, v in sorted(values.items()):
            if not glob_match(rule.series, name) or math.isnan(v):
                continue
            if rule.above is not None and v > rule.above:
                out.append(Breach(rule.name, rule.severity, name, v, rule.above, "above"))
            elif rule.below is not None and v < rule.below:
                out.append(Breach(rule.name, rule.severity, name, v, rule.below, "below"))
    return out


async def _collect(config: Config, gap: float) -> tuple[dict[str, float], dict[str, str | None]]:
    from ..collector import Collector
    from ..sources import build_sources

    sources = build_sources(config)
    collector = Collector(sources)
    try:
        await asyncio.gather(*(collector.poll_once(s) for s in sources))
        await asyncio.sleep(gap)
        await asyncio.gather(*(collector.poll_once(s) for s in sources))
    finally:
        await collector.stop()
    errors = {name: h.error for name, h in collector.health.items()}
    return collector.drain(), errors


def models_summary(config: Config) -> dict[str, Any]:
    """What the state dir's models file holds (analysis/loadmodels.py), read without changing it."""
    from ..analysis.loadmodels import GROUP, ModelStore
    from ..model import rfc3339
    from ..statedir import resolve_state_dir

    store = ModelStore.in_state_dir(resolve_state_dir(config.monitor.state_dir, config.path)).load(repair=False)
    models = store.models()
    newest = max((m.learned_at for m in models), default=None)
    return {"file": str(store.path), "count": len(models), "groups": sum(m.scope == GROUP for m in models),
            "newest": rfc3339(newest) if newest is not None else None, "problem": store.problem}


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..defaults import resolve_config

    try:
        config = resolve_config(args.config)
    except ConfigError as exc:
        print(f"UNKNOWN - surgewatch: {exc}")
        return UNKNOWN
    values, errors = asyncio.run(_collect(config, max(0.0, args.gap)))
    breaches = evaluate_thresholds(config, values)
    worst = max((b.severity for b in breaches), default=None)
    if worst == Severity.CRITICAL:
        code = CRITICAL
    elif worst == Severity.WARNING:
        code = WARNING
    elif any(errors.values()):
        code = UNKNOWN
    else:
        code = OK
    if args.json:
        doc: dict[str, Any] = {
            "status": STATUS[code], "exit": code,
            "series": {k: (None if math.isnan(v) else round(v, 6)) for k, v in sorted(values.items())},
            "firing": [{"rule": b.rule, "severity": str(b.severity), "series": b.series, "value": b.value,
                        "level": b.level} for b in breaches],
            "sources": {k: {"ok": v is None, "error": v} for k, v in errors.items()},
            "tls_unverified": config.insecure_tls(),
            "models": models_summary(config),
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return code
    from ..describe import format_value

    failed = {k: v for k, v in errors.items() if v}
    head = f"{STATUS[code]} - {len(values)} series from {len(errors) - len(failed)}/{len(errors)} sources"
    if breaches:
        head += f", {len(breaches)} rule breach{'es' if len(breaches) != 1 else ''}"
    print(head)
    for b in breaches:
        metric = split_series(b.series)[2]
        print(f"{str(b.severity).upper()} {b.rule}: {b.series} = {format_value(metric, b.value)} "
              f"({b.word} {format_value(metric, b.level)})")
    for name, err in failed.items():
        print(f"UNKNOWN source {name}: {err}")
    models = models_summary(config)
    if models["problem"]:
        print(f"WARNING learned models {models['file']}: {models['problem']}")
    elif models["count"]:
        print(f"learned load models: {models['count']} ({models['groups']} of host groups) in {models['file']}, "
              f"newest {models['newest']}")
    for name in config.insecure_tls():
        print(f"WARNING {name}: tls_verify = false, its TLS certificate is NOT verified (anyone in the path "
              "can read and change what it sends and receives)")
    return code
