"""Crafted recordings for tests: any values (inf, NaN, 1.75e308) and any event documents, written by the real writer."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from surgewatch.recording.writer import Recorder, RecordingWriter

from .record_config import CONFIG as RECORD_CONFIG

CONFIG = RECORD_CONFIG + """
[[traffic]]
name = "s"
source = "json"
url = "http://127.0.0.1:9/stats"
value = "visitors"

[[campaign]]
name = "c"
traffic = "s"
hosts = ["web-1"]
"""
NAMES = ("host:web-1/cpu.percent", "host:web-1/mem.percent", "traffic:s/visitors", "campaign:c/visitors")


def craft(path: Path, rows: Sequence[Sequence[float]], names: Sequence[str] = NAMES, t0: float = 1.7e9,
          events: Sequence[tuple[float, str, str]] = (), config: str = CONFIG) -> Path:
    """Write `rows` (one per tick, one value per name) and raw `events` (ts, kind, doc text) to a recording."""
    writer = RecordingWriter(str(path), {"tick_seconds": "1", "config_text": config, "config_label": "t.toml"},
                             [("host:web-1", 1.0, False), ("traffic:s", 1.0, False)])
    rec = Recorder(writer)
    arr = np.array(list(names))
    for i, row in enumerate(rows):
        rec.record(t0 + i, arr, np.array(row, dtype=np.float64), [])
    rec.close()
    if events:
        conn = sqlite3.connect(path)
        with conn:
            conn.executemany("INSERT INTO events(ts, kind, doc) VALUES (?, ?, ?)", events)
        conn.close()
    return path
