"""`surgewatch report FILE -o report.html`: a self-contained post-mortem page (see postmortem.py)."""

from __future__ import annotations

import argparse
import sys

from .replaycmd import add_range_arguments, resolve_range


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a recording made with --record, or a shipped scenario name")
    add_range_arguments(p)
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="the HTML file to write")


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..scenarios import resolve
    from .format import RecordingError
    from .postmortem import gather, render
    from .reader import Recording

    args.file = resolve(args.file)
    try:
        with Recording(args.file) as rec:
            span = rec.span()
        start, end = resolve_range(args, span[0] if span else None)
        page = render(gather(args.file, start, end))
    except (RecordingError, ConfigError, ValueError) as exc:
        print(f"surgewatch: {exc}", file=sys.stderr)
        return 2
    try:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as exc:
        print(f"surgewatch: {args.output}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
