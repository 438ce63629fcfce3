"""The first detector: causal rolling robust z-score with expected value, band and calibrated score."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surgewatch.analysis.detectors import RollingRobustZ, robust_stats, z_to_score
from surgewatch.analysis.registry import detector_names, make_detector


def test_robust_stats_ignore_gaps() -> None:
    window = np.array([[1.0, 2.0, np.nan, 3.0, 100.0]])
    med, sigma, n = robust_stats(window)
    assert n[0] == 4 and med[0] == 2.5 and sigma[0] > 0


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 9), st.integers(0, 40), st.integers(0, 2**32 - 1))
def test_robust_stats_equal_nan_median_and_mad_for_any_gaps(rows: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    window = rng.normal(0, 1, (rows, width)).round(1)  # ties on purpose
    window[rng.random((rows, width)) < rng.random((rows, 1))] = np.nan  # a different gap rate per row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        med = np.nanmedian(window, axis=1) if width else np.full(rows, np.nan)
        mad = np.nanmedian(np.abs(window - med[:, None]), axis=1) if width else np.full(rows, np.nan)
    got_med, got_sigma, n = robust_stats(window)
    assert np.array_equal(n, np.sum(~np.isnan(window), axis=1))
    np.testing.assert_allclose(got_med, med, equal_nan=True)
    np.testing.assert_allclose(got_sigma, 1.4826 * mad, equal_nan=True)


def test_robust_stats_on_many_differently_gapped_rows_match_the_same_definition() -> None:
    rng = np.random.default_rng(3)
    window = rng.normal(0, 1, (30, 60))
    for r in range(30):  # 30 distinct valid counts: the sorting path
        window[r, :r] = np.nan
    med, sigma, _ = robust_stats(window)
    np.testing.assert_allclose(med, np.nanmedian(window, axis=1))
    np.testing.assert_allclose(sigma, 1.4826 * np.nanmedian(np.abs(window - med[:, None]), axis=1))


def test_a_spike_scores_high_and_normal_noise_scores_zero() -> None:
    rng = np.random.default_rng(1)
    det = RollingRobustZ(window=200, min_points=20)
    out = None
    for _ in range(300):
        out = det.update(np.array([50 + rng.normal(0, 2)]))
    assert out is not None and out.score[0] < 0.5
    spike = det.update(np.array([90.0]))
    assert spike.score[0] > 0.9 and spike.z[0] > 10
    assert spike.low[0] < 50 < spike.high[0] and abs(spike.expected[0] - 50) < 1


def test_the_current_value_is_judged_only_against_the_past() -> None:
    det = RollingRobustZ(window=50, min_points=5)
    for v in [10.0, 11.0, 9.0, 10.0, 10.5, 9.5]:
        det.update(np.array([v]))
    first = det.update(np.array([30.0]))
    assert first.expected[0] == 10.0  # the 30 itself is not part of its own baseline


def test_too_little_history_gives_no_score_and_missing_values_stay_missing() -> None:
    det = RollingRobustZ(window=50, min_points=10)
    out = det.update(np.array([1.0, np.nan]))
    assert np.isnan(out.score).all()
    for _ in range(20):
        out = det.update(np.array([1.0, np.nan]))
    assert out.score[0] == 0.0 and np.isnan(out.score[1])


def test_new_series_can_join_between_ticks() -> None:
    det = RollingRobustZ(window=20, min_points=3)
    det.update(np.array([1.0]))
    out = det.update(np.array([1.0, 2.0, 3.0]))
    assert out.score.shape == (3,)


def test_score_is_zero_below_onset_and_tends_to_one() -> None:
    z = np.array([0.0, 2.9, -5.0, 20.0, np.nan])
    s = z_to_score(z)
    assert s[0] == 0 and s[1] == 0 and 0 < s[2] < 1 and s[3] > 0.99 and np.isnan(s[4])


def test_staggered_refresh_tracks_the_exact_statistics_closely() -> None:
    rng = np.random.default_rng(5)
    exact, staggered = RollingRobustZ(window=300, min_points=20), RollingRobustZ(window=300, min_points=20, refresh=3)
    data = 50 + rng.normal(0, 2, (400, 6))
    data[350, 2] = 90.0  # a spike on one series
    for k, column in enumerate(data):
        a, b = exact.update(column), staggered.update(column)
        if k < 20:  # short history: refreshed every tick, so identical
            np.testing.assert_array_equal(a.expected, b.expected)
        else:  # a median of n samples moves about sigma/sqrt(n) per tick: 0.3 sigma early, 0.1 sigma later
            np.testing.assert_allclose(b.expected, a.expected, atol=0.6 if k < 100 else 0.2)
    assert a.score[2] == 0 and b.score[2] == 0
    spike_exact, spike_staggered = RollingRobustZ(window=300, refresh=1), RollingRobustZ(window=300, refresh=3)
    for column in data[:350]:
        spike_exact.update(column)
        spike_staggered.update(column)
    assert spike_exact.update(data[350]).score[2] > 0.9 and spike_staggered.update(data[350]).score[2] > 0.9


def test_make_detector_staggers_only_long_robust_windows() -> None:
    from surgewatch.analysis.registry import make_detector

    long, short = make_detector("robust-z", 1.0, window=900), make_detector("robust-z")
    assert isinstance(long, RollingRobustZ) and long.refresh == 3
    assert isinstance(short, RollingRobustZ) and short.refresh == 1


def test_the_light_name_lists_match_the_detectors_that_can_be_built() -> None:
    from surgewatch.analysis import DEFAULT_LIVE_DETECTOR, DETECTOR_NAMES, LIVE_DETECTORS
    from surgewatch.analysis.registry import detector_names, make_detector

    assert set(DETECTOR_NAMES) == {*detector_names(), "null"}  # `eval` adds NAB's null detector
    assert set(LIVE_DETECTORS) == set(detector_names()) and DEFAULT_LIVE_DETECTOR in LIVE_DETECTORS
    for name in LIVE_DETECTORS:
        assert make_detector(name, 2.0, window=450).name == name


@pytest.mark.parametrize("name", detector_names())
def test_a_forgotten_row_judges_a_new_series_as_a_fresh_detector_would(name: str) -> None:
    rng = np.random.default_rng(3)
    old = rng.normal(50.0, 5.0, (2, 120))
    new = np.concatenate([rng.normal(10.0, 1.0, 80), [40.0], rng.normal(10.0, 1.0, 20)])
    reused = make_detector(name, tick_seconds=2.0)
    for k in range(old.shape[1]):
        reused.update(old[:, k])
    reused.forget_rows(np.array([0]))  # type: ignore[attr-defined]
    # fresh: a row that never had a sample, at the same time of day (daily profiles are by time of day)
    fresh = make_detector(name, tick_seconds=2.0)
    for k in range(old.shape[1]):
        fresh.update(np.array([np.nan, old[1, k]]))
    for k, x in enumerate(new):
        got = reused.update(np.array([x, old[1, k % old.shape[1]]]))
        want = fresh.update(np.array([x, old[1, k % old.shape[1]]]))
        for field in ("score", "z", "expected", "low", "high"):
            np.testing.assert_allclose(getattr(got, field)[0], getattr(want, field)[0], err_msg=f"{field} at {k}")
