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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", metavar="TEXT", help='what happened, e.g. "deploy v2.3"')
    p.add_argument("--host", metavar="H", help="the host it concerns (default: every host)")
    p.add_argument("--duration", metavar="D", default="15m",
                   help='how long after it an anomaly that starts is likely its effect (default "15m")')
    p.add_argument("--at", metavar="TIME", help="when it happened, RFC 3339 or UNIX seconds (default: now)")
    p.add_argument("--config", "-c", dest="config_annotate", metavar="FILE",
                   help="config file whose state dir holds the annotations (default: the built-in config's)")
    p.add_argument("--state-dir", metavar="DIR",
                   help="the daemon's state dir, e.g. /var/lib/surgewatch under systemd (default: from the config)")
    p.add_argument("--json", action="store_true", help="print the stored annotation as JSON")


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


def _fail(msg: str) -> int:
    print(f"surgewatch: {msg}", file=sys.stderr)
    return 2
