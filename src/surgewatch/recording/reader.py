"""Reads recordings: metadata, the stored config, ticks in order and events; `read_series` for analysis tools."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model import Annotation, glob_match
from .format import BACKFILL, LIVE, SUPPORTED_VERSIONS, RecordingError, decode_block, unpack_ids, unpack_values

SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True, slots=True)
class Tick:
    """One recorded tick: when, live or backfill, the series that reported and their values."""

    ts: float
    kind: int
    names: tuple[str, ...]
    values: np.ndarray


@dataclass(frozen=True, slots=True)
class SourceInfo:
    name: str
    interval: float
    demo: bool


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    ts: float
    kind: str
    doc: dict[str, Any]


class Recording:
    """An open recording (read-only use); every problem becomes a RecordingError with one line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn = _open(path)
        try:
            self.meta: dict[str, str] = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            self.close()
            raise self._damaged(exc) from None
        version = self.meta.get("format_version")
        if version is None:
            self.close()
            raise RecordingError(f"{path}: not a surgewatch recording (no format version)")
        if not version.isdigit() or int(version) not in SUPPORTED_VERSIONS:
            self.close()
            newest = max(SUPPORTED_VERSIONS)
            hint = "upgrade surgewatch to read it" if version.isdigit() and int(version) > newest else \
                "this surgewatch cannot read it"
            raise RecordingError(f"{path}: recording format version {version} is not supported "
                                 f"(this surgewatch reads version {newest}); {hint}")
        try:
            self.series_names: dict[int, str] = dict(self._conn.execute("SELECT id, name FROM series").fetchall())
            self.series_sources: dict[str, str | None] = dict(
                self._conn.execute("SELECT name, source FROM series").fetchall())
            self._sets: dict[int, tuple[str, ...]] = {
                sid: tuple(self.series_names[i] for i in unpack_ids(blob))
                for sid, blob in self._conn.execute("SELECT id, ids FROM series_sets")}
            self.sources = [SourceInfo(n, float(i), bool(d)) for n, i, d in
                            self._conn.execute("SELECT name, interval, demo FROM sources ORDER BY name")]
        except (sqlite3.DatabaseError, KeyError) as exc:
            self.close()
            raise self._damaged(exc) from None

    def _damaged(self, exc: BaseException) -> RecordingError:
        return RecordingError(f"{self.path}: damaged recording ({exc})")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata -----------------------------------------------------------------------------

    @property
    def tick_seconds(self) -> float:
        return float(self.meta.get("tick_seconds", "1"))

    @property
    def config_text(self) -> str:
        return self.meta.get("config_text", "")

    @property
    def config_label(self) -> str:
        return self.meta.get("config_label", "<recorded>")

    @property
    def detector(self) -> str:
        return self.meta.get("detector", "robust-z")

    def span(self) -> tuple[float, float] | None:
        """First and last live tick time (None for a recording without live ticks)."""
        q = ("SELECT MIN(a), MAX(b) FROM (SELECT MIN(ts_first) a, MAX(ts_last) b FROM chunks WHERE kind = ? "
             "UNION ALL SELECT MIN(ts), MAX(ts) FROM ticks WHERE kind = ?)")
        row = self._query(q, (LIVE, LIVE))[0]
        return None if row[0] is None else (float(row[0]), float(row[1]))

    def count(self) -> int:
        """Number of ticks (live and backfill)."""
        row = self._query("SELECT (SELECT COALESCE(SUM(n), 0) FROM chunks) + (SELECT COUNT(*) FROM ticks)")[0]
        return int(row[0])

    # -- data ---------------------------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    def ticks(self, start: float | None = None, end: float | None = None,
              kinds: Sequence[int] = (LIVE, BACKFILL)) -> Iterator[Tick]:
        """Every tick in recording order, limited to start <= ts <= end when given."""
        lo = -np.inf if start is None else start
        hi = np.inf if end is None else end
        kind_sql = ",".join(str(int(k)) for k in kinds)
        chunks = self._rows(f"SELECT ts_first, ts_last, kind, set_id, n, ts, vals FROM chunks WHERE kind IN "
                            f"({kind_sql}) AND ts_last >= ? AND ts_first <= ? ORDER BY seq_first", (lo, hi))
        for _first, _last, kind, sid, n, ts_blob, vals_blob in chunks:
            names = self._set(sid)
            try:
                ts = decode_block(ts_blob, n, 1)[:, 0]
                matrix = decode_block(vals_blob, n, len(names))
            except Exception as exc:  # zlib.error, ValueError: a damaged block
                raise self._damaged(exc) from None
            for k in range(n):
                t = float(ts[k])
                if lo <= t <= hi:
                    yield Tick(t, int(kind), names, matrix[k])
        rows = self._rows(f"SELECT ts, kind, set_id, vals FROM ticks WHERE kind IN ({kind_sql}) AND ts >= ? "
                          f"AND ts <= ? ORDER BY seq", (lo, hi))
        for t, kind, sid, blob in rows:
            names = self._set(sid)
            values = unpack_values(blob)
            if values.shape[0] != len(names):
                raise RecordingError(f"{self.path}: damaged recording (a tick at {t} has {values.shape[0]} "
                                     f"values for {len(names)} series)")
            yield Tick(float(t), int(kind), names, values)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        """Rows one at a time (a day of a big fleet does not fit in memory at once), errors as one line."""
        try:
            cursor = self._conn.execute(sql, params)
            while True:
                row = cursor.fetchone()
                if row is None:
                    return
                yield row
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    def timestamps(self, start: float | None = None, end: float | None = None, kind: int = LIVE) -> np.ndarray:
        """The times of every tick of one kind, in recording order, without decoding any values."""
        lo = -np.inf if start is None else start
        hi = np.inf if end is None else end
        parts = []
        for n, blob in self._rows("SELECT n, ts FROM chunks WHERE kind = ? AND ts_last >= ? AND ts_first <= ? "
                                  "ORDER BY seq_first", (kind, lo, hi)):
            try:
                parts.append(decode_block(blob, n, 1)[:, 0])
            except Exception as exc:  # zlib.error, ValueError: a damaged block
                raise self._damaged(exc) from None
        parts.append(np.array([r[0] for r in self._rows("SELECT ts FROM ticks WHERE kind = ? AND ts >= ? AND "
                                                        "ts <= ? ORDER BY seq", (kind, lo, hi))], dtype=np.float64))
        ts = np.concatenate(parts)
        return ts[(ts >= lo) & (ts <= hi)]

    def _set(self, sid: int) -> tuple[str, ...]:
        names = self._sets.get(sid)
        if names is None:
            raise RecordingError(f"{self.path}: damaged recording (unknown series set {sid})")
        return names

    def events(self, kind: str | None = None, start: float | None = None,
               end: float | None = None) -> list[RecordedEvent]:
        """Recorded events (alert, campaign, sources) in order, optionally of one kind and time range."""
        lo = -np.inf if start is None else start
        hi = np.inf if end is None else end
        sql = "SELECT ts, kind, doc FROM events WHERE ts >= ? AND ts <= ?"
        params: list[Any] = [lo, hi]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        out = []
        for ts, k, doc in self._query(sql + " ORDER BY id", params):
            try:
                parsed = json.loads(doc)
                if not isinstance(parsed, dict):
                    raise ValueError(f"a {k} event is not a JSON object")
                out.append(RecordedEvent(float(ts), k, parsed))
            except (ValueError, TypeError) as exc:
                raise self._damaged(exc) from None
        return out


    def annotations(self, start: float | None = None, end: float | None = None) -> list[Annotation]:
        """The deploy annotations recorded (`annotation` events), oldest first; none in older recordings."""
        out: dict[tuple[int, float, str], Annotation] = {}
        for e in self.events("annotation", start, end):
            d = e.doc
            try:
                a = Annotation(int(d.get("id", 0)), e.ts, str(d["text"]), d.get("host") or None,
                               float(d.get("duration", 0.0)), "recording")
            except (KeyError, TypeError, ValueError) as exc:
                raise self._damaged(exc) from None
            out.setdefault((a.id, a.ts, a.text), a)  # a file recorded into twice holds some twice
        return sorted(out.values(), key=lambda a: (a.ts, a.id))


def _open(path: str) -> sqlite3.Connection:
    """Open a recording after checking it is an SQLite file (recovering a WAL left by a crash)."""
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RecordingError(f"{path}: is a directory, not a recording") from None
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not head.startswith(SQLITE_MAGIC):
        raise RecordingError(f"{path}: not a surgewatch recording (not an SQLite database)")
    if len(head) < 100:
        raise RecordingError(f"{path}: damaged recording (truncated header)")
    try:
        # Read-write when we may (SQLite replays a crashed writer's WAL on open); read-only otherwise.
        if os.access(path, os.W_OK) and os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
            conn = sqlite3.connect(path, isolation_level=None)
        else:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        conn.execute("PRAGMA query_only=ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise RecordingError(f"{path}: damaged recording ({exc})") from None
    return conn


def read_series(path: str, start: float | None = None, end: float | None = None,
                globs: Sequence[str] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A recording's live samples as (timestamps, {series: values}); NaN where a series did not report.

    `globs` keeps only series matching any of the shell globs (e.g. "host:*/cpu.percent"). Raises
    RecordingError with a one-line message for a file that is not a readable recording.
    """
    with Recording(path) as rec:
        ticks = list(rec.ticks(start, end, kinds=(LIVE,)))
        names: dict[str, int] = {}
        for t in ticks:
            for n in t.names:
                if n not in names and (not globs or any(glob_match(g, n) for g in globs)):
                    names[n] = len(names)
        ts = np.array([t.ts for t in ticks], dtype=np.float64)
        matrix = np.full((len(names), len(ticks)), np.nan)
        placement: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
        for k, t in enumerate(ticks):
            where = placement.get(t.names)
            if where is None:
                pairs = [(i, names[n]) for i, n in enumerate(t.names) if n in names]
                where = placement[t.names] = (np.array([p[0] for p in pairs], dtype=np.intp),
                                              np.array([p[1] for p in pairs], dtype=np.intp))
            matrix[where[1], k] = t.values[where[0]]
        return ts, {n: matrix[r] for n, r in names.items()}


def is_recording(path: str) -> bool:
    """Whether `path` starts like an SQLite file (so `analyze` can tell a recording from a CSV)."""
    try:
        with open(path, "rb") as f:
            return f.read(16) == SQLITE_MAGIC
    except OSError:
        return False
