"""The first detector: causal rolling robust z-score with expected value, band and calibrated score."""

from __future__ import annotations

import numpy as np

from surgewatch.analysis.detectors import RollingRobustZ, robust_stats, z_to_score


def test_robust_stats_ignore_gaps() -> None:
    window = np.array([[1.0, 2.0, np.nan, 3.0, 100.0]])
    med, sigma, n = robust_stats(window)
    assert n[0] == 4 and med[0] == 2.5 and sigma[0] > 0


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
