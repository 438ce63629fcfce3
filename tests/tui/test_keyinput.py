"""Key input through a real pty: esc alone, sequences whole and cut in two (a slow link), alt+letter, kitty's esc."""

from __future__ import annotations

import os
import pty
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual import events
from textual.message import Message

from surgewatch.tui import MUX_DELAY_MS, TERMINAL_DELAY_MS, escape_delay_ms
from surgewatch.tui.keyinput import read_keys

DELAY = 0.2  # the parser's wait after ESC in these tests: a split well inside it must still join


class Keys:
    """`read_keys` on the slave side of a pty, fed by writing to the master side."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)  # as a dashboard's terminal is: bytes as they come, no line editing
        self.stop = threading.Event()
        self.events: list[Message] = []
        self.thread = threading.Thread(target=read_keys, args=(self.slave, self.stop, self.events.append, DELAY))
        self.thread.start()

    def send(self, *parts: str, gap: float = 0.0) -> None:
        for i, part in enumerate(parts):
            if i:
                time.sleep(gap)
            os.write(self.master, part.encode())

    def keys(self, count: int, timeout: float = 5.0) -> list[str]:
        """The names of the first `count` keys read (waits for them)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            got = [e.key for e in self.events if isinstance(e, events.Key)]
            if len(got) >= count:
                return got
            time.sleep(0.005)
        return [e.key for e in self.events if isinstance(e, events.Key)]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def keys() -> Iterator[Keys]:
    k = Keys()
    yield k
    k.close()


def test_a_lone_esc_is_the_escape_key(keys: Keys) -> None:
    keys.send("\x1b")
    assert keys.keys(1) == ["escape"]
    keys.send("j")
    assert keys.keys(2) == ["escape", "j"]


def test_an_arrow_cut_in_two_on_a_slow_link_is_still_one_key(keys: Keys) -> None:
    keys.send("\x1b", "[A", gap=DELAY / 4)
    keys.send("\x1b[", "B", gap=DELAY / 4)
    keys.send("\x1b[B")
    assert keys.keys(3) == ["up", "down", "down"]
    time.sleep(DELAY * 1.5)  # nothing left over that a timeout would turn into an esc
    assert keys.keys(3) == ["up", "down", "down"]


def test_alt_letter_and_the_kitty_protocols_esc(keys: Keys) -> None:
    keys.send("\x1b", "x", gap=DELAY / 4)
    assert keys.keys(1) == ["alt+x"]  # once the wait is over (a key pressed at once after it is not)
    keys.send("\x1b[27u")  # esc under the kitty keyboard protocol: a whole sequence, no wait
    assert keys.keys(2) == ["alt+x", "escape"]


def test_an_esc_then_a_key_after_the_wait_are_two_keys(keys: Keys) -> None:
    keys.send("\x1b", "[", gap=DELAY * 2)
    assert keys.keys(2) == ["escape", "left_square_bracket"]


def test_the_wait_is_the_users_escdelay_else_shorter_inside_a_multiplexer() -> None:
    assert escape_delay_ms({"ESCDELAY": "300", "TMUX": "/tmp/x"}) == 300
    assert escape_delay_ms({"ESCDELAY": "soon", "TERM": "tmux-256color"}) == MUX_DELAY_MS
    assert escape_delay_ms({"STY": "1.pts", "TERM": "xterm"}) == MUX_DELAY_MS
    assert escape_delay_ms({"TERM": "xterm-256color"}) == TERMINAL_DELAY_MS


def test_the_dashboard_reads_a_terminal_through_read_keys(tmp_path: Path) -> None:
    from surgewatch.tui.keyinput import PromptEscDriver
    from tests.support.tui_demo import demo_engine, make_app

    app = make_app(demo_engine(tmp_path))
    assert app.driver_class is PromptEscDriver
