"""The command line's help wraps to the terminal as argparse's own formatter would, without importing shutil
(argparse's formatter imports it at every add_argument; shutil imports bz2 and lzma: issue 14, the small end)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from surgewatch.cli import build_parser, terminal_columns

ROOT = Path(__file__).resolve().parents[2]


def test_columns_come_from_the_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "57")
    assert terminal_columns() == 57


@pytest.mark.parametrize("value", ["0", "wide", "-3"])
def test_an_unusable_columns_falls_back_to_the_terminal_or_80(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("COLUMNS", value)
    try:
        expected = os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        expected = 80
    assert terminal_columns() == expected


@pytest.mark.parametrize("columns", [50, 100])
def test_help_wraps_to_the_columns(monkeypatch: pytest.MonkeyPatch, columns: int) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    lines = build_parser().format_help().splitlines()
    assert max(len(line) for line in lines) <= columns - 2
    assert max(len(line) for line in lines) > columns - 25  # it does use the width


def test_parsing_the_daemons_arguments_imports_no_shutil() -> None:
    code = ("import sys\nfrom surgewatch.cli import build_parser, chosen_command\n"
            "argv = ['--headless', '--config', 'x.toml']\n"
            "build_parser(chosen_command(argv)).parse_args(argv)\nprint('shutil' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False"]
