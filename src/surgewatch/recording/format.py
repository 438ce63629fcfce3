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
        config_text     the TOML the session ran with (`${VAR}` references kept unexpanded; tokens, passwords,
                        header values and webhook URL secrets replaced by "REDACTED"; "" if one could not be)
        config_label    where that TOML came from (a path or "<built-in default>")
    sources(name TEXT PRIMARY KEY, interval REAL, demo INTEGER)
    series(id INTEGER PRIMARY KEY, name TEXT UNIQUE, source TEXT)       -- id: order first seen
    series_sets(id INTEGER PRIMARY KEY, ids BLOB)                        -- int32 LE series ids, in tick order
    ticks(seq INTEGER PRIMARY KEY, ts REAL, kind INTEGER, set_id INTEGER, vals BLOB)
        recent ticks, one row per tick: `vals` is float64 LE, one value per series of the set
        kind 0 = a live tick, 1 = backfilled history (the demo's baseline; replay warms on it)
    chunks(id INTEGER PRIMARY KEY, seq_first INTEGER, seq_last INTEGER, ts_first REAL, ts_last REAL,
           kind INTEGER, set_id INTEGER, n INTEGER, ts BLOB, vals BLOB)
        older ticks compacted losslessly: consecutive ticks with the same set and kind; `ts` (n x 1) and
        `vals` (n x len(set)) are float64 matrices encoded by `encode_block`: per column either zigzag
        deltas of scaled decimals (values with <= 6 decimal digits) or float64 bits XOR-ed with the
        previous row, byte-shuffled, zlib-compressed; exact to the bit
    events(id INTEGER PRIMARY KEY, ts REAL, kind TEXT, doc TEXT)
        kind "alert": AlertEvent.to_json(); "campaign": {"campaign", "event": "surge-start"|"surge-end",
        "visitors", "baseline", "lift"}; "sources": {"stale": [names], "errors": {name: text}} when the
        set of stale sources changes (replay reproduces "stale" resolutions from it); "config":
        {"text", "label"} when a daemon reloaded its config (replay with the recorded config applies it);
        "annotation": a deploy annotation {"id", "time", "text", "host", "duration", "origin"} at its own ts,
        written once when the engine first knows it (replays use these, not the state dir's)

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


XOR = 255  # column mode: float64 bits XOR-ed with the previous row
MAX_DIGITS = 6
_EXACT = float(2**53)


def _shuffle(words: np.ndarray) -> bytes:
    """uint64 words as 8 byte planes (byte k of every word together), so zero high bytes line up for zlib."""
    return np.ascontiguousarray(words, dtype="<u8").view(np.uint8).reshape(-1, 8).T.tobytes()


def _unshuffle(raw: np.ndarray, count: int) -> np.ndarray:
    return raw.reshape(8, count).T.copy().view("<u8").reshape(count)


def _decimal_digits(col: np.ndarray) -> int:
    """The fewest decimal digits d with col == round(col * 10^d) / 10^d bit for bit, or XOR if none <= 6."""
    if not np.all(np.isfinite(col)):
        return XOR
    bits = col.view("<u8")
    with np.errstate(over="ignore", invalid="ignore"):
        for d in range(MAX_DIGITS + 1):
            scale = 10.0**d
            k = np.round(col * scale)
            if not np.all(np.abs(k) < _EXACT):
                continue
            back = k.astype(np.int64).astype(np.float64) / scale  # exactly what decode_block computes (-0.0 fails)
            if np.array_equal(back.view("<u8"), bits):
                return d
    return XOR


def encode_block(matrix: np.ndarray) -> bytes:
    """Losslessly compress a [rows, cols] float64 matrix (one row per tick), column by column, then zlib.

    A column whose values are decimals with at most 6 digits (CPU 12.3 %, visitors 412, load 0.57) is
    stored as zigzag deltas of the scaled integers; any other column as float64 bits XOR-ed with the
    previous row. Both are byte-shuffled so the zero high bytes compress; `decode_block` returns the
    exact bit patterns (NaN included). Layout before zlib: one mode byte per column (digits, or 255 for
    XOR), then each column's 8 byte planes in column order.
    """
    m = np.ascontiguousarray(matrix, dtype="<f8")
    rows, cols = m.shape
    modes = bytearray()
    body = []
    for c in range(cols):
        col = np.ascontiguousarray(m[:, c])
        d = _decimal_digits(col) if rows else XOR
        modes.append(d)
        if d == XOR:
            bits = col.view("<u8")
            words = bits.copy()
            words[1:] ^= bits[:-1]
        else:
            k = np.round(col * 10.0**d).astype(np.int64)
            delta = np.diff(k, prepend=np.int64(0))
            words = ((delta << 1) ^ (delta >> 63)).view("<u8")
        body.append(_shuffle(words))
    return zlib.compress(bytes(modes) + b"".join(body), 6)


def decode_block(blob: bytes, rows: int, cols: int) -> np.ndarray:
    """The inverse of encode_block."""
    raw = np.frombuffer(zlib.decompress(blob), dtype=np.uint8)
    if raw.size != cols + rows * cols * 8:
        raise ValueError(f"block holds {raw.size} bytes, expected {cols + rows * cols * 8}")
    out = np.empty((rows, cols), dtype="<f8")
    for c in range(cols):
        mode = int(raw[c])
        at = cols + c * rows * 8
        words = _unshuffle(raw[at:at + rows * 8], rows)
        if mode == XOR:
            out[:, c] = np.bitwise_xor.accumulate(words).view("<f8") if rows else words.view("<f8")
        elif mode <= MAX_DIGITS:
            zz = words.view(np.int64)
            delta = (words >> np.uint64(1)).view(np.int64) ^ -(zz & 1)
            out[:, c] = np.cumsum(delta).astype(np.float64) / 10.0**mode
        else:
            raise ValueError(f"unknown column mode {mode}")
    return out
