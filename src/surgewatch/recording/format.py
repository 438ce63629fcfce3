"""The recording file format: one SQLite database (WAL) per session, version 1.

A recording holds every sample the engine stored, every campaign event and every alert event, plus
the config the session ran with, so a session can be replayed through analysis and rules again.

Schema (format version 1)::

    meta(key TEXT PRIMARY KEY, value TEXT)
        format_version  "1"; readers refuse versions they do not know, with one line
        app_version     the surgewatch version that wrote it
        created         UNIX seconds when recording started
        tick_seconds    the monitor interval
        detector        the detector name the engine ran ("robust-z", ...)
        config_text     the TOML the session ran with (`${VAR}` references kept unexpanded)
        config_label    where that TOML came from (a path or "<built-in default>")
    sources(name TEXT PRIMARY KEY, interval REAL, demo INTEGER)
    series(id INTEGER PRIMARY KEY, name TEXT UNIQUE, source TEXT)       -- id: order first seen
    series_sets(id INTEGER PRIMARY KEY, ids BLOB)                        -- int32 LE series ids, in tick order
    ticks(seq INTEGER PRIMARY KEY, ts REAL, kind INTEGER, set_id INTEGER, vals BLOB)
        recent ticks, one row per tick: `vals` is float64 LE, one value per series of the set
        kind 0 = a live tick, 1 = backfilled history (the demo's baseline; replay warms on it)
    chunks(id INTEGER PRIMARY KEY, seq_first INTEGER, seq_last INTEGER, ts_first REAL, ts_last REAL,
           kind INTEGER, set_id INTEGER, n INTEGER, ts BLOB, vals BLOB)
        older ticks compacted losslessly: consecutive ticks with the same set and kind; `ts` is n float64
        and `vals` an n x len(set) float64 matrix, each XOR-ed with the previous row, byte-shuffled
        and zlib-compressed (see `encode_block`)
    events(id INTEGER PRIMARY KEY, ts REAL, kind TEXT, doc TEXT)
        kind "alert": AlertEvent.to_json(); "campaign": {"campaign", "event": "surge-start"|"surge-end",
        "visitors", "baseline", "lift"}; "sources": {"stale": [names], "errors": {name: text}} when the
        set of stale sources changes (replay reproduces "stale" resolutions from it)

Values are stored exactly (float64, lossless compression) so a replay with the same config yields the
same alerts. Every tick is its own committed transaction (synchronous=FULL), so a crash or power cut
loses at most the ticks not yet committed and the file always opens afterwards.
"""

from __future__ import annotations

import zlib

import numpy as np

FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
LIVE, BACKFILL = 0, 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS sources(name TEXT PRIMARY KEY, interval REAL, demo INTEGER);
CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, source TEXT);
CREATE TABLE IF NOT EXISTS series_sets(id INTEGER PRIMARY KEY, ids BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ticks(seq INTEGER PRIMARY KEY, ts REAL NOT NULL, kind INTEGER NOT NULL,
                                 set_id INTEGER NOT NULL, vals BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY, seq_first INTEGER NOT NULL, seq_last INTEGER NOT NULL,
                                  ts_first REAL NOT NULL, ts_last REAL NOT NULL, kind INTEGER NOT NULL,
                                  set_id INTEGER NOT NULL, n INTEGER NOT NULL, ts BLOB NOT NULL,
                                  vals BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_ts ON chunks(ts_last);
CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
"""


class RecordingError(Exception):
    """A recording cannot be read or written; the message is the one line the user sees."""


def pack_values(values: np.ndarray) -> bytes:
    """One tick's values as float64 little-endian bytes."""
    return np.ascontiguousarray(values, dtype="<f8").tobytes()


def unpack_values(blob: bytes) -> np.ndarray:
    """The inverse of pack_values."""
    return np.frombuffer(blob, dtype="<f8")


def pack_ids(ids: list[int]) -> bytes:
    return np.asarray(ids, dtype="<i4").tobytes()


def unpack_ids(blob: bytes) -> list[int]:
    return np.frombuffer(blob, dtype="<i4").tolist()


def encode_block(matrix: np.ndarray) -> bytes:
    """Losslessly compress a [rows, cols] float64 matrix: XOR each row with the one before, shuffle bytes, zlib.

    Slowly moving or integer-valued series XOR to mostly-zero high bytes, which the byte shuffle lines up
    for zlib; the exact bit patterns (NaN included) come back out of `decode_block`.
    """
    m = np.ascontiguousarray(matrix, dtype="<f8")
    bits = m.view("<u8")
    delta = bits.copy()
    delta[1:] ^= bits[:-1]
    shuffled = delta.view(np.uint8).reshape(-1, 8).T.copy()  # byte plane k holds byte k of every value
    return zlib.compress(shuffled.tobytes(), 6)


def decode_block(blob: bytes, rows: int, cols: int) -> np.ndarray:
    """The inverse of encode_block."""
    raw = np.frombuffer(zlib.decompress(blob), dtype=np.uint8)
    if raw.size != rows * cols * 8:
        raise ValueError(f"block holds {raw.size} bytes, expected {rows * cols * 8}")
    delta = raw.reshape(8, rows * cols).T.copy().view("<u8").reshape(rows, cols)
    bits = np.bitwise_xor.accumulate(delta, axis=0) if rows else delta
    return bits.view("<f8")
