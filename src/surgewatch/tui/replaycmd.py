"""`surgewatch replay FILE`: recording/replaycmd.py plays the recording; this, the UI layer, adds the dashboard
it plays on without --headless (nothing below the UI imports Textual, and `--headless` never loads it)."""

from __future__ import annotations

import argparse

from ..recording.replaycmd import add_arguments

__all__ = ["add_arguments", "run"]


def run(args: argparse.Namespace) -> int:
    from ..recording.replaycmd import run as run_replay

    if args.headless:
        return run_replay(args)
    from .replay import run_replay_dashboard

    return run_replay(args, dashboard=run_replay_dashboard)
