"""The dashboard in a real terminal: tmux runs it, the test types keys and reads the screen (~15 s).

Uses a private tmux server socket so it never touches anyone's sessions; skipped when tmux is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

CONFIG = """
[monitor]
interval = "1s"
history = "1h"
state_dir = "{state}"

[[host]]
name = "demo-web"
source = "demo"

[[traffic]]
name = "demo-site"
source = "demo"

[[campaign]]
name = "demo-launch"
traffic = "demo-site"
hosts = ["demo-web"]
expected_lift = 4.0

[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 90
for = "5s"
"""


class Tmux:
    """One private tmux server with one 80x24 session."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        if check and out.returncode != 0:
            raise AssertionError(f"tmux {args[0]}: {out.stderr.strip()}")
        return out.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "t")

    def wait_for(self, *texts: str, timeout: float = 20.0) -> str:
        """The screen once every text is on it (a capture can land while a frame is half written)."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{texts!r} never all appeared; the screen was:\n{screen}")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "t", *keys)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(f"surgewatch-test-{os.getpid()}-{time.monotonic_ns()}")
    yield t
    t.run("kill-server", check=False)


def start(tmux: Tmux, tmp_path: Path, tail: str = "", args: str = "") -> None:
    cfg = tmp_path / "sw.toml"
    cfg.write_text(CONFIG.format(state=tmp_path / "state"))
    env = f"TERM=xterm-256color LANG=C.UTF-8 TZ=UTC PYTHONPATH={Path(__file__).parents[2] / 'src'}"
    cmd = f"exec env {env} {sys.executable} -m surgewatch -c {cfg} {args}" if not tail else \
        f"env {env} {sys.executable} -m surgewatch -c {cfg} {args}; {tail}"
    tmux.run("new-session", "-d", "-s", "t", "-x", "80", "-y", "24", cmd)


def test_keys_typed_in_a_real_terminal_switch_screens_and_q_quits(tmux: Tmux, tmp_path: Path) -> None:
    start(tmux, tmp_path, tail="echo EXITED $?; sleep 30")
    screen = tmux.wait_for("demo-web", "CAMPAIGN", "HOST", "sources")
    assert "CAMPAIGN" in screen and "HOST" in screen and "sources" in screen
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    tmux.keys("3")
    tmux.wait_for("memory")
    tmux.keys("4")
    tmux.wait_for("HISTORY")
    tmux.keys("5")
    tmux.wait_for("LAST ERROR")
    tmux.keys("?")
    tmux.wait_for("surgewatch keys")
    tmux.keys("Escape")  # alone: a key right behind it would read as alt+key
    tmux.wait_for("LAST ERROR")
    tmux.keys("1")
    tmux.wait_for("ALERTS")
    tmux.keys("p")
    tmux.wait_for("PAUSED")
    tmux.keys("q")
    assert "EXITED 0" in tmux.wait_for("EXITED")


def test_the_dashboard_exits_within_seconds_when_its_terminal_goes_away(tmux: Tmux, tmp_path: Path) -> None:
    start(tmux, tmp_path)
    tmux.wait_for("demo-web")
    pid = int(tmux.run("display", "-p", "-t", "t", "#{pane_pid}").strip())
    tmux.run("kill-server", check=False)  # the pty closes and the process gets SIGHUP
    deadline = time.monotonic() + 8.0
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, 9)
    raise AssertionError("the dashboard kept running after its terminal closed")


def test_the_dashboard_records_its_session_with_record_backfill_included(tmux: Tmux, tmp_path: Path) -> None:
    from surgewatch.recording.format import BACKFILL, LIVE
    from surgewatch.recording.reader import Recording

    path = tmp_path / "dash.swrec"
    start(tmux, tmp_path, tail="echo EXITED $?; sleep 30", args=f"--record {path}")
    tmux.wait_for("demo-web", "CAMPAIGN")
    time.sleep(2.5)  # a few live ticks at the 1 s interval
    tmux.keys("q")
    assert "EXITED 0" in tmux.wait_for("EXITED")
    with Recording(str(path)) as rec:
        assert len(rec.timestamps(kind=LIVE)) >= 2
        assert len(rec.timestamps(kind=BACKFILL)) > 0  # attached before the demo's history was backfilled
        assert "host:demo-web/cpu.percent" in rec.series_names.values()
