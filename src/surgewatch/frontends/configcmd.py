"""`surgewatch config check FILE`: validate a config file; exit 0, or 2 with the one-line error."""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = sub.add_parser("check", help="validate FILE and exit 0, or 2 with the error",
                       description="Validate a config file: exit 0, or 2 with a one-line error.")
    c.add_argument("file", metavar="FILE")


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError, load_config

    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        print(f"surgewatch: {exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: ok ({len(cfg.hosts)} hosts, {len(cfg.probes)} probes, {len(cfg.traffic)} traffic "
          f"sources, {len(cfg.campaigns)} campaigns, {len(cfg.rules)} rules, {len(cfg.sinks)} sinks"
          + (f", {len(cfg.schedules)} schedules" if cfg.schedules else "") + ")")
    return 0
