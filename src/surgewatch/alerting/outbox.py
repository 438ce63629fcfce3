"""A durable outbox: one SQLite row per (sink, alert event) until that sink has accepted it.

Durability choice: WAL journal with `synchronous=FULL`. In WAL mode FULL fsyncs the log on every
commit, so an event is on disk when `add()` returns and survives kill -9 *and* power loss; NORMAL
would survive kill -9 but could lose the last commits on power loss, i.e. lose alerts. The cost is
one fsync per commit, and we commit once per tick (a batch insert) and once per delivered batch,
so it stays in the low milliseconds (see benchmarks/outbox_bench.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model import AlertEvent, Cause, Severity

DB_NAME = "outbox.sqlite3"
SCHEMA_VERSION = 1

# DEAD: a dead letter, an event a sink refused for good (kept, with the reason, for `keep_dead`).
PENDING, DELIVERED, EXPIRED, DEAD = 0, 1, 2, 3

# How long a writer waits for a lock held by another process (an operator's sqlite3 shell): short, because
# outbox calls run in the event loop, and the dispatcher backs off and retries anyway.
BUSY_TIMEOUT_MS = 250

# SQLite result codes of a file that is not (or no longer) a usable database: moved aside at start.
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26

log = logging.getLogger("surgewatch.alerting")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id        INTEGER PRIMARY KEY,
    sink      TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    payload   TEXT    NOT NULL,
    created   REAL    NOT NULL,
    state     INTEGER NOT NULL DEFAULT 0,
    attempts  INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    done_at   REAL,
    UNIQUE (sink, key)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sink, id) WHERE state = 0;
CREATE INDEX IF NOT EXISTS outbox_done ON outbox (done_at) WHERE state != 0;
CREATE TABLE IF NOT EXISTS active (
    sink        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    payload     TEXT NOT NULL,
    PRIMARY KEY (sink, fingerprint)
);
"""


class OutboxError(Exception):
    """The outbox database cannot be used (one line naming the file)."""


class _Corrupt(Exception):
    """The outbox file is not a usable SQLite database (moved aside at start)."""


def event_key(e: AlertEvent) -> str:
    """The stable key of one notification: the same event always gets the same key, across restarts."""
    return f"{e.fingerprint}:{e.event}:{round(e.started * 1000)}:{round(e.ts * 1000)}"


def event_to_payload(e: AlertEvent) -> str:
    """Serialise every field of an event (lossless, unlike the public to_json())."""
    return json.dumps({
        "ts": e.ts, "event": e.event, "rule": e.rule, "severity": int(e.severity), "series": e.series,
        "value": e.value, "expected": e.expected, "summary": e.summary, "explanation": e.explanation,
        "fingerprint": e.fingerprint, "started": e.started, "cause": e.cause.value if e.cause else None,
        "campaign": e.campaign, "demo": e.demo, "labels": dict(e.labels), "group": list(e.group),
    }, ensure_ascii=True, separators=(",", ":"))  # ASCII: a lone surrogate from a remote label round-trips


def event_from_payload(text: str) -> AlertEvent:
    """Rebuild an event stored by event_to_payload()."""
    d: dict[str, Any] = json.loads(text)
    return AlertEvent(
        ts=float(d["ts"]), event=str(d["event"]), rule=str(d["rule"]), severity=Severity(int(d["severity"])),
        series=str(d["series"]), value=d.get("value"), expected=d.get("expected"),
        summary=str(d.get("summary", "")), explanation=str(d.get("explanation", "")),
        fingerprint=str(d["fingerprint"]), started=float(d["started"]),
        cause=Cause(d["cause"]) if d.get("cause") else None, campaign=d.get("campaign"),
        demo=bool(d.get("demo", False)), labels={str(k): str(v) for k, v in (d.get("labels") or {}).items()},
        group=tuple(str(x) for x in d.get("group") or ()),
    )


@dataclass(frozen=True, slots=True)
class Entry:
    """One undelivered notification for one sink."""

    id: int
    key: str
    event: AlertEvent
    attempts: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A notification a sink refused for good: kept in the outbox with the reason, never retried."""

    sink: str
    key: str
    event: AlertEvent | None  # None if the stored payload itself is unreadable
    attempts: int
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class SinkBacklog:
    """What is waiting for one sink: how many, since when, and the last error."""

    sink: str
    pending: int
    oldest: float | None
    last_error: str | None


class Outbox:
    """The SQLite outbox in a state directory; one process owns it at a time (an flock)."""

    def __init__(self, state_dir: Path | None, clock: Any = time.time) -> None:
        """Open (or create) the outbox in `state_dir`; None keeps it in memory, unlocked — for a process
        with no sink to deliver to (a second dashboard must not need the daemon's state dir)."""
        self.path: Path | str = Path(state_dir) / DB_NAME if state_dir is not None else ":memory:"
        self.clock = clock
        self._lock_fd = self._take_lock(Path(state_dir) / (DB_NAME + ".lock")) if state_dir is not None else -1
        try:
            try:
                self.db = self._open()
            except _Corrupt as exc:
                self._move_aside(exc)
                self.db = self._open()
        except _Corrupt as exc:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
            raise OutboxError(f"outbox {self.path}: cannot use database: {exc}") from None
        except BaseException:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
            raise

    # -- setup -------------------------------------------------------------------------------

    def _take_lock(self, lock_path: Path) -> int:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise OutboxError(f"outbox {lock_path}: cannot open: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OutboxError(f"outbox {self.path}: in use by another surgewatch process "
                              f"(set a different [monitor] state_dir for this one)") from None
        return fd

    def _open(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = None
        try:
            fresh = isinstance(self.path, Path) and not self.path.exists()
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            if fresh:
                with contextlib.suppress(OSError):
                    os.chmod(self.path, 0o600)  # alert texts may be sensitive; WAL files inherit this mode
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise OutboxError(f"outbox {self.path}: written by a newer surgewatch (schema {version})")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("SELECT count(*) FROM outbox").fetchone()
            if db.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok":
                raise _Corrupt("database disk image is malformed")
        except sqlite3.DatabaseError as exc:
            if db is not None:
                db.close()
            if getattr(exc, "sqlite_errorcode", None) in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
                raise _Corrupt(str(exc)) from None
            raise OutboxError(f"outbox {self.path}: cannot use database: {exc}") from None
        except BaseException:
            if db is not None:
                db.close()
            raise
        return db

    def _move_aside(self, why: _Corrupt) -> None:
        """Rename a corrupt outbox (and its WAL files) to *.corrupt-<UTC time> so a fresh one can start."""
        assert isinstance(self.path, Path)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            for suffix in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    side.rename(target.with_name(target.name + suffix))
            self.path.rename(target)
        except OSError as exc:
            raise OutboxError(f"outbox {self.path}: corrupt ({why}) and cannot be moved aside: "
                              f"{exc.strerror or exc}") from None
        log.warning("outbox %s was corrupt (%s): moved aside to %s; starting with an empty outbox",
                    self.path, why, target.name)

    def close(self) -> None:
        """Checkpoint, close the database and release the lock."""
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()
        if self._lock_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)

    # -- writing -----------------------------------------------------------------------------

    def add(self, rows: Iterable[tuple[str, AlertEvent]]) -> int:
        """Store (sink, event) pairs in one durable transaction; return how many were new."""
        now = self.clock()
        encoded: dict[int, tuple[str, str]] = {}  # each event is serialised once, however many sinks get it
        data = []
        for sink, e in rows:
            kp = encoded.get(id(e))
            if kp is None:
                kp = encoded[id(e)] = (event_key(e), event_to_payload(e))
            data.append((sink, kp[0], kp[1], now))
        if not data:
            return 0
        with self._tx():
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO outbox (sink, key, payload, created) VALUES (?, ?, ?, ?)", data)
            return self.db.total_changes - before

    def pending(self, sink: str, limit: int = 100) -> list[Entry]:
        """The oldest undelivered notifications of one sink, in the order they were added."""
        cur = self.db.execute(
            "SELECT id, key, payload, attempts FROM outbox WHERE sink = ? AND state = 0 ORDER BY id LIMIT ?",
            (sink, limit))
        out: list[Entry] = []
        bad: list[int] = []
        for rid, key, payload, attempts in cur.fetchall():
            try:
                out.append(Entry(rid, key, event_from_payload(payload), attempts))
            except (ValueError, KeyError, TypeError):
                bad.append(rid)  # a row we cannot read must not block the queue forever
        if bad:
            self._finish(bad, EXPIRED, "unreadable payload")
        return out

    def mark_delivered(self, ids: Sequence[int]) -> None:
        """Record that the sink accepted these notifications."""
        self._finish(ids, DELIVERED, None)

    def mark_dead(self, ids: Sequence[int], reason: str) -> None:
        """Park these notifications as dead letters after one more refused attempt (kept with the reason)."""
        if not ids:
            return
        now = self.clock()
        with self._tx():
            self.db.executemany(
                "UPDATE outbox SET state = 3, done_at = ?, attempts = attempts + 1, last_error = ? WHERE id = ?",
                [(now, reason[:500], i) for i in ids])

    def mark_failed(self, ids: Sequence[int], error: str) -> None:
        """Record one more failed attempt for these notifications."""
        if not ids:
            return
        with self._tx():
            self.db.executemany("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                                [(error[:500], i) for i in ids])

    def _finish(self, ids: Sequence[int], state: int, error: str | None) -> None:
        if not ids:
            return
        now = self.clock()
        with self._tx():
            self.db.executemany(
                "UPDATE outbox SET state = ?, done_at = ?, last_error = coalesce(?, last_error) WHERE id = ?",
                [(state, now, error, i) for i in ids])

    def expire(self, max_age: float) -> int:
        """Give up on notifications older than max_age seconds; return how many."""
        now = self.clock()
        with self._tx():
            cur = self.db.execute("UPDATE outbox SET state = 2, done_at = ? WHERE state = 0 AND created < ?",
                                  (now, now - max_age))
            return cur.rowcount

    def prune(self, keep: float, keep_dead: float | None = None) -> int:
        """Delete delivered or expired rows finished more than `keep` seconds ago, dead letters after
        `keep_dead` (default: `keep`); return how many."""
        now = self.clock()
        with self._tx():
            cur = self.db.execute(
                "DELETE FROM outbox WHERE (state IN (1, 2) AND done_at < ?) OR (state = 3 AND done_at < ?)",
                (now - keep, now - (keep if keep_dead is None else keep_dead)))
            return cur.rowcount

    # -- alerts a sink must keep re-sending (Alertmanager) -----------------------------------

    def set_active(self, sink: str, fire: Sequence[AlertEvent], resolve: Sequence[str]) -> None:
        """Remember firing alerts of a sink and forget resolved ones (by fingerprint)."""
        if not fire and not resolve:
            return
        with self._tx():
            self.db.executemany("DELETE FROM active WHERE sink = ? AND fingerprint = ?",
                                [(sink, fp) for fp in resolve])
            self.db.executemany("INSERT OR REPLACE INTO active (sink, fingerprint, payload) VALUES (?, ?, ?)",
                                [(sink, e.fingerprint, event_to_payload(e)) for e in fire])

    def active(self, sink: str) -> list[AlertEvent]:
        """The alerts a sink last saw firing."""
        rows = self.db.execute("SELECT payload FROM active WHERE sink = ? ORDER BY rowid", (sink,)).fetchall()
        out = []
        for (payload,) in rows:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                out.append(event_from_payload(payload))
        return out

    # -- reading for status and metrics -------------------------------------------------------

    def backlog(self) -> list[SinkBacklog]:
        """Undelivered notifications per sink."""
        rows = self.db.execute(
            "SELECT sink, count(*), min(created), "
            " (SELECT last_error FROM outbox o2 WHERE o2.sink = o.sink AND o2.state = 0 ORDER BY id LIMIT 1) "
            "FROM outbox o WHERE state = 0 GROUP BY sink ORDER BY sink").fetchall()
        return [SinkBacklog(s, n, oldest, err) for s, n, oldest, err in rows]

    def dead_letters(self, sink: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters (of one sink, or all), newest first, with why each was given up."""
        sql = "SELECT sink, key, payload, attempts, coalesce(last_error, ''), done_at FROM outbox WHERE state = 3"
        args: list[object] = []
        if sink is not None:
            sql, args = sql + " AND sink = ?", [sink]
        rows = self.db.execute(sql + " ORDER BY done_at DESC, id DESC LIMIT ?", [*args, limit]).fetchall()
        out = []
        for s, key, payload, attempts, reason, at in rows:
            try:
                event: AlertEvent | None = event_from_payload(payload)
            except (ValueError, KeyError, TypeError):
                event = None
            out.append(DeadLetter(s, key, event, attempts, reason, at or 0.0))
        return out

    def dead_counts(self) -> dict[str, int]:
        """How many dead letters each sink has."""
        rows = self.db.execute("SELECT sink, count(*) FROM outbox WHERE state = 3 GROUP BY sink").fetchall()
        return {s: int(n) for s, n in rows}

    def count(self, sink: str | None = None, state: int | None = None) -> int:
        """How many rows (optionally of one sink and/or one state) are stored."""
        sql, args = "SELECT count(*) FROM outbox WHERE 1=1", list[object]()
        if sink is not None:
            sql, args = sql + " AND sink = ?", [*args, sink]
        if state is not None:
            sql, args = sql + " AND state = ?", [*args, state]
        return int(self.db.execute(sql, args).fetchone()[0])

    @contextlib.contextmanager
    def _tx(self) -> Any:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox {self.path}: {exc}") from None
        try:
            yield
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise OutboxError(f"outbox {self.path}: {exc}") from None
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise OutboxError(f"outbox {self.path}: cannot commit: {exc}") from None
