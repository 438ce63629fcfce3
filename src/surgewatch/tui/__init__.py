"""The Textual dashboard; the only package that imports Textual."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys


def run_dashboard(args: argparse.Namespace) -> int:
    """Build the engine (one-line errors before the screen opens) and run the dashboard."""
    from ..config import ConfigError
    from ..defaults import resolve_config
    from ..engine import Engine, EngineOptions

    try:
        config = resolve_config(args.config, args.demo_speed)
    except ConfigError as exc:
        print(f"surgewatch: {exc}", file=sys.stderr)
        return 2
    # JSON lines on stdout would draw over the screen: the dashboard shows alerts itself.
    config = dataclasses.replace(config, sinks=tuple(s for s in config.sinks if s.kind != "stdout"))
    try:
        engine = Engine(config, EngineOptions(demo_speed=args.demo_speed, top_processes=10))
    except Exception as exc:  # state dir or outbox problems: one line, working terminal
        print(f"surgewatch: {exc}", file=sys.stderr)
        return 2
    engine.backfill_demo()
    low_bandwidth = bool(getattr(args, "low_bandwidth", False))
    if low_bandwidth:  # read by Textual at import: at most 4 frames a second
        os.environ.setdefault("TEXTUAL_FPS", "4")
    from .app import SurgewatchApp

    app = SurgewatchApp(engine, low_bandwidth=low_bandwidth, chart_mode="block" if low_bandwidth else None)
    result = app.run()
    return int(result or 0)
