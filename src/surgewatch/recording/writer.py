"""Writes a session to a recording: the tick only appends one small batch; a writer thread commits it.

The writer commits what has arrived every `flush_every` seconds (50 ms), whole ticks only, in one
transaction (WAL, synchronous=FULL), so everything up to the last committed tick survives kill -9 or a
power cut. Every `compact_every` ticks the writer folds all but the newest
`keep_raw` ticks into losslessly compressed chunks (see format.py).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..analysis import LIFTED
from ..model import AlertEvent, Annotation, finite_or_none
from ..redact import redact_config_text
from .format import (
    BACKFILL,
    FORMAT_VERSION,
    LIVE,
    SCHEMA,
    RecordingError,
    encode_block,
    pack_ids,
    pack_values,
    unpack_values,
)

if TYPE_CHECKING:
    from ..config import CampaignConfig, Config
    from ..engine import Engine, EngineView, ListenerContext

log = logging.getLogger("surgewatch.recording")

SQLITE_MAGIC = b"SQLite format 3\x00"
SETS_KEPT = 256  # series sets remembered by the writer (a set seen again after that is stored again)


@dataclass
class _Batch:
    """Everything one tick adds to the file, written in one transaction."""

    ticks: list[tuple[float, int, int, bytes]] = field(default_factory=list)  # ts, kind, set id, values
    series: list[tuple[int, str, str | None]] = field(default_factory=list)
    sets: list[tuple[int, bytes]] = field(default_factory=list)
    events: list[tuple[float, str, str]] = field(default_factory=list)
    sources: list[tuple[str, str]] = field(default_factory=list)  # (source, series) learned after first sight
    new_sources: list[tuple[str, float, int]] = field(default_factory=list)  # (name, interval, demo) on reload


_STOP = object()


def check_target(path: str) -> None:
    """Raise RecordingError (one line) unless `path` can hold a recording: a new file or an existing one."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise RecordingError(f"{path}: cannot record: directory {directory} does not exist")
    if os.path.exists(path):
        try:
            with open(path, "rb") as f:
                head = f.read(16)
        except OSError as exc:
            raise RecordingError(f"{path}: cannot record: {exc.strerror or exc}") from None
        if head and head != SQLITE_MAGIC:
            raise RecordingError(f"{path}: cannot record: the file exists and is not a surgewatch recording")
        if head:
            _check_appendable(path)


def _check_appendable(path: str) -> None:
    """An existing SQLite file takes more ticks only if it is a recording of this format version."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = None
            if "meta" in tables:
                row = conn.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
                version = row[0] if row else None
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise RecordingError(f"{path}: cannot record: {exc}") from None
    if tables and version is None:
        raise RecordingError(f"{path}: cannot record: an SQLite database that is not a surgewatch recording")
    if version is not None and version != str(FORMAT_VERSION):
        raise RecordingError(f"{path}: cannot record: it is a recording of format version {version}; this "
                             f"surgewatch writes version {FORMAT_VERSION} (record to a new file)")


def connect(path: str) -> sqlite3.Connection:
    """Open (creating) a recording for writing with the durability settings the format promises.

    The file is created 0600 (an existing one is made so): it holds the config, and samples and alerts may be
    sensitive. SQLite gives its -wal and -shm files the database file's mode.
    """
    try:  # O_EXCL: never open and close an existing database here, which would drop this process's locks on it
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise sqlite3.OperationalError(f"cannot create the file: {exc.strerror or exc}") from None
    with contextlib.suppress(OSError):  # an existing file we do not own keeps its mode
        os.chmod(path, 0o600)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new file: lets close() give space back
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(SCHEMA)
    return conn


class RecordingWriter:
    """The low-level writer: series sets, ticks and events into one file, committed by a thread."""

    def __init__(self, path: str, meta: Mapping[str, Any], sources: Sequence[tuple[str, float, bool]] = (),
                 *, compact_every: int = 600, keep_raw: int = 60, flush_every: float = 0.05,
                 on_commit: Callable[[int], None] | None = None) -> None:
        check_target(path)
        self.path = path
        try:
            self._conn = connect(path)
            version = self._conn.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()
            if version is not None and version[0] != str(FORMAT_VERSION):
                raise RecordingError(f"{path}: cannot append to a recording of format version {version[0]}")
            if version is not None:  # appending to an earlier session: keep its series ids
                self._series = dict(self._conn.execute("SELECT name, id FROM series").fetchall())
            else:
                self._series = {}
            self._conn.execute("BEGIN")
            values = {"format_version": str(FORMAT_VERSION), "app_version": __version__,
                      "created": repr(time.time()), **{k: str(v) for k, v in meta.items()}}
            if "config_text" in values:  # a recording keeps the config for replay, never its secrets
                values["config_text"] = redact_config_text(values["config_text"])
            if version is not None:
                values.pop("created")
            self._conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", values.items())
            self._conn.executemany("INSERT OR REPLACE INTO sources(name, interval, demo) VALUES (?, ?, ?)",
                                   [(n, float(i), int(d)) for n, i, d in sources])
            self._conn.execute("COMMIT")
            self._next_set = 1 + (self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM series_sets").fetchone()[0])
        except sqlite3.Error as exc:
            raise RecordingError(f"{path}: cannot record: {exc}") from None
        # The most recent series sets (a churning fleet makes a new set nearly every tick: keep only a few).
        self._sets: collections.OrderedDict[tuple[str, ...], int] = collections.OrderedDict()
        self._next_series = max(self._series.values(), default=0) + 1
        self._forgotten = False  # some series were forgotten (evicted): look a returning name up in the file
        self._lookup: sqlite3.Connection | None = None
        self.unknown_source: set[str] = set()  # series whose source was not known when first recorded
        self.compact_every = compact_every
        self.keep_raw = keep_raw
        self.on_commit = on_commit
        self.committed = 0  # ticks committed so far
        self.transactions = 0  # commits so far, and the seconds they took (for benchmarks and logs)
        self.commit_seconds = 0.0
        self.failed: str | None = None
        self.flush_every = flush_every
        self._pending: collections.deque[Any] = collections.deque()  # append/popleft are atomic: no lock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recording writer", daemon=True)
        self._thread.start()

    # -- called on the engine's thread --------------------------------------------------------

    def set_id(self, names: tuple[str, ...], batch: _Batch, source_of: Callable[[str], str | None]) -> int:
        """The id of a series set (registering it, and any new series, in `batch` on first sight)."""
        sid = self._sets.get(names)
        if sid is not None:
            self._sets.move_to_end(names)
        else:
            ids = []
            for name in names:
                i = self._series.get(name)
                if i is None and self._forgotten:
                    i = self._stored_id(name)
                    if i is not None:
                        self._series[name] = i
                if i is None:
                    i = self._series[name] = self._next_series
                    self._next_series += 1
                    src = source_of(name)
                    batch.series.append((i, name, src))
                    if src is None:
                        self.unknown_source.add(name)
                ids.append(i)
            sid = self._sets[names] = self._next_set
            self._next_set += 1
            batch.sets.append((sid, pack_ids(ids)))
            if len(self._sets) > SETS_KEPT:
                self._sets.popitem(last=False)
        return sid

    @property
    def series_held(self) -> int:
        """Series names kept in memory (bounded by the engine's eviction, not by the recording's length)."""
        return len(self._series)

    def forget_series(self, names: Sequence[str]) -> None:
        """Drop evicted series from memory (the file keeps them; a name that comes back keeps its id)."""
        for name in names:
            if self._series.pop(name, None) is not None:
                self._forgotten = True
            self.unknown_source.discard(name)

    def _stored_id(self, name: str) -> int | None:
        """The id a forgotten series has in the file (read through a second, read-only connection)."""
        try:
            if self._lookup is None:
                self._lookup = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            row = self._lookup.execute("SELECT id FROM series WHERE name = ?", (name,)).fetchone()
        except sqlite3.Error as exc:
            log.debug("%s: looking up %s: %s", self.path, name, exc)
            return None
        return None if row is None else int(row[0])

    def submit(self, batch: _Batch) -> None:
        """Queue a batch for the writer thread: an append, no lock and no wake-up (the writer polls)."""
        self._pending.append(batch)

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, compact everything, checkpoint the WAL and close the file."""
        if not self._thread.is_alive():
            return
        self._pending.append(_STOP)
        self._stop.set()
        self._thread.join(timeout)
        if self._lookup is not None:
            self._lookup.close()
            self._lookup = None

    # -- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        conn = self._conn
        since_compact = 0
        stopping = False
        while not stopping:
            # Poll rather than be woken: a wake-up per tick costs the engine's thread a context switch.
            if not self._pending:
                self._stop.wait(self.flush_every)
            items = []
            while self._pending:
                items.append(self._pending.popleft())
            stopping = any(i is _STOP for i in items)
            batches = [i for i in items if isinstance(i, _Batch)]
            if self.failed is not None:
                continue
            try:
                ticks = self._write(conn, batches)
                since_compact += ticks
                if ticks and self.on_commit is not None:
                    self.on_commit(self.committed)
                if since_compact >= self.compact_every or stopping:
                    compact(conn, self.keep_raw if not stopping else 0, max_chunk=max(1, self.compact_every))
                    since_compact = 0
            except sqlite3.Error as exc:
                self.failed = f"{self.path}: recording stopped: {exc}"
                log.error("%s", self.failed)
        try:
            release_free_pages(conn)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
        except sqlite3.Error as exc:
            log.error("%s: closing the recording: %s", self.path, exc)

    def _write(self, conn: sqlite3.Connection, batches: list[_Batch]) -> int:
        if not batches:
            return 0
        started = time.perf_counter()
        conn.execute("BEGIN")
        try:
            n = 0
            for b in batches:
                if b.series:
                    conn.executemany("INSERT INTO series(id, name, source) VALUES (?, ?, ?)", b.series)
                if b.sets:
                    conn.executemany("INSERT INTO series_sets(id, ids) VALUES (?, ?)", b.sets)
                if b.ticks:
                    conn.executemany("INSERT INTO ticks(ts, kind, set_id, vals) VALUES (?, ?, ?, ?)", b.ticks)
                    n += len(b.ticks)
                if b.events:
                    conn.executemany("INSERT INTO events(ts, kind, doc) VALUES (?, ?, ?)", b.events)
                if b.sources:
                    conn.executemany("UPDATE series SET source = ? WHERE name = ?", b.sources)
                if b.new_sources:
                    conn.executemany("INSERT OR REPLACE INTO sources(name, interval, demo) VALUES (?, ?, ?)",
                                     b.new_sources)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.committed += n
        self.transactions += 1
        self.commit_seconds += time.perf_counter() - started
        return n


def release_free_pages(conn: sqlite3.Connection) -> None:
    """Give the pages compaction freed back to the file system (auto_vacuum=INCREMENTAL, one transaction).

    Python's sqlite3 steps a row-less statement once, and each step of incremental_vacuum frees one page.
    """
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    if not free:
        return
    conn.execute("BEGIN")
    try:
        for _ in range(free):
            conn.execute("PRAGMA incremental_vacuum(1)")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def compact(conn: sqlite3.Connection, keep_raw: int, max_chunk: int = 3600) -> int:
    """Fold all raw ticks but the newest `keep_raw` into compressed chunks, in one transaction."""
    last = conn.execute("SELECT MAX(seq) FROM ticks").fetchone()[0]
    if last is None:
        return 0
    rows = conn.execute("SELECT seq, ts, kind, set_id, vals FROM ticks WHERE seq <= ? ORDER BY seq",
                        (last - keep_raw,)).fetchall()
    if not rows:
        return 0
    runs: list[list[tuple[int, float, int, int, bytes]]] = []
    for r in rows:
        if runs and runs[-1][-1][2] == r[2] and runs[-1][-1][3] == r[3] and len(runs[-1]) < max_chunk:
            runs[-1].append(r)
        else:
            runs.append([r])
    out = []
    for run in runs:
        ts = np.array([r[1] for r in run], dtype="<f8")
        matrix = np.stack([unpack_values(r[4]) for r in run])
        out.append((run[0][0], run[-1][0], float(ts[0]), float(ts[-1]), run[0][2], run[0][3], len(run),
                    encode_block(ts[:, None]), encode_block(matrix)))
    conn.execute("BEGIN")
    try:
        conn.executemany("INSERT INTO chunks(seq_first, seq_last, ts_first, ts_last, kind, set_id, n, ts, vals) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", out)
        conn.execute("DELETE FROM ticks WHERE seq <= ?", (rows[-1][0],))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(rows)


ANNOTATION_CONTEXT = 3600.0  # annotations that ended this long before recording began are left out


class Recorder:
    """An engine listener that records the session (see Engine.add_listener); it asks the engine only through
    the read-only view each call brings (`ctx.engine`). Without an engine, `record` writes rows as given."""

    def __init__(self, writer: RecordingWriter) -> None:
        self.writer = writer
        self._stale: tuple[str, ...] = ()
        self._errors: dict[str, str] = {}
        self._surging: set[str] = set()
        self._source_version: tuple[int, int] = (-1, -1)  # the engine's series → source map version seen last
        self._shift = 0.0  # added to recorded times after wall-clock steps, so the timeline never jumps
        self._last_ts: float | None = None
        self._annotations: tuple[Annotation, ...] = ()  # the engine's annotations as last seen (by identity)
        self._recorded: set[tuple[int, float, str]] = set()
        self._first_tick: float | None = None

    @classmethod
    def for_engine(cls, path: str, engine: EngineView, **kwargs: Any) -> Recorder:
        """A recorder for `engine`'s session: its config, tick, detector and sources go into the file."""
        cfg = engine.config
        meta = {"tick_seconds": repr(engine.tick_seconds), "detector": engine.detector_name,
                "config_text": cfg.text, "config_label": cfg.path}
        sources = [(h.name, h.interval, h.demo) for h in engine.source_health().values()]
        return cls(RecordingWriter(path, meta, sources, **kwargs))

    def on_forget(self, ctx: ListenerContext, names: Sequence[str]) -> None:
        """The engine evicted these series: forget them here too (memory stays flat under series churn)."""
        self.writer.forget_series(names)

    def on_backfill(self, ctx: ListenerContext, ts: Sequence[float], values: Mapping[str, Sequence[float]]) -> None:
        """Record backfilled history as BACKFILL ticks (a replay warms its detector on them)."""
        names = tuple(values)
        matrix = np.array([list(v) for v in values.values()], dtype=np.float64)
        batch = _Batch()
        sid = self.writer.set_id(names, batch, ctx.engine.source_of)
        batch.ticks = [(float(t), BACKFILL, sid, pack_values(matrix[:, k])) for k, t in enumerate(ts)]
        self.writer.submit(batch)

    def on_tick(self, ctx: ListenerContext, rows: np.ndarray, values: np.ndarray,
                events: Sequence[AlertEvent]) -> None:
        """Queue this tick's samples and events (microseconds; the disk work is on the writer thread)."""
        self._guarded(ctx.engine, ctx.ts, rows, values, events)

    def record(self, ts: float, rows: np.ndarray, values: np.ndarray, events: Sequence[AlertEvent]) -> None:
        """Queue one tick without an engine: series are named by their rows as given (tests, benchmarks)."""
        self._guarded(None, ts, rows, values, events)

    def _guarded(self, engine: EngineView | None, ts: float, rows: np.ndarray, values: np.ndarray,
                 events: Sequence[AlertEvent]) -> None:
        if self.writer.failed is not None:
            return
        try:
            self._on_tick(engine, ts, rows, values, events)
        except Exception as exc:  # the recording must never take the monitor down with it
            self.writer.failed = f"{self.writer.path}: recording stopped: {type(exc).__name__}: {exc}"
            log.error("%s", self.writer.failed)

    def _on_tick(self, engine: EngineView | None, ts: float, rows: np.ndarray, values: np.ndarray,
                 events: Sequence[AlertEvent]) -> None:
        batch = _Batch()
        if engine is not None:
            names = engine.series_names()
            key = tuple(names[r] for r in rows.tolist())
            self._source_events(engine, ts, batch)
            self._campaign_events(engine, ts, batch)
            self._annotation_events(engine, ts, batch)
            sid = self.writer.set_id(key, batch, engine.source_of)
            if self.writer.unknown_source and engine.sources_version != self._source_version:
                self._source_version = engine.sources_version
                for name in list(self.writer.unknown_source):
                    src = engine.source_of(name)
                    if src is not None:
                        batch.sources.append((src, name))
                        self.writer.unknown_source.discard(name)
        else:
            sid = self.writer.set_id(tuple(str(r) for r in rows.tolist()), batch, _no_source)
        batch.ticks.append((ts, LIVE, sid, pack_values(values)))
        for e in events:
            batch.events.append((ts, "alert", json.dumps(e.to_json(), ensure_ascii=False)))
        self._last_ts = ts
        self._submit(batch)

    def _submit(self, batch: _Batch) -> None:
        if self._shift:
            batch.ticks = [(t + self._shift, kind, sid, vals) for t, kind, sid, vals in batch.ticks]
            batch.events = [(t + self._shift, kind, doc) for t, kind, doc in batch.events]
        self.writer.submit(batch)

    def on_clock_step(self, ctx: ListenerContext, delta: float) -> None:
        """The wall clock was stepped by `delta` seconds: later ticks are recorded `delta` earlier, so the
        recording's timeline stays continuous (replays and seeks need it in order); a `clock` event notes it."""
        if self.writer.failed is not None:
            return
        batch = _Batch()
        if self._last_ts is not None:
            batch.events.append((self._last_ts, "clock", json.dumps({"step": round(delta, 3)})))
        self._submit(batch)
        self._shift -= delta

    def _source_events(self, engine: EngineView, ts: float, batch: _Batch) -> None:
        health = engine.source_health().values()
        stale = tuple(h.name for h in health if h.stale(ts))
        errors = {h.name: h.error for h in health if h.error}
        if stale != self._stale or errors != self._errors:
            self._stale, self._errors = stale, errors
            batch.events.append((ts, "sources", json.dumps({"stale": list(stale), "errors": errors})))

    def _campaign_events(self, engine: EngineView, ts: float, batch: _Batch) -> None:
        analysis = engine.last_analysis
        if analysis is None:
            return
        for c in analysis.campaigns:
            surging = not math.isnan(c.lift) and c.lift >= LIFTED
            if surging == (c.name in self._surging):
                continue
            if surging:
                self._surging.add(c.name)
            else:
                self._surging.discard(c.name)
            doc = {"campaign": c.name, "event": "surge-start" if surging else "surge-end",
                   "visitors": finite_or_none(c.visitors), "baseline": finite_or_none(c.baseline),
                   "lift": finite_or_none(c.lift)}
            batch.events.append((ts, "campaign", json.dumps(doc)))

    def _annotation_events(self, engine: EngineView, ts: float, batch: _Batch) -> None:
        """Each deploy annotation the engine knows, once, as an `annotation` event at its own time (those whose
        window closed over an hour before the session's first tick are not this session's story)."""
        if self._first_tick is None:
            self._first_tick = ts
        known = engine.known_annotations
        if known is self._annotations:
            return
        self._annotations = known
        for a in known:
            key = (a.id, a.ts, a.text)
            if key not in self._recorded and a.end >= self._first_tick - ANNOTATION_CONTEXT:
                self._recorded.add(key)
                batch.events.append((a.ts, "annotation", json.dumps(a.to_json(), ensure_ascii=False)))

    def on_config(self, ctx: ListenerContext, config: Config) -> None:
        """Record a reloaded config (a `config` event; replay applies its rules from then on) and new sources."""
        if self.writer.failed is not None:
            return
        batch = _Batch()
        batch.events.append((ctx.ts, "config", json.dumps({"text": redact_config_text(config.text),
                                                           "label": config.path})))
        batch.new_sources = [(h.name, h.interval, int(h.demo)) for h in ctx.engine.source_health().values()]
        self._submit(batch)

    def on_campaigns(self, ctx: ListenerContext, campaigns: Sequence[CampaignConfig]) -> None:
        """Record the campaign feeds' campaigns as they change (a `campaigns` event: replay and report use them)."""
        if self.writer.failed is not None:
            return
        batch = _Batch()
        doc = {"campaigns": [dict(asdict(c), hosts=list(c.hosts)) for c in campaigns]}
        batch.events.append((ctx.ts, "campaigns", json.dumps(doc, ensure_ascii=False, allow_nan=False)))
        self._submit(batch)

    def close(self) -> None:
        """Commit, compact and close the file (called by Engine.shutdown)."""
        self.writer.close()


def attach_recorder(engine: Engine) -> Recorder | None:
    """Record `engine`'s session to the file its config's `[monitor] record` names (`--record FILE`), if any;
    frontends call it before backfilling, so the backfilled history is recorded too."""
    path = engine.config.monitor.record
    if not path:
        return None
    recorder = Recorder.for_engine(path, engine)
    engine.add_listener(recorder)
    return recorder


def _no_source(name: str) -> str | None:
    return None
