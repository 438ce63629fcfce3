"""stderr logging for the daemon and one-shot commands: plain lines or JSON objects."""

from __future__ import annotations

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    """One JSON object per log record: ts, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(fmt: str = "plain", level: int = logging.INFO) -> None:
    """Send surgewatch's logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                               "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger("surgewatch")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
