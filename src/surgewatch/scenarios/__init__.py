"""Shipped scenario recordings (built by `python -m surgewatch.recording.build_scenarios`), usable by name.

`surgewatch replay saturates --headless` plays the shipped file when no file of that name exists.
"""

from __future__ import annotations

import os
from pathlib import Path

SUFFIX = ".swrec"


def names() -> list[str]:
    """The shipped scenarios' names, sorted."""
    return sorted(p.stem for p in Path(__file__).parent.glob(f"*{SUFFIX}"))


def path(name: str) -> Path:
    """The file of a shipped scenario (KeyError naming the choices when there is none)."""
    p = Path(__file__).parent / f"{name}{SUFFIX}"
    if not p.is_file():
        raise KeyError(f"no scenario {name!r} (shipped: {', '.join(names())})")
    return p


def resolve(file: str) -> str:
    """`file` itself when it exists (or looks like a path), else the shipped scenario of that name."""
    if os.path.exists(file) or os.sep in file or file.endswith(SUFFIX):
        return file
    try:
        return str(path(file))
    except KeyError:
        return file
