"""`surgewatch silence add|list|remove`: edit the silences a running daemon or dashboard picks up (mtime poll)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", dest="config_silence", metavar="FILE",
                   help="config file whose state dir holds the silences (default: the built-in config's)")
    p.add_argument("--state-dir", metavar="DIR",
                   help="the daemon's state dir, e.g. /var/lib/surgewatch under systemd (default: from the config)")
    sub = p.add_subparsers(dest="silence_command", metavar="ACTION", required=True)
    a = sub.add_parser("add", help="mute notifications of matching alerts for a while",
                       description="Mute notifications of alerts whose rule and series match the globs. "
                                   "Alerts still change state and show as silenced.")
    a.add_argument("--rule", default="*", metavar="GLOB", help="rule name glob (default *)")
    a.add_argument("--series", default="*", metavar="GLOB", help="series glob, e.g. 'host:web-*/cpu.percent'")
    a.add_argument("--for", dest="duration", required=True, metavar="DURATION", help='how long, e.g. "2h"')
    a.add_argument("--comment", default="", help="why (shown in list and the dashboard)")
    a.add_argument("--config", "-c", dest="config_sub", metavar="FILE", help=argparse.SUPPRESS)
    lst = sub.add_parser("list", help="show the silences in effect", description="Show the silences in effect.")
    lst.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    lst.add_argument("--all", action="store_true", help="include silences that ended within the last day")
    lst.add_argument("--config", "-c", dest="config_sub", metavar="FILE", help=argparse.SUPPRESS)
    rm = sub.add_parser("remove", help="delete a silence by id", description="Delete a silence by its id.")
    rm.add_argument("id", metavar="ID")
    rm.add_argument("--config", "-c", dest="config_sub", metavar="FILE", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from ..alerting.silences import SilenceError, SilenceStore
    from ..config import ConfigError
    from ..defaults import resolve_config
    from ..statedir import resolve_state_dir
    from ..units import parse_duration

    try:
        path = args.config_sub or args.config_silence or getattr(args, "config", None)
        cfg = resolve_config(path)
    except ConfigError as exc:
        return _fail(str(exc))
    store = SilenceStore(Path(args.state_dir) if args.state_dir else resolve_state_dir(cfg.monitor.state_dir, cfg.path))
    now = time.time()
    try:
        store.refresh(force=True)
        if args.silence_command == "add":
            try:
                seconds = parse_duration(args.duration)
            except ValueError as exc:
                return _fail(f"--for {exc}")
            s = store.add(args.rule, args.series, now + seconds, args.comment)
            print(f"{s.id}  silenced rule {s.rule!r} on series {s.series!r} until {_when(s.until)}")
            return 0
        if args.silence_command == "remove":
            if store.remove(args.id):
                print(f"{args.id}  removed")
                return 0
            return _fail(f"no silence with id {args.id!r} (see `surgewatch silence list`)", 1)
        silences = store.silences(now, include_expired=args.all)
    except SilenceError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps([_doc(s, now) for s in silences], ensure_ascii=False, indent=1))
    elif not silences:
        print("no silences in effect")
    else:
        rows = [("ID", "RULE", "SERIES", "ENDS", "LEFT", "COMMENT")]
        rows += [(s.id, s.rule, s.series, _when(s.until), _left(s.until - now), s.comment) for s in silences]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5])
    return 0


def _fail(msg: str, code: int = 2) -> int:
    print(f"surgewatch: {msg}", file=sys.stderr)
    return code


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(ts))


def _left(seconds: float) -> str:
    from ..units import format_duration

    return "ended" if seconds <= 0 else format_duration(seconds)


def _doc(s: Any, now: float) -> dict[str, Any]:
    from ..model import rfc3339

    return {"id": s.id, "rule": s.rule, "series": s.series, "until": rfc3339(s.until), "until_unix": s.until,
            "comment": s.comment, "created": rfc3339(s.created), "active": s.active(now)}
