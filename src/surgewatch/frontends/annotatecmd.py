"""`surgewatch annotate TEXT`: record a deploy annotation that a running daemon or dashboard picks up.

An anomaly starting within the annotation's window (on its host, or any host) stays unexplained but
names it as the likely cause; the annotation is drawn on the dashboard's charts and kept in recordings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..annotations import AnnotationStore


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", metavar="TEXT", nargs="?", help='what happened, e.g. "deploy v2.3"')
    p.add_argument("--host", metavar="H", help="the host it concerns (default: every host)")
    p.add_argument("--duration", metavar="D", default="15m",
                   help='how long after it an anomaly that starts is likely its effect (default "15m")')
    p.add_argument("--at", metavar="TIME", help="when it happened, RFC 3339 or UNIX seconds (default: now)")
    p.add_argument("--config", "-c", dest="config_annotate", metavar="FILE",
                   help="config file whose state dir holds the annotations (default: the built-in config's)")
    p.add_argument("--state-dir", metavar="DIR",
                   help="the daemon's state dir, e.g. /var/lib/surgewatch under systemd (default: from the config)")
    p.add_argument("--json", action="store_true", help="print the stored annotation (or the list) as JSON")
    p.add_argument("--list", action="store_true", help="instead, list the annotations of the last 8 days")


def run(args: argparse.Namespace) -> int:
    from ..annotations import AnnotationError, AnnotationStore, validate
    from ..config import ConfigError
    from ..defaults import resolve_config
    from ..statedir import resolve_state_dir
    from ..units import format_duration

    try:
        cfg = resolve_config(args.config_annotate or getattr(args, "config", None))
    except ConfigError as exc:
        return _fail(str(exc))
    state_dir = Path(args.state_dir) if args.state_dir else resolve_state_dir(cfg.monitor.state_dir, cfg.path)
    if args.list:
        return _list(AnnotationStore(state_dir), args.json)
    if args.text is None:
        return _fail("annotate needs TEXT (or --list)")
    at: object = args.at
    if isinstance(at, str):
        with contextlib.suppress(ValueError):
            at = float(at)
    try:
        new = validate(args.text, args.host, args.duration, at)
        stored = AnnotationStore(state_dir).add(new, "cli")
    except AnnotationError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(stored.to_json(), ensure_ascii=False))
    else:
        where = f"on {stored.host}" if stored.host else "on every host"
        print(f"{stored.id}  annotated {stored.text!r} {where}; anomalies starting within "
              f"{format_duration(stored.duration)} will name it")
    return 0


def _list(store: AnnotationStore, as_json: bool) -> int:
    import time

    from ..annotations import LOAD_SPAN, AnnotationError
    from ..model import rfc3339
    from ..units import format_duration

    try:
        items = store.read(since=time.time() - LOAD_SPAN)
    except AnnotationError as exc:
        return _fail(str(exc))
    if as_json:
        print(json.dumps([a.to_json() for a in items], ensure_ascii=False))
    elif not items:
        print("no annotations in the last 8 days")
    for a in items if not as_json else ():
        print(f"{a.id}  {rfc3339(a.ts)}  {a.host or '*'}  {format_duration(a.duration)}  {a.text}")
    return 0


def _fail(msg: str) -> int:
    print(f"surgewatch: {msg}", file=sys.stderr)
    return 2
