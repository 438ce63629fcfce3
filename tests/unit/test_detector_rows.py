"""The streaming detectors' rows under churn: state grows in place, a reused row is a newcomer to the bit."""

from __future__ import annotations

import numpy as np
import pytest

from surgewatch.analysis.context import ContextDetector
from surgewatch.analysis.streaming import SurgeContextDetector, SurgeDetector, make_streaming_detector

PER_DAY = 96  # a daily profile of 96 bins, one sample each: every tick visits another bin


def _series(rng: np.random.Generator, rows: int, ticks: int) -> np.ndarray:
    t = np.arange(ticks)
    x = 50 + 10 * np.sin(2 * np.pi * t / PER_DAY) + rng.normal(0, 2, (rows, ticks))
    x[rng.random(x.shape) < 0.03] = np.nan
    return x


@pytest.mark.parametrize("name", ["surge", "surge-context"])
def test_a_reused_row_gives_to_the_bit_what_a_row_joining_at_that_tick_gives(name: str) -> None:
    rng = np.random.default_rng(7)
    past, newcomer = _series(rng, 6, 300), _series(rng, 1, 200)[0]
    newcomer[120] += 80.0  # a spike, so that scores are not all 0
    reused = make_streaming_detector(name, PER_DAY)
    joined = make_streaming_detector(name, PER_DAY)
    for k in range(past.shape[1]):
        reused.update(past[:, k])
        joined.update(past[:, k])
    reused.forget_rows(np.array([2]))  # a departed host's row, taken by a new series
    for k, x in enumerate(newcomer):
        others = past[:, k % past.shape[1]]
        got = reused.update(np.concatenate([others[:2], [x], others[3:]]))
        want = joined.update(np.concatenate([others[:2], [np.nan], others[3:], [x]]))  # a new row 6
        for field in ("score", "z", "expected", "low", "high"):
            assert np.array_equal(getattr(got, field)[2], getattr(want, field)[6], equal_nan=True), (field, k)
        for r in (0, 1, 3, 4, 5):  # the others go on as they were
            assert np.array_equal(got.score[r], want.score[r], equal_nan=True)


def test_detector_state_grows_in_place_while_the_rows_fit() -> None:
    det = make_streaming_detector("surge-context", PER_DAY)
    assert isinstance(det, SurgeContextDetector)
    det.update(np.full(1000, 5.0))
    cells, counts = det.surge.cells, det.context.counts
    det.update(np.full(1010, 5.0))  # ten new series: within the room kept for them
    assert det.surge.cells.shape == (PER_DAY, 2, 1010) and det.context.counts.shape[0] == 1010
    assert np.shares_memory(cells, det.surge.cells) and np.shares_memory(counts, det.context.counts)
    assert np.array_equal(det.surge.cells[:, :, :1000], cells)  # nothing moved
    det.update(np.full(2000, 5.0))  # past the room: a larger buffer, the state copied
    assert det.surge.cells.shape == (PER_DAY, 2, 2000) and not np.shares_memory(cells, det.surge.cells)


def test_rows_added_in_place_start_from_the_fresh_state() -> None:
    rng = np.random.default_rng(11)
    data = _series(rng, 4, 150)
    grown = SurgeDetector(PER_DAY)  # initial quantile 4
    for k in range(data.shape[1]):
        grown.update(data[:, k])
    grown.update(np.full(5, np.nan))  # one new row, within the room kept
    grown.update(np.full(7, np.nan))  # two more, past it
    fresh = {"n": 0, "level": 0, "scale": 0, "longrun": 0, "smooth": 0, "q": 4.0, "cells": 0, "visits": 0}
    for name, value in fresh.items():
        assert (getattr(grown, name)[..., 4:] == value).all(), name
    assert (grown.cus[:2, 4:] == 0).all() and (grown.cus[2, 4:] == 4.0).all()
    assert (grown.clock[4:] == grown.clock[0]).all()  # new series join the time of day of the others
    ctx = ContextDetector()
    for k in range(data.shape[1]):
        ctx.update(data[:, k])
    ctx.update(np.full(5, np.nan))
    ctx.update(np.full(7, np.nan))
    new = {"n": 0, "lo": np.inf, "hi": -np.inf, "q": 1.0, "orient": 0, "hist": 0}
    for name, value in new.items():
        assert (getattr(ctx, name)[..., 4:] == value).all(), name
    assert np.isnan(ctx.first[4:]).all() and not ctx.counts[4:].any()


def _outputs_over_days(monkeypatch: pytest.MonkeyPatch, counts: type | None, season: int, days: int) -> list:
    """Every output of a surge-context detector on 5 rows (gaps, a late joiner, a forgotten row) over `days`;
    `counts` forces the visit counts' dtype (None: the detector's choice)."""
    from surgewatch.analysis import streaming

    if counts is not None:
        monkeypatch.setattr(streaming, "visits_dtype", lambda per_day: counts)
    rng = np.random.default_rng(11)
    ticks = season * days
    t = np.arange(ticks)
    x = 50 + 10 * np.sin(2 * np.pi * t / season) + rng.normal(0, 2, (5, ticks))
    x[rng.random(x.shape) < 0.03] = np.nan
    x[:, ticks // 2:ticks // 2 + 20] += 30.0  # an episode, so that scores are not all 0
    det = SurgeContextDetector(season, surge_weights=(0.85, 0.85, 0.85, 1.0), cusum=2.5, table_bits=9)
    det.surge.max_bins = 4  # a few bins of season / 4 samples each: hundreds of visits per bin within the run
    out = []
    for k in range(ticks):
        if k == ticks // 3:
            det.forget_rows(np.array([1]))
        column = x[:4, k] if k < season else x[:, k]  # row 4 joins after a day
        o = det.update(column)
        out.append([getattr(o, f).copy() for f in ("score", "z", "expected", "low", "high")])
    monkeypatch.undo()
    return out


@pytest.mark.parametrize(("season", "narrow"), [(40, np.uint8), (400, np.uint16)])
def test_daily_bin_counts_in_the_narrow_dtype_give_to_the_bit_what_wide_counts_give(
        monkeypatch: pytest.MonkeyPatch, season: int, narrow: type) -> None:
    # 4 bins: 10 samples per bin and day at season 40 (per-day rate 0.02 >= 1/256: uint8 counts saturate at 255
    # after 26 days), 100 at season 400 (0.002: uint16)
    days = 40 if season == 40 else 4
    det = SurgeDetector(season, max_bins=4)
    det.update(np.zeros(2))
    assert det.visits.dtype == narrow
    chosen = _outputs_over_days(monkeypatch, None, season, days)
    wide = _outputs_over_days(monkeypatch, np.uint32, season, days)
    for k, (a, b) in enumerate(zip(chosen, wide, strict=True)):
        for f, (u, v) in enumerate(zip(a, b, strict=True)):
            assert np.array_equal(u, v, equal_nan=True), (k, f)
