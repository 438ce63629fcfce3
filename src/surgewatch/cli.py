"""The `surgewatch` command: the dashboard by default, `--headless`, and subcommands.

Each subcommand lives in its own module with `add_arguments(parser)` and `run(args) -> int`; those
modules import their heavy dependencies inside `run`, so `--help` and the daemon start fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from . import __version__
from .lean import asyncio_without_ssl, pause_gc, resume_gc
from .textsafe import SafeStream

# (name, module, one-line help). Keep names: users' scripts call them.
COMMANDS: list[tuple[str, str, str]] = [
    ("check", "surgewatch.frontends.check", "poll every source once and exit 0/1/2/3 (Nagios convention)"),
    ("config", "surgewatch.frontends.configcmd", "validate a config file"),
    ("agent", "surgewatch.agent", "serve this host's metrics as Prometheus text (node_exporter names)"),
    ("eval", "surgewatch.evaluate", "score a detector on labelled CSVs by the NAB rules (NAB-format results)"),
    ("analyze", "surgewatch.frontends.analyze", "campaign correlation, load models, headroom and anomalies of a "
     "CSV or recording"),
    ("silence", "surgewatch.frontends.silencecmd", "add, list or remove alert silences (a running daemon picks "
     "them up within a second)"),
    ("annotate", "surgewatch.frontends.annotatecmd", "record a deploy annotation: anomalies starting soon after "
     "name it as the likely cause (a running daemon picks it up within a second)"),
    ("plan", "surgewatch.frontends.plancmd", "predict a campaign's peak load per host and the hosts it needs: exit "
     "0 fits, 1 tight, 2 saturates, 3 unknown"),
    ("replay", "surgewatch.tui.replaycmd", "play a recording through analysis and rules again"),
    ("export", "surgewatch.recording.exportcmd", "write a recording's samples as CSV or JSON"),
    ("report", "surgewatch.recording.report", "write a post-mortem HTML page from a recording"),
    ("serve", "surgewatch.tui.serve", "serve the dashboard to browsers (off loopback only with a token)"),
]


WALL_DEFAULT = 15.0


def terminal_columns() -> int:
    """The width help is wrapped to, as shutil.get_terminal_size gives it ($COLUMNS, else the terminal's, else
    80): asked here because argparse's formatter imports shutil for it, and shutil imports bz2 and lzma (their
    libraries are 0.3 MB of the daemon's RSS, issue 14), at every add_argument."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter with the width found without shutil (see terminal_columns)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=terminal_columns() - 2)  # argparse keeps two columns free, as here


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return v


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by the dashboard and the headless daemon."""
    p.add_argument("--config", "-c", metavar="FILE", help="config file (default: built-in demo + this host)")
    p.add_argument("--demo-speed", type=positive_float, default=1.0, metavar="N",
                   help="play the built-in demo N times faster (default 1)")
    p.add_argument("--record", metavar="FILE", help="record every sample and alert to FILE (SQLite; see `replay`)")
    p.add_argument("--low-bandwidth", action="store_true",
                   help="dashboard: redraw at most every 5 s, no animations, block charts (slow SSH links)")


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named in argv, skipping the values of top-level options that take one."""
    names = {name for name, _module, _help in COMMANDS}
    takes_value = {"--config", "-c", "--demo-speed", "--record", "--log-format"}
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in takes_value or (arg == "--wall" and _is_number(argv[i + 1] if i + 1 < len(argv) else "")):
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in names else None
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the chosen subcommand's module is imported (the others just list their help)."""
    parser = argparse.ArgumentParser(
        prog="surgewatch",
        description="Campaign traffic and server health on one terminal screen.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"surgewatch {__version__}")
    add_run_arguments(parser)
    parser.add_argument("--headless", action="store_true",
                        help="no UI: alert events as JSON lines on stdout, logs on stderr")
    parser.add_argument("--wall", type=positive_float, nargs="?", const=WALL_DEFAULT, default=None,
                        metavar="SECONDS", help="dashboard on a wall screen: the overview's focus moves to the next "
                        f"active campaign every SECONDS (default {WALL_DEFAULT:g}) and holds on a firing alert")
    parser.add_argument("--viewer", action="store_true", help=argparse.SUPPRESS)  # a `serve` viewer: no sinks
    parser.add_argument("--log-format", choices=("plain", "json"), default="plain",
                        help="stderr log format in --headless (default plain)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, help_text in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        if name == command:
            importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(chosen_command(argv))
    args = parser.parse_args(argv)
    module = getattr(args, "_module", None)
    if module is None and getattr(args, "record", None):
        from .defaults import set_record_path

        set_record_path(args.record)
    # Everything printed (errors, `check`, headless JSON lines, logs) passes through one filter that drops
    # terminal escape sequences and controls a remote server or file may have planted in it. The dashboard
    # draws on the terminal through Textual's own stream, which this does not touch.
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(sys.stdout), SafeStream(sys.stderr)
    try:
        if module is not None:
            return int(importlib.import_module(module).run(args))
        # The daemon and the dashboard: OpenSSL only once a source or sink speaks TLS (issue 14: the small end's
        # RSS), and no cyclic garbage collection until they are up (issue 16: the first frame).
        pause_gc()
        asyncio_without_ssl()
        if args.headless:
            from .frontends.headless import run_headless

            return run_headless(args)
        from .tui import run_dashboard

        return run_dashboard(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    finally:
        resume_gc()  # a frontend that returned early (a bad config) leaves nothing paused
        sys.stdout, sys.stderr = saved


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
