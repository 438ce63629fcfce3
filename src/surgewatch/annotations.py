"""Deploy annotations, kept in `annotations.sqlite3` in the state dir (mode 0600) so they survive restarts.

`surgewatch annotate`, `POST /annotations` on the export listener and a running engine share the file:
SQLite serialises concurrent writers (each add is one short transaction with a busy timeout), and the
engine notices new rows by polling the file's size and mtime (at most once per `poll_every` seconds).
A file that is not a readable annotation database is moved aside with one warning line and a new one
started: annotations are helpful context, never worth stopping the monitor for.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .model import Annotation
from .units import parse_duration

log = logging.getLogger("surgewatch.annotations")

DB_NAME = "annotations.sqlite3"
DEFAULT_DURATION = 900.0  # an anomaly starting within 15 minutes of a deploy names it
MAX_DURATION = 7 * 86400.0
MAX_TEXT = 500
MAX_BODY = 16 * 1024  # bytes of a POST /annotations body
KEEP = 30 * 86400.0  # annotations stored longer ago than this are dropped on the next add
LOAD_SPAN = 8 * 86400.0  # what an engine loads: annotations whose window may still hold a new anomaly
BUSY_MS = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS annotations (
    id       INTEGER PRIMARY KEY,
    ts       REAL NOT NULL,
    text     TEXT NOT NULL,
    host     TEXT,
    duration REAL NOT NULL,
    origin   TEXT NOT NULL DEFAULT '',
    created  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS annotations_ts ON annotations (ts);
"""


class AnnotationError(Exception):
    """An annotation cannot be stored, or a request to store one is malformed (one line, no traceback)."""


@dataclass(frozen=True, slots=True)
class NewAnnotation:
    """A validated annotation, not stored yet."""

    text: str
    host: str | None
    duration: float
    ts: float


def validate(text: Any, host: Any = None, duration: Any = None, ts: Any = None,
             now: float | None = None) -> NewAnnotation:
    """Check the fields of an annotation (from the command line or a JSON body); raise AnnotationError."""
    if not isinstance(text, str) or not text.strip():
        raise AnnotationError("text is required (a non-empty string such as \"deploy v2.3\")")
    text = " ".join(text.split())
    if len(text) > MAX_TEXT:
        raise AnnotationError(f"text is {len(text)} characters; at most {MAX_TEXT}")
    if host is not None and not _host_name(host):
        raise AnnotationError(f"host must be a host name (no spaces, : or /), got {json.dumps(host)}")
    if duration is None:
        seconds = DEFAULT_DURATION
    elif isinstance(duration, str):
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            raise AnnotationError(f"duration {exc}") from None
    elif isinstance(duration, int | float) and not isinstance(duration, bool):
        seconds = float(duration)
    else:
        raise AnnotationError(f'duration must be a duration like "15m" or seconds, got {json.dumps(duration)}')
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_DURATION):
        raise AnnotationError(f"duration must be more than 0 and at most 7d, got {json.dumps(duration)}")
    at = (time.time() if now is None else now) if ts is None else _parse_time(ts)
    return NewAnnotation(text, host, seconds, at)


def _host_name(host: Any) -> bool:
    return isinstance(host, str) and bool(host) and not any(c in ":/" or c.isspace() for c in host)


def _parse_time(ts: Any) -> float:
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        if math.isfinite(ts) and ts > 0:
            return float(ts)
    elif isinstance(ts, str):
        try:
            dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if dt.tzinfo is not None:
                return dt.timestamp()
    raise AnnotationError(f"time must be RFC 3339 with a zone (2026-03-01T09:40:00Z) or UNIX seconds, "
                          f"got {json.dumps(ts)}")


def parse_request(body: bytes) -> NewAnnotation:
    """Validate a `POST /annotations` JSON body: {"text", "host"?, "duration"?, "time"?}."""
    if len(body) > MAX_BODY:
        raise AnnotationError(f"body is {len(body)} bytes; at most {MAX_BODY}")
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AnnotationError(f"body is not JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise AnnotationError("body must be a JSON object such as {\"text\": \"deploy v2.3\", \"host\": \"web-2\"}")
    unknown = sorted(set(doc) - {"text", "host", "duration", "time"})
    if unknown:
        raise AnnotationError(f"unknown key {unknown[0]!r} (expected text, host, duration, time)")
    return validate(doc.get("text"), doc.get("host"), doc.get("duration"), doc.get("time"))


def _empty() -> sqlite3.Connection:
    """An empty annotation table in memory (what a missing or just-moved-aside file reads as)."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(_SCHEMA)
    return db


class _Corrupt(Exception):
    def __init__(self, exc: Exception) -> None:
        super().__init__(str(exc))
        self.exc = exc


class AnnotationStore:
    """The annotations of one state dir: add from any process or thread, and an engine's cached view."""

    def __init__(self, state_dir: Path, clock: Callable[[], float] = time.time, poll_every: float = 1.0) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / DB_NAME
        self.clock = clock
        self.poll_every = poll_every
        self.version = 0  # bumps whenever the cached view changes
        self._items: tuple[Annotation, ...] = ()
        self._stamp: tuple[int, int] | None = None
        self._last_poll = float("-inf")
        self._failed: str | None = None

    # -- reading (the engine) ------------------------------------------------------------------

    def items(self) -> tuple[Annotation, ...]:
        """The annotations loaded by the last refresh, oldest first."""
        return self._items

    def refresh(self, force: bool = False) -> bool:
        """Re-read the file if it changed (throttled); True if the view changed. Never raises: a problem
        is logged once per distinct message and the last view kept."""
        now = self.clock()
        if not force and now - self._last_poll < self.poll_every:
            return False
        self._last_poll = now
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        try:
            items = self.read(since=now - LOAD_SPAN) if stamp is not None else ()
        except AnnotationError as exc:
            if str(exc) != self._failed:
                log.warning("%s", exc)
            self._failed = str(exc)
            return False
        self._failed = None
        self._stamp = self._file_stamp()
        if items == self._items:
            return False
        self._items = items
        self.version += 1
        return True

    def read(self, since: float | None = None, until: float | None = None) -> tuple[Annotation, ...]:
        """Annotations whose window overlaps [since, until], oldest first (all when both are None)."""
        if not self.path.exists():
            return ()
        lo = -math.inf if since is None else since - MAX_DURATION
        hi = math.inf if until is None else until
        with self._connect() as db:
            rows = db.execute("SELECT id, ts, text, host, duration, origin FROM annotations "
                              "WHERE ts >= ? AND ts <= ? ORDER BY ts, id", (lo, hi)).fetchall()
        out = [Annotation(int(i), float(t), str(x), h, float(d), str(o)) for i, t, x, h, d, o in rows]
        return tuple(a for a in out if since is None or a.end >= since)

    # -- writing (CLI, HTTP) ---------------------------------------------------------------------

    def add(self, new: NewAnnotation, origin: str) -> Annotation:
        """Store an annotation (one transaction) and return it with its id."""
        now = self.clock()
        with self._connect(create=True) as db:
            try:
                db.execute("BEGIN IMMEDIATE")
                cur = db.execute("INSERT INTO annotations(ts, text, host, duration, origin, created) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", (new.ts, new.text, new.host, new.duration, origin, now))
                db.execute("DELETE FROM annotations WHERE created < ?", (now - KEEP,))
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise AnnotationError(f"{self.path}: cannot write: {exc}") from None
        return Annotation(int(cur.lastrowid or 0), new.ts, new.text, new.host, new.duration, origin)

    # -- the file ---------------------------------------------------------------------------------

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    @contextlib.contextmanager
    def _connect(self, create: bool = False) -> Iterator[sqlite3.Connection]:
        """A short-lived connection to a checked file; a corrupt file is moved aside (once) first."""
        try:
            db = self._open(create)
        except _Corrupt as bad:
            self._move_aside(bad.exc)
            try:
                db = self._open(create) if create else _empty()
            except _Corrupt as again:
                raise AnnotationError(f"{self.path}: cannot use: {again.exc}") from None
        try:
            yield db
        finally:
            db.close()

    def _open(self, create: bool) -> sqlite3.Connection:
        if create:
            self._ensure_file()
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_MS / 1000)
        except sqlite3.Error as exc:
            raise AnnotationError(f"{self.path}: cannot open: {exc}") from None
        try:
            if create:
                db.executescript(_SCHEMA)
            db.execute("SELECT id, ts, text, host, duration, origin FROM annotations LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            db.close()
            msg = str(exc)
            if any(w in msg for w in ("locked", "busy", "readonly", "unable to open", "disk I/O")):
                raise AnnotationError(f"{self.path}: cannot use: {exc}") from None
            if not create and msg.startswith("no such table") and self._is_empty():
                return _empty()
            raise _Corrupt(exc) from None
        return db

    def _is_empty(self) -> bool:
        try:
            return self.path.stat().st_size == 0
        except OSError:
            return True

    def _ensure_file(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self.path.exists():
                return
            # O_EXCL: an existing file is never opened here. Closing any descriptor of a file drops every
            # POSIX lock this process holds on it, so opening and closing the database while another thread
            # is inside a transaction let a second process write at the same time ("disk I/O error").
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)  # the journal takes this mode
            os.close(fd)
        except FileExistsError:
            return
        except OSError as exc:
            raise AnnotationError(f"state dir {self.dir}: cannot write annotations: {exc.strerror or exc}") from None

    def _move_aside(self, exc: Exception) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.clock()))
        aside = self.path.with_name(f"{DB_NAME}.corrupt-{stamp}")
        try:
            os.replace(self.path, aside)
        except OSError as err:
            raise AnnotationError(f"{self.path}: not an annotation file ({exc}) and cannot be moved aside: "
                                  f"{err.strerror or err}") from None
        log.warning("%s: not an annotation file (%s); moved aside to %s, starting a new one", self.path, exc,
                    aside.name)
