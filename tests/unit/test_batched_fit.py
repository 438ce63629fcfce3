"""A fleet's refit fits thousands of host rows at once: each row's model must be the one fitting it alone gives,
to the bit (rows sharing a design share one inverse; the trimming pass refits only the rows it trimmed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from surgewatch.analysis.analyzer import _same_model, _same_models
from surgewatch.analysis.correlation import HostModel, fit_host_models, fit_hosts, lag_correlations

FIELDS = ("row", "drivers", "lags", "coefs", "intercept", "r2", "resid_sigma", "n", "x_mean", "cov", "x_max",
          "coef_se", "usable")


def _assert_same(batched: HostModel | None, alone: HostModel | None, what: str) -> None:
    if batched is None or alone is None:
        assert batched is alone, what
        return
    for f in FIELDS:
        a, b = getattr(batched, f), getattr(alone, f)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), f"{what}: {f} {a} != {b}"
        else:
            assert a == b or (math.isnan(a) and math.isnan(b)), f"{what}: {f} {a!r} != {b!r}"


def _fleet(seed: int, dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Three traffic rows (one with gaps) and host rows following them at a few lags: most share a design, some
    have gaps of their own, outliers the trimming pass drops, too few points, or a constant value."""
    rng = np.random.default_rng(seed)
    w_len = 120
    t = np.arange(w_len)
    x = np.vstack([300 + 200 * (t >= 60) * (1 - np.exp(-np.maximum(t - 60, 0) / 10)) + rng.normal(0, 15, w_len)
                   for _ in range(3)])
    x[2, rng.random(w_len) < 0.05] = np.nan
    drivers, lags, ys, what = [], [], [], []
    for h in range(60):
        d, lag = h % 3, (0, 0, 0, 2, 5)[h % 5]
        y = 5 + 0.05 * np.roll(x[d], lag) + rng.normal(0, 1, w_len)
        kind = "shared design"
        if h % 7 == 3:
            y[rng.random(w_len) < 0.1] = np.nan
            kind = "gaps of its own"
        if h % 11 == 4:
            y[rng.integers(0, w_len, 4)] += 40.0
            kind = "outliers trimmed"
        drivers.append([d])
        lags.append([lag])
        ys.append(y)
        what.append(f"host {h} ({kind})")
    few = np.full(w_len, np.nan)
    few[-8:] = 1.0
    for y, kind in ((few, "too few points"), (np.full(w_len, 42.0), "constant")):
        drivers.append([0])
        lags.append([0])
        ys.append(y)
        what.append(kind)
    window = np.vstack([x, *ys]).astype(dtype)
    rows = 3 + np.arange(len(ys))
    return window, rows, np.array(drivers, dtype=np.intp), np.array(lags, dtype=np.intp), what


@pytest.mark.parametrize("seed, dtype", [(1, np.float32), (2, np.float64), (3, np.float32)])
def test_batched_fit_equals_each_host_fitted_alone(seed: int, dtype: type) -> None:
    window, rows, drivers, lags, what = _fleet(seed, dtype)
    batched = fit_host_models(window, rows, drivers, lags)
    start = int(lags.max())
    trimmed = 0
    for i, m in enumerate(batched):
        (alone,) = fit_host_models(window, rows[i: i + 1], drivers[i: i + 1], lags[i: i + 1], start=start)
        _assert_same(m, alone, what[i])
        trimmed += m is not None and m.n < np.sum(~np.isnan(window[rows[i], start:]))
    assert batched[-2] is None  # too few points
    constant = batched[-1]
    assert constant is not None and not constant.usable and constant.r2 == 0.0
    assert trimmed >= 3  # the trimming pass did refit some rows
    assert sum(m is not None and m.usable for m in batched) >= 50


def test_batched_fit_with_two_drivers_equals_each_host_alone() -> None:
    window, rows, drivers, lags, what = _fleet(4, np.float64)
    drivers = np.hstack([drivers, (drivers + 1) % 3])
    lags = np.hstack([lags, np.roll(lags, 3, axis=0)])
    batched = fit_host_models(window, rows, drivers, lags)
    for i, m in enumerate(batched):
        (alone,) = fit_host_models(window, rows[i: i + 1], drivers[i: i + 1], lags[i: i + 1], start=int(lags.max()))
        _assert_same(m, alone, what[i])


def test_fit_start_before_a_lag_is_refused_and_past_the_window_fits_nothing() -> None:
    window, rows, drivers, lags, _ = _fleet(5)
    with pytest.raises(ValueError, match="reaches before the window"):
        fit_host_models(window, rows, drivers, lags, start=int(lags.max()) - 1)
    assert fit_host_models(window, rows, drivers, lags, start=window.shape[1]) == [None] * rows.shape[0]


def test_refit_compares_one_driver_models_from_the_fits_arrays_as_model_by_model() -> None:
    """Whether a refit left each model where it was (which restarts its maturity clock): the same answer from the
    batch's arrays as from the models one by one, with olds missing, on another driver, a lag or two away."""
    window, rows, drivers, lags, _ = _fleet(6, np.float32)
    with np.errstate(all="ignore"):  # the row with too few points has none at all this early
        before = fit_host_models(window[:, :75], rows, drivers, lags)
    shifted = lags.copy()
    shifted[::4] += 1  # a lag one tick away: comparable
    shifted[1::9] += 2  # two ticks away: a new model
    moved = drivers.copy()
    moved[2::10] = (moved[2::10] + 1) % 3  # another driver: a new model
    fits = fit_hosts(window, rows, moved, shifted)
    news = fits.models()
    olds: list[HostModel | None] = list(before)
    olds[5] = None
    batched = _same_models(olds, news, fits)
    one_by_one = [_same_model(o, n) for o, n in zip(olds, news, strict=True)]
    assert batched == one_by_one
    assert any(batched) and not all(batched)
    assert not batched[5] and not batched[-2]  # no old model; no new model (too few points)


def test_lag_search_of_one_pair_per_host_equals_the_general_gathered_search() -> None:
    """The search a refit runs (each load row once, in order; traffic without gaps sharing one mask) gives, to the
    bit, what the general path (load rows gathered, every pair its own traffic mask) gives for the same pairs."""
    rng = np.random.default_rng(9)
    w_len = 120
    x = rng.normal(300, 20, (3, w_len)).cumsum(axis=1) / 10
    x[2, rng.random(w_len) < 0.05] = np.nan  # a traffic row with gaps: pairs on it take the general path
    y = np.vstack([0.05 * np.roll(x[h % 2], 2) + rng.normal(0, 1, w_len) for h in range(40)])
    y[3, rng.random(w_len) < 0.1] = np.nan
    px = np.arange(40) % 2
    fast = lag_correlations(x, y, px, np.arange(40), 20)  # in order, shared full mask
    perm = rng.permutation(40)
    gathered = lag_correlations(x, y[perm], px, np.argsort(perm), 20)  # load rows gathered
    with_gaps = lag_correlations(x, y, np.r_[px, 2], np.r_[np.arange(40), 0], 20)[:40]  # masks gathered per pair
    assert np.array_equal(fast, gathered, equal_nan=True)
    assert np.array_equal(fast, with_gaps, equal_nan=True)
    assert np.isfinite(fast).sum() > 0.9 * fast.size
