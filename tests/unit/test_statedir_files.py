"""statedir.py's own unique files (the writability probe, atomic writes) instead of tempfile's: the same files
and errors, without importing tempfile, shutil, bz2 and lzma into the daemon (issue 14, the small end)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from surgewatch.statedir import StateDirError, ensure_state_dir, write_atomic

ROOT = Path(__file__).resolve().parents[2]


def test_the_probe_leaves_nothing_behind(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert ensure_state_dir(state) == state
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert list(state.iterdir()) == []


def test_a_directory_nothing_can_be_created_in_is_one_line() -> None:
    with pytest.raises(StateDirError) as err:
        ensure_state_dir(Path("/proc/self"))  # a directory even root cannot create files in
    assert str(err.value).startswith("state dir /proc/self: not writable: ") and "\n" not in str(err.value)


def test_write_atomic_replaces_the_file_with_its_mode_and_no_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "models.json"
    target.write_text("old")
    write_atomic(target, "new", mode=0o640)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    write_atomic(target, "newer")
    assert target.read_text() == "newer" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "models.json"
    target.write_text("old")
    os.mkdir(tmp_path / "in-the-way")
    with pytest.raises(OSError):
        write_atomic(tmp_path / "in-the-way", "x")  # the rename onto a directory fails
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in-the-way", "models.json"]


def test_neither_imports_tempfile(tmp_path: Path) -> None:
    code = ("import sys\nfrom pathlib import Path\nfrom surgewatch.statedir import ensure_state_dir, write_atomic\n"
            "d = ensure_state_dir(Path(sys.argv[1]))\nwrite_atomic(d / 'f', 'x')\n"
            "print(sorted(m for m in ('tempfile', 'shutil', 'bz2', 'lzma') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s")], capture_output=True, text=True,
                         timeout=60, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
