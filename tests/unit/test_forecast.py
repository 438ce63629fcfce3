"""Capacity forecast: growth, headroom, time to a level, honest unknowns (runs in well under a second)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from surgewatch.analysis.correlation import LoadModel
from surgewatch.analysis.forecast import (
    UNKNOWN,
    capacity,
    growth_rate,
    headroom_multiple,
    seconds_to_level,
)


def _model(slope: float = 0.1, intercept: float = 10.0, r2: float = 0.95, n: int = 500) -> LoadModel:
    return LoadModel(lag_ticks=5, slope=slope, intercept=intercept, r2=r2, resid_sigma=1.0, n=n,
                     slope_se=slope / 100)


def test_growth_rate_of_exponential_traffic() -> None:
    rng = np.random.default_rng(1)
    ts = np.arange(0, 600, 2.0)
    traffic = 200 * np.exp(0.001 * ts) * (1 + rng.normal(0, 0.02, ts.shape[0]))
    assert growth_rate(ts, traffic) == pytest.approx(0.001, rel=0.1)


def test_growth_rate_of_flat_noisy_traffic_is_zero_not_noise() -> None:
    rng = np.random.default_rng(2)
    ts = np.arange(0, 600, 2.0)
    assert growth_rate(ts, 200 + rng.normal(0, 15, ts.shape[0])) == 0.0


def test_growth_rate_unknown_with_too_few_points() -> None:
    assert math.isnan(growth_rate(np.arange(5.0), np.ones(5)))


def test_headroom_is_the_traffic_multiple_that_reaches_the_limit() -> None:
    # 10 + 0.1 * 400 = 50% now; 90% needs 800 visitors = 2x
    assert headroom_multiple(10.0, np.array([0.1]), np.array([400.0]), 90.0) == pytest.approx(2.0)


def test_seconds_to_level_closed_form_and_edges() -> None:
    c, x = np.array([0.1]), np.array([400.0])
    assert seconds_to_level(10.0, c, x, np.array([math.log(2) / 600]), 90.0) == pytest.approx(600.0)
    assert seconds_to_level(10.0, c, x, np.array([0.0]), 90.0) == math.inf
    assert seconds_to_level(10.0, c, x, np.array([-0.01]), 90.0) == math.inf
    assert seconds_to_level(10.0, c, x, np.array([0.001]), 40.0) == 0.0
    assert math.isnan(seconds_to_level(10.0, c, x, np.array([math.nan]), 90.0))


def test_seconds_to_level_with_two_drivers_solves_the_sum() -> None:
    c, x, g = np.array([0.1, 0.2]), np.array([200.0, 100.0]), np.array([0.002, 0.0])
    t = seconds_to_level(10.0, c, x, g, 90.0)
    assert 10.0 + 20.0 * math.exp(0.002 * t) + 20.0 == pytest.approx(90.0, abs=1e-6)


def test_capacity_unknown_for_poor_or_missing_model() -> None:
    assert capacity(None, 100.0, 90.0, 0.001) is UNKNOWN
    assert capacity(_model(r2=0.2), 100.0, 90.0, 0.001) is UNKNOWN
    assert capacity(_model(n=5), 100.0, 90.0, 0.001) is UNKNOWN
    assert capacity(_model(), 0.0, 90.0, 0.001) is UNKNOWN
    assert not UNKNOWN.known


def test_capacity_of_a_good_model() -> None:
    cap = capacity(_model(), 400.0, 90.0, math.log(2) / 600)
    assert cap.known
    assert cap.traffic_at_limit == pytest.approx(800.0)
    assert cap.headroom == pytest.approx(2.0)
    assert cap.seconds_to_limit == pytest.approx(600.0)
    assert math.isnan(capacity(_model(), 400.0, 90.0, math.nan).seconds_to_limit)
