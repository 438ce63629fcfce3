"""The expected band the dashboard shows is clamped to what the metric can physically be."""

from __future__ import annotations

import numpy as np

from surgewatch.analysis.analyzer import Analyzer, default_detector, replay
from surgewatch.analysis.significance import Floors, Significance, physical_range

T0 = 1_800_000_000.0
NAMES = ["host:a/cpu.percent", "host:a/net.rx_bps", "host:a/load.1", "host:a/temp.celsius"]


def test_a_noisy_idle_percent_band_stays_within_0_to_100_and_rates_stay_at_or_above_0() -> None:
    rng = np.random.default_rng(11)
    n = 900
    values = np.vstack([
        np.clip(3.0 + rng.normal(0, 8.0, n), 0, 100),  # idle CPU with wild jitter: raw band well below 0
        np.abs(rng.normal(0, 5e4, n)),  # a rate near 0
        np.abs(rng.normal(0, 0.5, n)),  # load near 0
        rng.normal(-5.0, 3.0, n),  # a gauge that may be negative: left alone
    ])
    an = Analyzer(default_detector(1.0), [], 1.0)
    res = list(replay(an, T0 + np.arange(n), NAMES, values, details_every=10**9))
    low = np.array([r.detector.low for r in res[300:]])
    high = np.array([r.detector.high for r in res[300:]])
    assert np.isfinite(low[:, :3]).all()
    assert (low[:, 0] >= 0).all() and (high[:, 0] <= 100).all() and (low[:, 0] == 0).any()
    assert (low[:, 1] >= 0).all() and (low[:, 1] == 0).any()
    assert (low[:, 2] >= 0).all()
    assert (low[:, 3] < 0).any(), "a gauge of unknown range is not clamped"


def test_physical_ranges_by_metric_name_and_nan_bands_stay_nan() -> None:
    assert physical_range("cpu.core3.percent") == (0.0, 100.0)
    assert physical_range("load.15") == (0.0, np.inf)
    assert physical_range("visitors") == (0.0, np.inf)
    assert physical_range("latency_ms") == (0.0, np.inf)
    assert physical_range("temp.celsius") == (-np.inf, np.inf)
    sig = Significance.build(NAMES, Floors())
    low, high = np.array([-19.0, np.nan, -0.2, -7.0]), np.array([125.0, np.nan, 1.0, -1.0])
    sig.clamp_band(low, high)
    assert low[0] == 0 and high[0] == 100 and np.isnan(low[1]) and np.isnan(high[1])
    assert low[2] == 0 and low[3] == -7.0 and high[3] == -1.0
