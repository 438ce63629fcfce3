"""`surgewatch --headless`: the alerting daemon — alert events as JSON lines, logs on stderr.

Signals: SIGHUP reloads the config (a bad one is reported in one line and the running one kept);
SIGTERM and SIGINT deliver what is queued for at most DRAIN_SECONDS and exit 0. Every wait on the way
out is bounded, and a watchdog ends the process HARD_EXIT_SECONDS after the signal whatever happens:
undelivered notifications are already in the outbox and go out on the next start.
Silences, acknowledgements and deploy annotations are picked up by polling the state files (about once a second);
with `[export] listen`, `POST /annotations` records an annotation too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from functools import partial
from typing import TYPE_CHECKING

from ..config import Config, ConfigError, SinkConfig
from ..defaults import resolve_config
from ..lean import TickCollector, resume_gc
from ..logs import setup_logging

if TYPE_CHECKING:
    from ..engine import Engine
    from ..export import Exporter
    from .exportstate import ExportFeed

log = logging.getLogger("surgewatch.headless")

DRAIN_SECONDS = 1.2
STOP_SOURCES_SECONDS = 0.3
HARD_EXIT_SECONDS = 1.9


def run_headless(args: argparse.Namespace, hard_exit: bool = True) -> int:
    """Run until SIGINT or SIGTERM; exit 0 after a bounded drain of queued alerts (2 on a startup error).

    With `hard_exit` (the command line) the process ends right after the clean shutdown, skipping the
    interpreter's teardown; pass False to get the exit code back instead."""
    setup_logging(getattr(args, "log_format", "plain"))
    try:
        config = resolve_config(args.config, args.demo_speed)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    daemon = Daemon(config, args.config, args.demo_speed)
    loop = asyncio.new_event_loop()
    try:
        code = loop.run_until_complete(daemon.main())
    finally:
        _close_loop(loop)
    if hard_exit:
        _exit(code)
    return code


def _exit(code: int) -> None:
    """End the process now: everything durable is closed, and interpreter teardown (module and object
    finalisation) can take a second of CPU on a busy host, long enough to break the 2 s stop budget."""
    try:
        sys.stdout.flush()
    except Exception as exc:  # e.g. the reader of our stdout went away
        log.warning("shutdown: flushing stdout failed: %s: %s", type(exc).__name__, exc)
    with contextlib.suppress(Exception):  # nowhere left to report a failure to write the log itself
        sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel leftovers and close the loop without waiting on stuck tasks or executor threads."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        try:
            loop.run_until_complete(asyncio.wait(tasks, timeout=0.2))
        except Exception as exc:
            log.warning("shutdown: cancelling %d leftover tasks failed: %s: %s", len(tasks), type(exc).__name__, exc)
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
    except Exception as exc:
        log.warning("shutdown: closing async generators failed: %s: %s", type(exc).__name__, exc)
    executor = getattr(loop, "_default_executor", None)
    if executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)
    loop.close()


class Daemon:
    """The engine plus signals, reloads and the optional /metrics exporter."""

    def __init__(self, config: Config, config_path: str | None, demo_speed: float) -> None:
        self.config = config
        self.config_path = config_path
        self.demo_speed = demo_speed
        self.stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[bool]] = set()
        self.engine: Engine
        self.exporter: Exporter | None = None
        self.feed: ExportFeed | None = None

    async def main(self) -> int:
        from ..alerting.outbox import OutboxError
        from ..engine import Engine, EngineOptions
        from ..statedir import StateDirError

        try:
            self.engine = engine = Engine(self.config, EngineOptions(
                demo_speed=self.demo_speed, default_sinks=[SinkConfig(kind="stdout")], only_needed=True))
        except (StateDirError, OutboxError) as exc:
            log.error("%s", exc)
            return 2
        if self.config.monitor.record:
            from ..recording.format import RecordingError
            from ..recording.writer import attach_recorder

            try:
                attach_recorder(engine)
            except RecordingError as exc:
                log.error("%s", exc)
                await self._shutdown(0.0)
                return 2
        engine.backfill_demo()
        if self.config.export.listen and not await self._start_export(self.config.export.listen):
            await self._shutdown(0.0)
            return 2
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        log.info("started: %d sources, %d rules, tick %.3gs, pid %d", len(engine.source_health()),
                 len(self.config.rules), engine.tick_seconds, os.getpid())
        resume_gc()  # paused by the command line for start-up
        collector = TickCollector()
        # garbage collected between ticks, not during them (lean.py)
        engine.before_tick, engine.after_tick = collector.before_tick, collector.after_tick
        try:
            await engine.run(self.stop)
        finally:
            engine.before_tick = engine.after_tick = None
            collector.stop()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self._shutdown(DRAIN_SECONDS)
            log.info("stopped")
        return 0

    # -- signals --------------------------------------------------------------------------------

    def _on_stop(self, sig: int) -> None:
        if self.stop.is_set():
            return
        log.info("%s: delivering queued alerts for up to %.1fs, then exiting", signal.Signals(sig).name,
                 DRAIN_SECONDS)
        _start_watchdog(HARD_EXIT_SECONDS)
        self.stop.set()

    def _on_hup(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload(), name="reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> bool:
        """Re-read the config file and apply it; on any error keep the running config. True if applied."""
        async with self._reload_lock:
            where = self.config_path or "the built-in config"
            try:
                config = resolve_config(self.config_path, self.demo_speed)
            except ConfigError as exc:
                log.error("reload failed, keeping the running config: %s", exc)
                return False
            try:
                await self.engine.reload(config)
            except Exception as exc:  # a source or sink that cannot be built: keep what runs
                log.error("reload of %s failed, keeping the running config: %s: %s", where, type(exc).__name__,
                          exc)
                return False
            self.config, old = config, self.config
            if config.export.listen != old.export.listen:
                await self._stop_export()
                if config.export.listen:
                    await self._start_export(config.export.listen)
            elif self.exporter is not None:
                self.exporter.token = config.export.token
            log.info("reloaded %s: %d sources, %d rules, %d sinks", where, len(self.engine.source_health()),
                     len(config.rules), len(config.sinks) or 1)
            return True

    # -- export -----------------------------------------------------------------------------------

    async def _start_export(self, listen: str) -> bool:
        from ..export import Exporter, ExportError
        from .exportstate import ExportFeed

        if self.feed is None:
            self.feed = ExportFeed(self.engine)
            self.engine.add_listener(self.feed)
        store = self.engine.annotations
        exporter = Exporter(self.feed.latest, annotate=None if store is None else partial(store.add, origin="http"),
                            token=self.config.export.token)
        try:
            await asyncio.to_thread(exporter.start, listen)
        except ExportError as exc:
            log.error("%s", exc)
            return False
        self.exporter = exporter
        return True

    async def _stop_export(self) -> None:
        exporter, self.exporter = self.exporter, None
        if exporter is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(exporter.stop), 0.5)
            except TimeoutError:
                log.warning("the /metrics exporter did not stop within 0.5s; its thread is left behind")
            except Exception as exc:
                log.warning("stopping the /metrics exporter failed: %s: %s", type(exc).__name__, exc)

    # -- shutdown ---------------------------------------------------------------------------------

    async def _shutdown(self, drain: float) -> None:
        """Stop sources, deliver for up to `drain` seconds, close; every step bounded."""
        engine = self.engine
        for t in list(self._tasks):
            t.cancel()
        await self._stop_export()
        try:
            await asyncio.wait_for(engine.shutdown(drain_seconds=drain), drain + STOP_SOURCES_SECONDS + 0.2)
        except TimeoutError:
            log.warning("shutdown: delivery or a source did not stop in time; the outbox keeps what is left")
        except Exception as exc:
            log.error("shutdown: %s: %s", type(exc).__name__, " ".join(str(exc).split()))


def _start_watchdog(seconds: float) -> None:
    """End the process `seconds` from now even if shutdown hangs (the outbox already holds every alert)."""
    deadline = time.monotonic() + seconds

    def watch() -> None:
        while time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(Exception):
            log.warning("shutdown did not finish within %.1fs; exiting now (the outbox keeps what is left)",
                        seconds)
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(0)

    threading.Thread(target=watch, name="shutdown watchdog", daemon=True).start()
