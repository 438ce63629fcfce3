"""Invariants of the streaming `surge` detectors: causal, scale-free, gap-tolerant, scores in [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surgewatch.analysis.detectors import DetectorOutput
from surgewatch.analysis.streaming import (
    DETECTORS,
    ConstantDetector,
    SurgeContextDetector,
    SurgeDetector,
    make_streaming_detector,
)

NAMES = sorted(DETECTORS)


def run(det: SurgeDetector | SurgeContextDetector, columns: np.ndarray) -> np.ndarray:
    """Scores of a [time, series] matrix, one update per row."""
    return np.array([det.update(row).score for row in columns]).reshape(columns.shape)


def synthetic(seed: int, n: int, season: int) -> np.ndarray:
    """A noisy daily pattern with a spike and a level shift, from a seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 10 + rng.normal(0, 1, n) + (3 * np.sin(2 * np.pi * t / season) if season else 0)
    x[n // 2] += 15
    x[3 * n // 4 :] += 6
    return x


# magnitudes below 1e-300 become 0, so that scaling by 2**±20 stays exact (no subnormal underflow)
finite = st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: 0.0 if abs(v) < 1e-300 else v)
values = st.lists(
    st.one_of(finite, st.just(float("nan")), st.integers(-5, 5).map(float)),
    min_size=1, max_size=120,
)


@settings(max_examples=40, deadline=None)
@given(xs=values, cut=st.integers(0, 120), name=st.sampled_from(NAMES), season=st.sampled_from([0, 7]))
def test_appending_future_samples_never_changes_past_scores(
    xs: list[float], cut: int, name: str, season: int
) -> None:
    x = np.array(xs)[:, None]
    cut = min(cut, len(x))
    full = run(make_streaming_detector(name, season), x)
    prefix = run(make_streaming_detector(name, season), x[:cut])
    np.testing.assert_array_equal(full[:cut], prefix)


@settings(max_examples=40, deadline=None)
@given(xs=values, name=st.sampled_from(NAMES), season=st.sampled_from([0, 5]))
def test_scores_are_in_unit_interval_or_nan_exactly_where_the_sample_is_missing(
    xs: list[float], name: str, season: int
) -> None:
    x = np.array(xs)
    x[::17] = np.inf  # non-finite values are missing samples too
    s = run(make_streaming_detector(name, season), x[:, None])[:, 0]
    missing = ~np.isfinite(x)
    assert np.isnan(s[missing]).all()
    assert ((s[~missing] >= 0) & (s[~missing] <= 1)).all()


@settings(max_examples=30, deadline=None)
@given(xs=values, k=st.integers(-20, 20), negate=st.booleans(), name=st.sampled_from(NAMES))
def test_scores_do_not_change_when_a_series_is_scaled_by_a_power_of_two(
    xs: list[float], k: int, negate: bool, name: str
) -> None:
    x = np.array(xs)
    c = (-1.0 if negate else 1.0) * 2.0**k  # exact in floating point, so the scores must be identical
    a = run(make_streaming_detector(name, 6), x[:, None])
    b = run(make_streaming_detector(name, 6), (c * x)[:, None])
    np.testing.assert_array_equal(a, b)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(1e-3, 1e3), shift=st.floats(-1e3, 1e3),
       name=st.sampled_from(NAMES))
def test_scores_barely_change_under_any_positive_scale_and_shift(
    seed: int, scale: float, shift: float, name: str
) -> None:
    x = synthetic(seed, 400, 24)
    a = run(make_streaming_detector(name, 24), x[:, None])
    b = run(make_streaming_detector(name, 24), (scale * x + shift)[:, None])
    np.testing.assert_allclose(a, b, atol=1e-5)  # state relative to the level is float32 (eps 6e-8)


@settings(max_examples=30, deadline=None)
@given(xs=values, name=st.sampled_from(NAMES))
def test_without_daily_profile_a_missing_sample_changes_nothing(xs: list[float], name: str) -> None:
    x = np.array(xs)
    with_gaps = run(make_streaming_detector(name), x[:, None])[:, 0]
    present = ~np.isnan(x)
    without = run(make_streaming_detector(name), x[present][:, None])[:, 0]
    np.testing.assert_array_equal(with_gaps[present], without)


@settings(max_examples=15, deadline=None)
@given(seeds=st.lists(st.integers(0, 2**16), min_size=2, max_size=5), name=st.sampled_from(NAMES))
def test_series_updated_together_score_as_if_alone(seeds: list[int], name: str) -> None:
    cols = np.stack([synthetic(s, 200, 12) for s in seeds], axis=1)
    cols[50:60, 0] = np.nan
    together = run(make_streaming_detector(name, 12), cols)
    for j in range(cols.shape[1]):
        alone = run(make_streaming_detector(name, 12), cols[:, j : j + 1])[:, 0]
        np.testing.assert_array_equal(together[:, j], alone)


def test_series_added_between_ticks_start_fresh_and_leave_others_alone() -> None:
    x = synthetic(1, 300, 0)
    det = SurgeDetector()
    grown = []
    for t in range(300):
        row = x[t : t + 1] if t < 150 else np.array([x[t], x[t - 150]])
        grown.append(det.update(row).score)
    alone = run(SurgeDetector(), x[:, None])[:, 0]
    np.testing.assert_array_equal([g[0] for g in grown], alone)
    np.testing.assert_array_equal([g[1] for g in grown[150:]], alone[:150])


def test_a_spike_scores_high_at_its_start_and_its_repeats_are_damped() -> None:
    rng = np.random.default_rng(3)
    x = 100 + rng.normal(0, 1, 600)
    x[400:405] += 30  # one episode: five equal spikes
    s = run(SurgeDetector(smooth_alphas=(1.0,)), x[:, None])[:, 0]
    assert s[400] > 0.5
    assert s[400] > 2 * s[100:400].max()
    assert (s[401:405] < 0.25 * s[400]).all()  # none beats the episode's peak: damped


def test_a_sustained_episode_scores_high_at_its_start() -> None:
    rng = np.random.default_rng(3)
    x = 100 + rng.normal(0, 1, 600)
    x[400:405] += 30
    s = run(SurgeDetector(), x[:, None])[:, 0]
    assert s[400] > 0.5
    assert s[400] > 2 * s[100:400].max()


def test_a_level_shift_fires_at_its_start_and_is_learned() -> None:
    rng = np.random.default_rng(4)
    x = 50 + rng.normal(0, 1, 3000)
    x[1500:] += 10
    s = run(make_streaming_detector("surge-level"), x[:, None])[:, 0]
    assert s[1500:1510].max() > 0.5
    assert s[2900:].max() < s[1500:1510].max() / 2


def test_output_band_surrounds_the_expected_value_and_z_is_signed() -> None:
    rng = np.random.default_rng(5)
    det = SurgeDetector()
    for v in 20 + rng.normal(0, 1, 200):
        det.update(np.array([v]))
    out = det.update(np.array([40.0]))
    assert isinstance(out, DetectorOutput)
    assert out.low[0] < out.expected[0] < out.high[0]
    assert 19 < out.expected[0] < 21
    assert out.z[0] > 5
    assert det.update(np.array([0.0])).z[0] < -5


def test_a_daily_profile_is_expected_after_a_few_days() -> None:
    t = np.arange(24 * 10)
    x = 100 + 20 * np.sin(2 * np.pi * t / 24)
    det = SurgeDetector(24)
    for v in x:
        out = det.update(np.array([v]))
    nxt = 100 + 20 * np.sin(2 * np.pi * len(t) / 24)
    assert abs(det.update(np.array([nxt])).expected[0] - nxt) < 1.0
    del out


def test_constant_detector_scores_every_present_sample_the_same() -> None:
    out = ConstantDetector(0.5).update(np.array([1.0, np.nan]))
    assert out.score[0] == 0.5 and np.isnan(out.score[1])


def test_unknown_detector_name_is_rejected_with_the_available_names() -> None:
    with pytest.raises(ValueError, match="surge"):
        make_streaming_detector("nope")


def test_fine_ticks_share_a_bounded_daily_profile() -> None:
    per_day = 1440  # a 1-minute tick
    det = SurgeDetector(per_day, max_bins=96)
    t = np.arange(3 * per_day)
    x = 50 + 10 * np.sin(2 * np.pi * t / per_day)
    for v in x:
        det.update(np.array([v]))
    assert det.cells.shape == (96, 2, 1) and det.visits.shape == (96, 1)  # bins, fields, series
    nxt = 50 + 10 * np.sin(2 * np.pi * len(t) / per_day)
    assert abs(det.update(np.array([nxt])).expected[0] - nxt) < 1.5
