"""Text from outside made inert before it reaches a terminal or a log: escape sequences and control characters go.

A remote reason phrase, error body or label can carry `ESC]0;title BEL` (retitles the terminal), `ESC[2J`
(clears it) or a bare CR that overwrites the line; every path that prints such text (logs, `check`, headless
output, CLI error lines, the dashboard) passes it through `strip_controls`. Tab and newline are kept where meant.
"""

from __future__ import annotations

import re
from typing import IO, Any

# ESC sequences first (CSI, OSC, DCS/SOS/PM/APC strings, two-character escapes), their 8-bit C1 forms, then the
# remaining C0 controls (but tab and newline), DEL, C1 controls, and Unicode bidi overrides that reorder text.
_SEQUENCE = (r"\x1b\[[0-?]*[ -/]*[@-~]?|\x9b[0-?]*[ -/]*[@-~]?"
             r"|[\x1b][\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|[\x9d\x90\x98\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
             r"|\x1b[ -/]*[0-~]?")
_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_CONTROL_RE = re.compile(f"{_SEQUENCE}|[{_CONTROLS}\r]")
_STREAM_RE = re.compile(f"{_SEQUENCE}|[{_CONTROLS}]|\r(?!\n)")


def strip_controls(text: object) -> str:
    """`text` without escape sequences and control characters (tab and newline kept)."""
    return _CONTROL_RE.sub("", str(text))


def one_line(text: object) -> str:
    """`text` made inert and folded onto one line (runs of whitespace become one space)."""
    return " ".join(strip_controls(text).split())


class SafeStream:
    """A text stream wrapper that strips escape sequences and controls from everything written through it.

    CR is kept only before LF (CSV line ends); everything else (buffer, fileno, isatty, flush) is the wrapped
    stream's own, so binary writers and `print(..., flush=True)` work unchanged.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(_STREAM_RE.sub("", text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    @property
    def wrapped(self) -> IO[str]:
        return self._stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
