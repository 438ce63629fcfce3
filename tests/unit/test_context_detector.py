"""The contextual-surprise detector, the shared onset scoring and the `surge-context` ensemble."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surgewatch.analysis.context import ContextDetector
from surgewatch.analysis.onset import Onset
from surgewatch.analysis.streaming import SurgeContextDetector, SurgeDetector, make_streaming_detector


def scores(det: object, columns: np.ndarray) -> np.ndarray:
    """Scores of a [time, series] matrix, one update per row."""
    return np.array([det.update(row).score for row in columns]).reshape(columns.shape)  # type: ignore[attr-defined]


def emitted(onset: Onset, raw: list[float]) -> np.ndarray:
    """Emitted scores of one series' raw scores."""
    ok = np.array([True])
    return np.array([onset(np.array([r]), ok)[0] for r in raw])


def test_onset_without_burst_fires_every_new_peak_at_once() -> None:
    out = emitted(Onset(200.0, 0.2, burst=0), [0.0, 0.3, 0.4, 0.5, 0.2, 0.1])
    np.testing.assert_allclose(out[:4], [0.0, 0.3, 0.4, 0.5])
    assert (out[4:] < 0.11).all()


def test_onset_with_burst_fires_a_rise_once_at_its_top_one_tick_late() -> None:
    out = emitted(Onset(200.0, 0.2, burst=5), [0.0, 0.3, 0.4, 0.5, 0.2, 0.1, 0.05])
    assert out[4] == 0.5  # the top, emitted on the first tick that does not rise
    others = np.delete(out, 4)
    assert (others <= 0.2 * 0.5 + 1e-12).all()


def test_onset_with_burst_fires_a_long_rise_at_most_burst_ticks_late() -> None:
    raw = [0.0] + [0.1 * k for k in range(1, 10)]  # rises for nine ticks
    out = emitted(Onset(200.0, 0.2, burst=3), raw)
    first = int(np.flatnonzero(out >= 0.1 * 1 - 1e-12)[0])
    assert first == 4  # rise starts at tick 1, followed for 3 ticks, emitted on tick 4
    assert out[4] == pytest.approx(0.3)


def test_onset_leaves_state_alone_on_missing_samples() -> None:
    o = Onset(10.0, 0.2, burst=0)
    ok, missing = np.array([True]), np.array([False])
    o(np.array([0.8]), ok)
    for _ in range(50):
        o(np.array([0.0]), missing)
    assert o(np.array([0.7]), ok)[0] == pytest.approx(0.14)  # the 0.8 peak has not decayed


def test_a_value_new_in_its_context_is_more_surprising_than_a_familiar_one() -> None:
    x = np.tile([0.0, 10.0], 300)  # strict alternation: low is always followed by high
    x[501] = 0.0  # low after low: the value is familiar, the pair is not
    s = scores(ContextDetector(onset=False), x[:, None])[:, 0]
    assert s[501] > 0.5
    assert s[400:501].max() < 0.1
    assert s[504:].max() < s[501]


def test_context_scores_stay_in_the_unit_interval_and_are_nan_exactly_when_missing() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, 3))
    x[rng.random(x.shape) < 0.05] = np.nan
    s = scores(ContextDetector(), x)
    assert np.array_equal(np.isnan(s), np.isnan(x))
    assert ((s[~np.isnan(s)] >= 0) & (s[~np.isnan(s)] <= 1)).all()


# magnitudes below 1e-300 become 0, so that scaling by 2**±20 stays exact (no subnormal underflow)
finite = st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: 0.0 if abs(v) < 1e-300 else v)
values = st.lists(
    st.one_of(finite, st.just(float("nan")), st.integers(-5, 5).map(float)),
    min_size=1, max_size=120,
)


@settings(max_examples=40, deadline=None)
@given(xs=values, k=st.integers(-20, 20), negate=st.booleans(), levels=st.sampled_from([5, 12]))
def test_context_symbols_do_not_change_when_a_series_is_scaled_or_mirrored(
    xs: list[float], k: int, negate: bool, levels: int
) -> None:
    x = np.array(xs)
    c = (-1.0 if negate else 1.0) * 2.0**k
    a = scores(ContextDetector(levels=levels, min_points=3), x[:, None])
    b = scores(ContextDetector(levels=levels, min_points=3), (c * x)[:, None])
    np.testing.assert_array_equal(a, b)


def test_context_series_added_between_ticks_start_fresh() -> None:
    rng = np.random.default_rng(2)
    x = np.cumsum(rng.normal(size=300))
    det = ContextDetector()
    grown = [det.update(x[t : t + 1] if t < 150 else np.array([x[t], x[t - 150]])).score for t in range(300)]
    alone = scores(ContextDetector(), x[:, None])[:, 0]
    np.testing.assert_array_equal([g[0] for g in grown], alone)
    np.testing.assert_array_equal([g[1] for g in grown[150:]], alone[:150])


def test_context_rejects_meaningless_settings() -> None:
    with pytest.raises(ValueError):
        ContextDetector(levels=1)
    with pytest.raises(ValueError):
        ContextDetector(orders=())
    with pytest.raises(ValueError):
        ContextDetector(table_bits=40)


def test_surge_context_keeps_surges_band_and_expected_value() -> None:
    rng = np.random.default_rng(5)
    x = (20 + rng.normal(0, 1, 300))[:, None]
    both, alone = make_streaming_detector("surge-context", 24), SurgeDetector(24, onset=False)
    assert isinstance(both, SurgeContextDetector)
    for row in x:
        a, b = both.update(row), alone.update(row)
    np.testing.assert_array_equal(a.expected, b.expected)
    np.testing.assert_array_equal(a.low, b.low)
    np.testing.assert_array_equal(a.z, b.z)


def test_surge_context_fires_on_a_pattern_break_that_surge_alone_misses() -> None:
    t = np.arange(2000)
    x = np.where(t % 4 < 2, 0.0, 10.0)  # period-4 square wave; no daily season
    x[1500:1510] = np.where(np.arange(10) % 2 == 0, 0.0, 10.0)  # same values, twice the frequency
    surge = scores(make_streaming_detector("surge", 0), x[:, None])[:, 0]
    both = scores(make_streaming_detector("surge-context", 0), x[:, None])[:, 0]
    quiet = slice(1000, 1500)
    assert both[1500:1515].max() > 2 * both[quiet].max()
    assert both[1500:1515].max() > surge[1500:1515].max()


def test_beyond_measures_how_far_a_value_lies_outside_the_range_so_far() -> None:
    det = ContextDetector(min_points=3)
    assert det.beyond(np.array([5.0]))[0] == 0.0  # no history yet
    for v in (0.0, 10.0, 4.0):
        det.update(np.array([v]))
    probes = [12.0, -5.0, 7.0, np.nan, np.inf]
    np.testing.assert_allclose([det.beyond(np.array([v]))[0] for v in probes], [0.2, 0.5, 0.0, 0.0, 0.0])
    assert det.beyond(np.array([1.0, 30.0]))[1] == 0.0  # a series added since has no range yet


@settings(max_examples=30, deadline=None)
@given(xs=st.lists(finite, min_size=4, max_size=60), probe=finite,
       k=st.integers(-20, 20), negate=st.booleans())
def test_beyond_is_the_same_when_a_series_is_scaled_or_mirrored(
    xs: list[float], probe: float, k: int, negate: bool
) -> None:
    c = (-1.0 if negate else 1.0) * 2.0**k  # exact in floating point
    a, b = ContextDetector(min_points=3), ContextDetector(min_points=3)
    for v in xs:
        a.update(np.array([v]))
        b.update(np.array([c * v]))
    assert a.beyond(np.array([probe]))[0] == b.beyond(np.array([c * probe]))[0]


def test_surge_context_fires_on_a_value_just_past_the_all_time_range() -> None:
    x = np.random.default_rng(4).uniform(0, 10, 1500)
    x[1200] = 11.0  # 10 % past the range: ordinary in size (2.4 mean deviations), new for the series
    with_extreme = scores(SurgeContextDetector(0), x[:, None])[:, 0]
    without = scores(SurgeContextDetector(0, extreme=0), x[:, None])[:, 0]
    assert with_extreme[1200:1206].max() > 0.4 > 0.1 > without[1200:1206].max()
    assert with_extreme[300:1200].max() < 0.3  # values inside the range never score for it


def test_cusum_only_adds_evidence_and_catches_a_sustained_shift_sooner() -> None:
    x = np.random.default_rng(0).normal(0, 1, 4000)
    x[3000:] += 3.0
    plain = scores(SurgeDetector(0, onset=False), x[:, None])[:, 0]
    cusum = scores(SurgeDetector(0, onset=False, cusum=2.5), x[:, None])[:, 0]
    assert (cusum >= plain - 1e-12).all()
    assert cusum[500:3000].max() < plain[500:3000].max() + 0.05  # no extra alarms on white noise
    assert cusum[3000:3050].max() > plain[3000:3050].max() + 0.1


def test_a_long_shift_leaves_the_cusum_and_its_quantile_bounded() -> None:
    x = np.random.default_rng(1).normal(0, 1, 4000)
    x[1000:3000] += 8.0  # learned by the baseline after a while
    capped, uncapped = SurgeDetector(0, cusum=2.5), SurgeDetector(0, cusum=2.5, cusum_cap=1e12)
    scores(capped, x[:, None]), scores(uncapped, x[:, None])
    assert capped.cus[:2].max() <= capped.cusum_cap
    assert capped.cus[2].max() <= 1.2 * capped.cusum_cap < uncapped.cus[2].max()  # later shifts still score


def test_surge_weights_of_one_score_like_the_defaults() -> None:
    x = np.random.default_rng(6).normal(10, 1, 600)
    x[400] += 9
    weighted = scores(SurgeDetector(24, weights=(1.0, 1.0, 1.0, 1.0)), x[:, None])
    np.testing.assert_allclose(weighted, scores(SurgeDetector(24), x[:, None]), atol=1e-12)
    halved = scores(SurgeDetector(24, onset=False, weights=(0.5, 0.5, 0.5, 0.5)), x[:, None])
    np.testing.assert_allclose(halved, 0.5 * scores(SurgeDetector(24, onset=False), x[:, None]), atol=1e-12)


def test_surge_rejects_meaningless_weights_and_cusum() -> None:
    with pytest.raises(ValueError):
        SurgeDetector(weights=(1.0, 1.0))
    with pytest.raises(ValueError):
        SurgeDetector(weights=(1.0, 0.0, 1.0, 1.0))
    with pytest.raises(ValueError):
        SurgeDetector(cusum=-1.0)
    with pytest.raises(ValueError):
        SurgeDetector(cusum=2.0, cusum_clip=0.0)
    with pytest.raises(ValueError):
        SurgeDetector(cusum=2.0, cusum_cap=0.0)


def test_surge_context_series_added_between_ticks_start_fresh_and_leave_others_alone() -> None:
    rng = np.random.default_rng(8)
    x = 50 + np.cumsum(rng.normal(size=400))
    x[300] += 25
    det = make_streaming_detector("surge-context", 24)
    grown = [det.update(x[t : t + 1] if t < 200 else np.array([x[t], x[t - 200]])).score for t in range(400)]
    alone = scores(make_streaming_detector("surge-context", 24), x[:, None])[:, 0]
    np.testing.assert_array_equal([g[0] for g in grown], alone)
    np.testing.assert_array_equal([g[1] for g in grown[200:]], alone[:200])


def test_a_series_far_from_zero_scores_like_the_same_series_near_zero() -> None:
    # the level stays float64 (only what is relative to it is float32): 1e9 + unit noise loses nothing
    x = 10 + np.random.default_rng(3).normal(size=800)
    x[700] += 8
    near = scores(make_streaming_detector("surge-context", 288), x[:, None])
    far = scores(make_streaming_detector("surge-context", 288), (x + 1e9)[:, None])
    np.testing.assert_allclose(far, near, atol=1e-5)


def test_daily_profile_and_context_counts_take_at_most_4_kb_per_series() -> None:
    det = make_streaming_detector("surge-context", 288)
    det.update(np.zeros(1000))
    assert isinstance(det, SurgeContextDetector)
    big = det.surge.cells.nbytes + det.surge.visits.nbytes + det.context.counts.nbytes
    assert big <= 4096 * 1000  # float32 profile, uint8 visit counts, 512 uint16 context slots


@pytest.mark.parametrize(("season", "dtype"), [(1, np.uint8), (100, np.uint16)])
def test_daily_profile_visit_counts_saturate_instead_of_wrapping(season: int, dtype: type) -> None:
    det = SurgeDetector(season, max_bins=1)  # per-day rate 0.2 (uint8 counts) and 0.002 (uint16)
    det.update(np.array([1.0]))
    assert det.visits.dtype == dtype
    top = np.iinfo(dtype).max
    det.visits[:] = top - 1
    for _ in range(3):
        det.update(np.array([1.0]))
    assert det.visits[0, 0] == top
