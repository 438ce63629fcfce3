"""The dashboard's band history: every series while the store is small, only asked-for series at fleet scale."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from surgewatch.tui.bands import BandHistory


class _Store:
    """Series names by row and the row of a name, as the engine answers them (series_names, row_of)."""

    def __init__(self, n: int) -> None:
        self.names = [f"host:web-{i:04d}/cpu.percent" for i in range(n)]
        self.index = {name: i for i, name in enumerate(self.names)}

    def args(self) -> tuple[list[str], Callable[[str], int | None]]:
        return self.names, self.index.get


def test_a_small_store_keeps_every_series_band_from_the_first_tick() -> None:
    bands = BandHistory(capacity=10, every_below=100)
    store = _Store(5)
    for t in range(3):
        bands.record(float(t), np.arange(5.0) + t, np.arange(5.0) + t + 10, *store.args())
    got = bands.band("host:web-0003/cpu.percent", 0.0)
    assert got is not None
    ts, low, high = got
    assert ts.tolist() == [0.0, 1.0, 2.0]
    assert low.tolist() == [3.0, 4.0, 5.0] and high.tolist() == [13.0, 14.0, 15.0]


def test_a_fleet_store_keeps_only_the_asked_series_and_stays_small() -> None:
    n = 10_000
    bands = BandHistory(capacity=720, every_below=1024, slots=16)
    store = _Store(n)
    low, high = np.arange(float(n)), np.arange(float(n)) + 1
    bands.record(0.0, low, high, *store.args())
    assert bands.band("host:web-0417/cpu.percent", 0.0) is None  # nothing kept yet: asking starts keeping it
    for t in range(1, 4):
        bands.record(float(t), low, high, *store.args())
    got = bands.band("host:web-0417/cpu.percent", 0.0)
    assert got is not None
    assert got[1].tolist() == [417.0, 417.0, 417.0] and got[2].tolist() == [418.0, 418.0, 418.0]
    assert bands.nbytes < 1_000_000  # a 10,000-row ring pair would be 230 MB


def test_the_least_recently_asked_series_makes_room_and_its_history_is_forgotten() -> None:
    n = 2000
    bands = BandHistory(capacity=10, every_below=100, slots=2)
    store = _Store(n)
    low = np.arange(float(n))
    bands.record(0.0, low, low, *store.args())
    a, b, c = (f"host:web-{i:04d}/cpu.percent" for i in (1, 2, 3))
    bands.band(a, 0.0)
    bands.band(b, 0.0)
    bands.record(1.0, low, low, *store.args())
    bands.band(c, 0.0)  # takes a's row
    bands.record(2.0, low, low, *store.args())
    got_c = bands.band(c, 0.0)
    assert got_c is not None and np.isnan(got_c[1][0]) and got_c[1][-1] == 3.0
    got_a = bands.band(a, 0.0)  # asked again: kept anew from now on, nothing of before
    assert got_a is not None and np.isnan(got_a[1]).all()
