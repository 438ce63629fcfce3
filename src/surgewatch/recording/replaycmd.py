"""`surgewatch replay FILE`: the recorded session through analysis and rules again, headless or on the dashboard."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ..units import parse_duration

if TYPE_CHECKING:
    from .replay import ReplayDriver


def parse_time(text: str, origin: float | None = None) -> float:
    """A point in time: RFC 3339 ("2026-03-01T09:00:00Z"), UNIX seconds, or "+5m" after `origin`."""
    t = text.strip()
    if t.startswith("+"):
        if origin is None:
            raise ValueError(f"{text!r} is relative, but there is nothing to be relative to")
        return origin + parse_duration(t[1:])
    try:
        return float(t)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f'must be a time like 2026-03-01T09:00:00Z, UNIX seconds or "+5m", got {text!r}') from None
    if dt.tzinfo is None:
        from datetime import UTC

        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def add_range_arguments(p: argparse.ArgumentParser) -> None:
    """--from and --to, shared by replay, export and report."""
    p.add_argument("--from", dest="start", metavar="T",
                   help='start at T: RFC 3339, UNIX seconds, or "+10m" after the recording starts')
    p.add_argument("--to", dest="end", metavar="T", help="stop after T (same forms as --from)")


def resolve_range(args: argparse.Namespace, first: float | None) -> tuple[float | None, float | None]:
    """The --from/--to of `args` as UNIX seconds (raises ValueError naming the option)."""
    out: list[float | None] = []
    for opt, text in (("--from", args.start), ("--to", args.end)):
        if text is None:
            out.append(None)
            continue
        try:
            out.append(parse_time(text, first))
        except ValueError as exc:
            raise ValueError(f"{opt} {exc}") from None
    if out[0] is not None and out[1] is not None and out[1] < out[0]:
        raise ValueError("--to is before --from")
    return out[0], out[1]


def _speed(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (as fast as possible) or more, got {text!r}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a recording made with --record, or a shipped scenario name")
    p.add_argument("--config", "-c", metavar="F",
                   help="rules and sinks from F (default: the config stored in the recording, stdout only)")
    p.add_argument("--speed", type=_speed, default=None, metavar="N",
                   help="N times real time; 0 = as fast as possible (default: 1 on the dashboard, 0 headless)")
    add_range_arguments(p)
    p.add_argument("--headless", action="store_true",
                   help="no UI: alert events as JSON lines on stdout, timestamps from the recording")


def run(args: argparse.Namespace, dashboard: Callable[[ReplayDriver], int] | None = None) -> int:
    """Play the recording: headless (alert events as JSON lines), or on `dashboard`, which the UI layer passes
    (tui/replaycmd.py: nothing below the UI imports Textual); without one the replay runs headless."""
    if dashboard is None:
        args.headless = True
    from ..scenarios import resolve

    args.file = resolve(args.file)
    from ..config import ConfigError
    from .format import RecordingError
    from .reader import Recording
    from .replay import ReplayDriver, replay_config

    try:
        rec = Recording(args.file)
    except RecordingError as exc:
        print(f"surgewatch: {exc}", file=sys.stderr)
        return 2
    with rec:
        try:
            span = rec.span()
            start, end = resolve_range(args, span[0] if span else None)
            config = replay_config(rec, args.config)
        except (ValueError, ConfigError, RecordingError) as exc:
            print(f"surgewatch: {exc}", file=sys.stderr)
            return 2
        stdout_sinks = [s for s in config.sinks if s.kind == "stdout"]
        others = [s for s in config.sinks if s.kind != "stdout"]
        if args.config is None and others:
            print(f"surgewatch: replay: not delivering to {len(others)} sink(s) of the recorded config "
                  "(pass --config FILE to deliver)", file=sys.stderr)
            others = []
        speed = args.speed if args.speed is not None else (0.0 if args.headless else 1.0)
        try:
            driver = ReplayDriver(rec, config, start=start, end=end, speed=speed or float("inf"), sinks=others,
                                  follow_reloads=args.config is None)
        except (RecordingError, OSError) as exc:
            print(f"surgewatch: {exc}", file=sys.stderr)
            return 2
        for note in driver.notes:
            print(f"surgewatch: replay: warning: {note}", file=sys.stderr)
        if args.headless or dashboard is None:
            min_sev = min((s.min_severity for s in stdout_sinks), default=None)
            return asyncio.run(_headless(driver, min_sev))
        return dashboard(driver)


async def _headless(driver: object, min_severity: object) -> int:
    from ..alerting.sinks import document
    from ..model import AlertEvent, Severity
    from .format import RecordingError
    from .replay import ReplayDriver

    assert isinstance(driver, ReplayDriver)
    floor = min_severity if isinstance(min_severity, Severity) else Severity.INFO

    def emit(events: Sequence[AlertEvent]) -> None:
        lines = [json.dumps(document(e), ensure_ascii=False) + "\n" for e in events if e.severity >= floor]
        if lines:
            sys.stdout.write("".join(lines))
            sys.stdout.flush()

    driver.on_events(emit)
    driver.dispatcher.start()
    try:
        await driver.run()
    except RecordingError as exc:  # e.g. a recorded config reload that no longer loads: the lines so far stand
        print(f"surgewatch: {exc}", file=sys.stderr)
        return 2
    finally:
        await driver.close()
    return 0
