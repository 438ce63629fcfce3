"""The numpy ring buffers: vectorised appends, zero-copy windows, wrap-around, tiers, new series."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from surgewatch.store import FLEET_ROWS, Ring, SeriesStore


def test_window_is_a_view_not_a_copy_even_after_wrapping() -> None:
    ring = Ring(capacity=5, rows=2)
    for t in range(12):
        ring.append(float(t), np.array([t, 10.0 * t]))
    ts, data = ring.window(4)
    assert ts.tolist() == [8.0, 9.0, 10.0, 11.0]
    assert data[1].tolist() == [80.0, 90.0, 100.0, 110.0]
    assert np.shares_memory(data, ring.data)


def test_window_is_capped_by_what_was_appended() -> None:
    ring = Ring(capacity=10, rows=1)
    ring.append(1.0, np.array([1.0]))
    ring.append(2.0, np.array([2.0]))
    ts, data = ring.window(5)
    assert ts.tolist() == [1.0, 2.0] and data.shape == (1, 2)


def test_series_that_appear_later_get_rows_and_nan_history() -> None:
    store = SeriesStore(tick=1.0, history=600)
    store.append(1.0, store.rows(["a"]), np.array([1.0]))
    store.append(2.0, store.rows(["a", "b"]), np.array([2.0, 5.0]))
    window = store.window(10)
    assert list(window.names) == ["a", "b"]
    assert np.isnan(window.values[1, 0]) and window.values[1, 1] == 5.0


def test_latest_keeps_the_last_value_across_missing_ticks() -> None:
    store = SeriesStore(tick=1.0, history=600)
    store.append(1.0, store.rows(["a"]), np.array([7.0]))
    store.append(2.0, np.zeros(0, dtype=np.intp), np.zeros(0))
    assert store.latest("a") == 7.0 and np.isnan(store.window(10).values[0, -1])


def test_rows_grow_past_the_initial_capacity() -> None:
    store = SeriesStore(tick=1.0, history=600)
    names = [f"host:h{i}/cpu.percent" for i in range(100)]
    store.append(1.0, store.rows(names), np.arange(100.0))
    assert store.latest("host:h99/cpu.percent") == 99.0 and len(store) == 100


def test_coarse_tier_holds_per_minute_means_beyond_the_fine_span() -> None:
    store = SeriesStore(tick=1.0, history=7200, fine_span=120, coarse_step=60)
    rows = store.rows(["a"])
    for t in range(600):
        store.append(float(t), rows, np.array([float(t // 60)]))
    fine = store.window(60)
    assert fine.values.shape[1] == 60
    whole = store.window(None)
    assert whole.values[0].tolist() == [float(m) for m in range(10)]


def _tick(store: SeriesStore, ts: float, values: dict[str, float]) -> None:
    store.append(ts, store.rows(values.keys()), np.fromiter(values.values(), dtype=np.float64))


def test_idle_series_are_evicted_and_their_rows_reused_with_no_history() -> None:
    store = SeriesStore(tick=1.0, history=600)
    _tick(store, 1.0, {"a": 1.0, "b": 2.0})
    for t in range(2, 6):
        _tick(store, float(t), {"a": float(t)})
    rows, names = store.evict_idle(3)
    assert rows.tolist() == [1] and names == ["b"]
    assert "b" not in store.index and store.names[1] == "" and store.live == 1
    assert np.isnan(store.window(10).values[1]).all() and np.isnan(store.latest("b"))
    _tick(store, 6.0, {"a": 6.0, "c": 9.0})  # a new series takes the freed row
    assert store.index["c"] == 1 and len(store) == 2 and store.reused == [1]
    assert np.isnan(store.window(10).values[1, :-1]).all() and store.latest("c") == 9.0
    assert store.evict_idle(3)[1] == []  # "a" and "c" arrived in the last 3 ticks


def test_rows_stay_bounded_under_churn() -> None:
    store = SeriesStore(tick=1.0, history=600)
    for t in range(200):
        _tick(store, float(t), {f"host:pod-{t}-{i}/cpu.percent": 1.0 for i in range(50)})
        store.evict_idle(5)
    assert store.live <= 50 * 6 and len(store) <= 50 * 7


def test_new_series_beyond_max_series_are_dropped_with_one_warning(caplog) -> None:
    store = SeriesStore(tick=1.0, history=600, max_series=10)
    with caplog.at_level("WARNING", logger="surgewatch.store"):
        for t in range(3):
            names = [f"s{t}-{i}" for i in range(8)]
            rows = store.rows(names)
            store.append(float(t), rows, np.ones(len(names)))
    assert store.live == 10 and store.dropped == 14 and store.fine.rows <= 16
    assert [r.getMessage() for r in caplog.records] == [
        "store: 10 series held, the max_series cap; new series are dropped until idle ones are evicted "
        "(raise [monitor] max_series to keep more)"]
    assert store.latest("s1-1") == 1.0 and np.isnan(store.latest("s1-2"))


def test_a_tick_whose_time_goes_back_is_clamped_with_one_warning(caplog) -> None:
    store = SeriesStore(tick=1.0, history=600)
    with caplog.at_level("WARNING", logger="surgewatch.store"):
        for ts in (100.0, 101.0, 50.0, 51.0, 102.0):
            _tick(store, ts, {"a": ts})
    window = store.window(10)
    assert window.ts.tolist() == [100.0, 101.0, 101.0, 101.0, 102.0]
    assert window.values[0].tolist() == [100.0, 101.0, 50.0, 51.0, 102.0]  # no sample lost
    assert len(caplog.records) == 1 and "went back by 51s" in caplog.records[0].getMessage()


def test_windows_stay_right_across_many_moves_back_of_the_columns() -> None:
    ring = Ring(capacity=7, rows=1)
    for t in range(100):
        ring.append(float(t), np.array([float(t)]))
        for n in (1, 3, 7):
            ts, data = ring.window(n)
            want = [float(k) for k in range(max(0, t - n + 1), t + 1)]
            assert ts.tolist() == want and data[0].tolist() == want


def test_a_fleet_of_10000_series_holds_six_hours_in_under_25_mib() -> None:
    store = SeriesStore(tick=15.0, history=6 * 3600)
    rows = store.rows([f"host:web-{i:04d}/m{j}" for i in range(1000) for j in range(10)])
    for t in range(8):  # two coarse (1-minute) columns
        store.append(15.0 * t, rows, np.ones(rows.shape[0]))
    held = store.fine.data.nbytes + store.coarse.data.nbytes
    assert held < 25 * 2**20  # 24 MiB; 35 MiB with a float64 fine tier and a tenth of slack, 92 MiB doubled
    assert store.coarse.data.dtype == np.float32 and store.window(None).values.shape == (10_000, 2)


def test_new_series_within_the_reservation_take_rows_without_copying_the_ring() -> None:
    store = SeriesStore(tick=1.0, history=600)
    rows = store.rows([f"s{i}" for i in range(3000)])
    store.append(1.0, rows, np.arange(3000.0))
    before = store.fine.data
    assert store.fine.rows == 3000 and store.fine.reserved >= 6000  # reserved rows are never written
    store.append(2.0, store.rows([f"s{i}" for i in range(3001)]), np.arange(3001.0))
    assert store.fine.rows == 3001  # exactly the rows in use, not a quarter more
    assert np.shares_memory(before, store.fine.data)  # the same buffer: nothing copied
    window = store.window(10)
    assert np.isnan(window.values[3000, 0]) and window.values[3000, 1] == 3000.0  # the new row: empty before
    assert window.values[2999].tolist() == [2999.0, 2999.0]


def test_past_the_reservation_the_rows_move_to_a_larger_one_with_their_history() -> None:
    ring = Ring(capacity=5, rows=2)
    ring.max_rows = 50
    for t in range(7):  # past one move back of the columns
        ring.append(float(t), np.array([float(t), -float(t)]))
    ring.append(7.0, np.arange(30.0))  # 30 rows: a reservation of min(60, max_rows) rows
    assert ring.rows == 30 and ring.reserved == 50
    ts, data = ring.window(5)
    assert ts.tolist() == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert data[0].tolist() == [3.0, 4.0, 5.0, 6.0, 0.0] and data[1].tolist() == [-3.0, -4.0, -5.0, -6.0, 1.0]
    assert np.isnan(data[2:, :-1]).all() and data[2:, -1].tolist() == list(range(2, 30))


def test_a_backfill_into_an_empty_store_holds_what_appending_each_tick_would() -> None:
    rng = np.random.default_rng(7)
    names = [f"host:h{i}/cpu.percent" for i in range(20)]  # more than the rings' first 16 rows
    n = 437  # not a whole number of coarse steps
    ts = [1000.0 + 2.0 * k for k in range(n)]
    values = rng.normal(50, 10, (len(names), n))
    values[rng.random(values.shape) < 0.1] = np.nan
    values[3] = np.nan  # a series with no value at all
    filled, appended = SeriesStore(tick=2.0, history=6 * 3600), SeriesStore(tick=2.0, history=6 * 3600)
    filled.backfill(ts, {name: values[i].tolist() for i, name in enumerate(names)})
    rows = appended.rows(names)
    for k, t in enumerate(ts):
        appended.append(t, rows, values[:, k])
    for store in (filled, appended):  # and live ticks after it, one with a new series
        store.append(ts[-1] + 2.0, store.rows([names[0], "host:new/cpu.percent"]), np.array([1.0, 2.0]))
    assert filled.names == appended.names and filled.ticks == appended.ticks
    for a, b in ((filled.fine, appended.fine), (filled.coarse, appended.coarse)):
        assert a.count == b.count and a.end == b.end
        np.testing.assert_array_equal(a.ts, b.ts)
        np.testing.assert_array_equal(a.data[: len(names) + 1], b.data[: len(names) + 1])
    n_rows = len(filled)
    np.testing.assert_array_equal(filled.last_value[:n_rows], appended.last_value[:n_rows])
    np.testing.assert_array_equal(filled.last_ts[:n_rows], appended.last_ts[:n_rows])
    np.testing.assert_array_equal(filled.seen_tick[:n_rows], appended.seen_tick[:n_rows])


def _resident_kib(array: np.ndarray) -> tuple[int, int] | None:
    """(resident, size) in KiB of the memory mapping that holds `array` (Linux), None elsewhere."""
    address = array.__array_interface__["data"][0]
    try:
        lines = open("/proc/self/smaps").read().splitlines()  # noqa: SIM115 (read whole at once)
    except OSError:
        return None
    inside = False
    for line in lines:
        head = line.split()[0]
        if "-" in head and ":" not in head:  # a mapping's first line: start-end perms ...
            start, end = (int(x, 16) for x in head.split("-"))
            inside, size = start <= address < end, (end - start) // 1024
        elif inside and head == "Rss:":
            return int(line.split()[1]), size
    return None


def test_reserved_rows_that_no_series_uses_cost_no_memory() -> None:
    ring = Ring(capacity=1000, rows=1)  # a row is ~4 KiB (one page)
    ring.max_rows = 40_000
    ring.append(0.0, np.arange(10_000.0))  # 10,000 rows in use of a reservation of 20,000 (~80 MiB mapped)
    assert ring.rows == 10_000 and ring.reserved == 20_000
    got = _resident_kib(ring.data)
    if got is None:
        return  # no /proc: the reservation is still right, only its residency is not visible here
    resident, size = got
    assert size >= 20_000 * ring.width * 4 // 1024  # the whole reservation is mapped ...
    assert resident < 0.6 * size  # ... and only the rows in use (half of it) are resident


def test_the_tiers_hold_float32_and_the_latest_value_stays_exact() -> None:
    store = SeriesStore(tick=1.0, history=600)
    _tick(store, 1.0, {"host:a/mem.available_bytes": 16_123_456_789.0, "host:a/cpu.percent": 42.1})
    assert store.fine.data.dtype == np.float32 and store.coarse.data.dtype == np.float32
    assert store.latest("host:a/mem.available_bytes") == 16_123_456_789.0 and store.latest("host:a/cpu.percent") == 42.1
    held = store.window(10).values[:, -1]
    assert held.tolist() == [float(np.float32(16_123_456_789.0)), float(np.float32(42.1))]
    assert abs(held[0] / 16_123_456_789.0 - 1) < 1e-7  # 7 significant digits


def test_a_lowered_max_series_still_lets_held_rows_grow_to_what_is_asked() -> None:
    ring = Ring(capacity=4, rows=2)
    ring.max_rows = 3  # lowered below what is asked next: never fewer rows than asked
    ring.append(0.0, np.arange(5.0))
    assert ring.rows == 5 and ring.reserved == 5 and ring.window(1)[1][:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


HEAP_PROBE = r"""
import sys
import numpy as np
from surgewatch.store import SeriesStore

def heap_kib():
    kib = 0
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            lo, hi = line.split()[0].split("-")
            kib += (int(hi, 16) - int(lo, 16)) // 1024
    return kib

store = SeriesStore(tick=15.0, history=3600)
store.rows([f"host:web-{i}/cpu.percent" for i in range(int(sys.argv[1]))])
freed = np.ones((24 << 20) // 8)  # a mapped 24 MiB block, freed: glibc would raise its threshold to its size
del freed
before = heap_kib()
kept = np.ones((8 << 20) // 8)
print(heap_kib() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="glibc's malloc")
def test_a_store_holding_a_fleet_keeps_large_arrays_out_of_the_heap() -> None:
    def heap_growth(series: int) -> int:
        out = subprocess.run([sys.executable, "-c", HEAP_PROBE, str(series)], capture_output=True, text=True,
                             check=True, env={k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")})
        return int(out.stdout.split()[-1])

    assert heap_growth(100) >= 6 * 1024  # a few series: glibc's own rule, the 8 MiB array is carved from the heap
    assert heap_growth(FLEET_ROWS + 1) < 1024  # a fleet: it is a mapping of its own, given back when freed


def _vm_flags(a: np.ndarray) -> list[str]:
    """The VmFlags of the mappings that hold `a`'s data (/proc/self/smaps)."""
    start = a.__array_interface__["data"][0]
    end, flags, inside = start + a.nbytes, [], False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                lo, hi = (int(v, 16) for v in head[0].split("-"))
                inside = lo < end and hi > start
            elif inside and head[0] == "VmFlags:":
                flags.append(" ".join(head[1:]))
    return flags


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="Linux's /proc/self/smaps")
def test_the_daily_profile_and_context_counts_live_in_mappings_without_huge_pages() -> None:
    # a huge page is resident whole once any byte is written: the profile visited bin by bin would be resident
    # 20 bins ahead, spare rows included (numpy asks for huge pages on its arrays of 4 MiB or more)
    from surgewatch.analysis.streaming import make_streaming_detector

    det = make_streaming_detector("surge-context", 5760)
    det.update(np.zeros(4000))  # cells 288 x 2 x 5,000 float32: 11 MiB
    for a in (det.surge.cells, det.surge.visits, det.context.counts):  # type: ignore[union-attr]
        flags = _vm_flags(a)
        assert flags and all(" hg" not in f" {f}" for f in flags), flags
        if hasattr(__import__("mmap"), "MADV_NOHUGEPAGE"):
            assert all(" nh" in f" {f}" for f in flags), flags


def test_untouched_zeros_are_writable_zeros_of_the_shape_asked_for() -> None:
    from surgewatch.store import untouched_zeros

    a = untouched_zeros((3, 4, 5), np.uint16)
    assert a.shape == (3, 4, 5) and a.dtype == np.uint16 and not a.any()
    a[1, 2, 3] = 7
    assert a.sum() == 7
    empty = untouched_zeros((0, 5), np.float32)
    assert empty.shape == (0, 5)


def test_untouched_zeros_where_the_kernel_refuses_the_advice_are_zeros_all_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import mmap

    from surgewatch.store import untouched_zeros

    monkeypatch.setattr(mmap, "MADV_NOHUGEPAGE", 12345, raising=False)  # no such advice: EINVAL
    a = untouched_zeros(1000, np.float64)
    assert a.shape == (1000,) and not a.any()
