"""`surgewatch report FILE -o report.html`: a self-contained post-mortem page (inline SVG, no external assets)."""

from __future__ import annotations

import argparse
import sys

from .replaycmd import add_range_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a recording made with --record")
    add_range_arguments(p)
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="the HTML file to write")


def run(args: argparse.Namespace) -> int:
    print("surgewatch: report: not built yet", file=sys.stderr)
    return 2
