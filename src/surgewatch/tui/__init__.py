"""The Textual dashboard; the only package that imports Textual."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config
    from ..engine import Engine


def dashboard_config(config: Config, viewer: bool = False) -> Config:
    """The config a dashboard runs: no stdout sink (JSON lines would draw over the screen; the dashboard shows
    alerts itself), and no sinks at all for a browser viewer of `serve` (every open tab runs its own engine:
    ten tabs must not send ten notifications; the daemon or a terminal dashboard sends them)."""
    sinks = () if viewer else tuple(s for s in config.sinks if s.kind != "stdout")
    return dataclasses.replace(config, sinks=sinks)


MUX_DELAY_MS = 25  # inside tmux or screen: each key is written to the pane in one piece
TERMINAL_DELAY_MS = 50  # a terminal of its own, maybe over a slow link (neovim's ttimeoutlen)


def escape_delay_ms(env: Mapping[str, str]) -> int:
    """Milliseconds to wait after a lone ESC before it counts as the esc key (keyinput.py): the user's ESCDELAY,
    else by terminal (a multiplexer parses keys itself and writes each one to the pane whole)."""
    chosen = env.get("ESCDELAY", "")
    if chosen.isdigit() and int(chosen) > 0:
        return int(chosen)
    muxed = env.get("TMUX") or env.get("STY") or env.get("TERM", "").startswith(("screen", "tmux"))
    return MUX_DELAY_MS if muxed else TERMINAL_DELAY_MS


def run_dashboard(args: argparse.Namespace) -> int:
    """Build the engine (one-line errors before the screen opens) and run the dashboard."""
    # OpenBLAS starts a thread per core when numpy loads (~0.1 CPU-s); a dashboard's matrices are small.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # read by Textual at import: how long a lone ESC waits for the rest of a key's sequence
    os.environ["ESCDELAY"] = str(escape_delay_ms(os.environ))
    from ..config import ConfigError
    from ..defaults import resolve_config
    from ..engine import Engine, EngineOptions

    try:
        config = resolve_config(args.config, args.demo_speed)
    except ConfigError as exc:
        print(f"surgewatch: {exc}", file=sys.stderr)
        return 2
    config = dashboard_config(config, viewer=bool(getattr(args, "viewer", False)))
    try:
        # analysis starts at the second tick: the first frame shows every value without waiting for it
        engine = Engine(config, EngineOptions(demo_speed=args.demo_speed, top_processes=10, defer_analysis=True))
        if config.monitor.record:
            from ..recording.writer import attach_recorder

            attach_recorder(engine)
    except Exception as exc:  # state dir, outbox or recording problems: one line, working terminal
        print(f"surgewatch: {exc}", file=sys.stderr)
        return 2
    engine.backfill_demo()
    low_bandwidth = bool(getattr(args, "low_bandwidth", False))
    if low_bandwidth:  # read by Textual at import: at most 4 frames a second
        os.environ.setdefault("TEXTUAL_FPS", "4")
    return asyncio.run(_run(engine, low_bandwidth, getattr(args, "wall", None)))


async def _run(engine: Engine, low_bandwidth: bool, wall_seconds: float | None = None) -> int:
    """Start the engine, then load and run the dashboard: the first polls and tick overlap loading Textual,
    so the first frame already shows every source."""
    stop = asyncio.Event()
    engine_task = asyncio.create_task(engine.run(stop), name="engine")
    # Two steps: the engine starts its pollers and first-tick timer, then each poller its first short wait;
    # so during the imports below every first poll falls due before the first tick does.
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    from .app import SurgewatchApp

    app = SurgewatchApp(engine, engine_task=engine_task, stop=stop, low_bandwidth=low_bandwidth,
                        chart_mode="block" if low_bandwidth else None, wall_seconds=wall_seconds)
    try:
        result = await app.run_async()
    finally:
        stop.set()
        await asyncio.wait({engine_task}, timeout=5.0)
        if not engine_task.done():  # a stuck engine does not keep the command from returning
            engine_task.cancel()
            await asyncio.wait({engine_task})
    error = None if engine_task.cancelled() else engine_task.exception()
    if error is not None:
        raise error
    return int(result or 0)
