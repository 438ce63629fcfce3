"""Messages the dashboard's widgets and screens receive from outside Textual (the engine)."""

from __future__ import annotations

import numpy as np
from textual.message import Message

from ..snapshot import Snapshot


class SnapshotReady(Message):
    """A tick's snapshot, posted by the engine's subscriber; `band` is the detector's expected band (low,
    high per store row) at that tick, when analysis has run (charts draw it behind the series)."""

    def __init__(self, snapshot: Snapshot, band: tuple[np.ndarray, np.ndarray] | None) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.band = band
