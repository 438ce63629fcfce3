"""Key input from a terminal: esc reported as soon as the terminal allows, split sequences still one key.

A terminal sends the esc key as a lone ESC byte, and arrows, function keys and alt+letter as sequences that
start with ESC; a program tells them apart by waiting a moment for more bytes (ncurses' ESCDELAY, vim's
ttimeoutlen). Textual waits ESCDELAY (100 ms by default) and its input thread only looks again when its
0.1 s `select` times out, so a lone esc reached the dashboard 100-200 ms after the press. Here:

- the input thread wakes when the wait ends (`read_keys`), not up to 0.1 s later;
- the wait is shorter by default (`surgewatch.tui.escape_delay_ms`) where keys arrive whole: inside tmux or
  screen, which read keys from the outer terminal themselves (tmux's escape-time) and write each one at once;
  elsewhere 50 ms (neovim's ttimeoutlen), enough for a sequence cut in two on its way. A user's ESCDELAY
  (milliseconds, as for ncurses) is kept;
- a terminal speaking the kitty keyboard protocol (Textual asks for it) sends esc as a whole sequence
  (CSI 27 u): no wait at all.

Bytes that arrive within the wait still join the sequence: a split arrow key is one `up`, not esc then `[A`.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import threading
import time
from collections.abc import Callable

from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

ESC = "\x1b"
IDLE_WAIT = 0.1  # seconds the input thread sleeps in select without pending input (as Textual's does)
SEQUENCE_TAIL = 32  # characters at the end of a read that may hold an unfinished escape sequence


def read_keys(fd: int, stop: threading.Event, deliver: Callable[[Message], None], delay: float) -> None:
    """Read the terminal on `fd` until `stop` is set, handing every key, mouse and terminal event to `deliver`.
    `delay`: the seconds the parser waits after ESC (it reads Textual's ESCDELAY); the loop wakes right then."""
    parser = XTermParser()
    decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
    deadline: float | None = None  # when the parser's wait for the rest of a sequence ends
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not stop.is_set():
            wait = IDLE_WAIT if deadline is None else max(0.0, deadline - time.monotonic())
            if selector.select(wait):
                try:
                    data = os.read(fd, 4096)
                except OSError:  # the terminal went away (the app's tty watch ends the dashboard)
                    break
                if not data:
                    break
                text = decode(data)
                for event in parser.feed(text):
                    deliver(event)
                # a little after the parser's own deadline (set while feeding), so that its tick sees it passed
                deadline = time.monotonic() + delay + 0.001 if ESC in text[-SEQUENCE_TAIL:] else None
            for event in parser.tick():
                deliver(event)
            if deadline is not None and time.monotonic() >= deadline:
                deadline = None
    with contextlib.suppress(ParseError):
        for event in parser.feed(""):  # the end: what is left (a lone ESC) is reported
            deliver(event)


class PromptEscDriver(LinuxDriver):
    """Textual's Linux driver with `read_keys` as its input thread."""

    def run_input_thread(self) -> None:
        from textual import constants

        read_keys(self.fileno, self.exit_event, self.process_message, constants.ESCAPE_DELAY)
