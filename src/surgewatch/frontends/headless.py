"""`surgewatch --headless`: the alerting daemon — alert events as JSON lines, logs on stderr."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from ..config import Config, ConfigError, SinkConfig
from ..defaults import resolve_config
from ..engine import Engine, EngineOptions
from ..logs import setup_logging

log = logging.getLogger("surgewatch.headless")


def run_headless(args: argparse.Namespace) -> int:
    """Run until SIGINT or SIGTERM; exit 0 after a bounded drain of queued alerts."""
    setup_logging(getattr(args, "log_format", "plain"))
    try:
        config = resolve_config(args.config, args.demo_speed)
    except ConfigError as exc:
        print(f"surgewatch: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_main(config, args.demo_speed))


async def _main(config: Config, demo_speed: float) -> int:
    engine = Engine(config, EngineOptions(demo_speed=demo_speed, default_sinks=[SinkConfig(kind="stdout")]))
    engine.backfill_demo()
    engine.collector.on_error = lambda name, msg: None  # the collector logs it already
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("started: %d sources, %d rules, tick %.3gs", len(engine.sources), len(config.rules),
             engine.tick_seconds)
    try:
        await engine.run(stop)
    finally:
        await engine.shutdown(drain_seconds=1.5)
        log.info("stopped")
    return 0
