"""stderr logging for the daemon and one-shot commands: plain lines or JSON objects."""

from __future__ import annotations

import json
import logging
import sys
import time

from .textsafe import strip_controls


class JsonFormatter(logging.Formatter):
    """One JSON object per log record: ts, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": strip_controls(record.getMessage()),
        }
        return json.dumps(doc, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """One plain line per record, the message made inert (remote text may carry terminal escape sequences)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return strip_controls(super().formatMessage(record))


def setup_logging(fmt: str = "plain", level: int = logging.INFO) -> None:
    """Send surgewatch's logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                               "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger("surgewatch")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
