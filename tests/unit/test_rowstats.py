"""analysis/rowstats.py: numpy's unique, union1d, percentile, nanpercentile and median to the bit, without the
numpy.ma import they make (issue 14: the small end's RSS), so swapping them in changes no analysis result."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from surgewatch.analysis.rowstats import distinct, median_of, nanpercentile_rows, percentile_of, union_rows

ROOT = Path(__file__).resolve().parents[2]


def windows(seed: int, count: int):
    """Random [rows, width] windows in float32 and float64, with NaN gaps, whole rows of NaN, ties and infinities."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        dtype = (np.float64, np.float32)[k % 2]
        x = (rng.normal(size=(int(rng.integers(1, 6)), int(rng.integers(1, 60)))) *
             rng.choice([1.0, 100.0, 1e6])).astype(dtype)
        if k % 3 == 0:
            x = np.round(x)  # ties
        x[rng.random(x.shape) < rng.choice([0.0, 0.3, 0.9, 1.0])] = np.nan
        if k % 50 == 0:
            x[0, 0] = np.inf
        yield x, float(rng.choice([0.0, 5.0, 20.0, 33.3, 50.0, 95.0, 100.0]))


def test_nanpercentile_rows_equals_numpys_to_the_bit_and_dtype() -> None:
    for x, q in windows(7, 3000):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns on all-NaN rows and inf - inf
            want = np.nanpercentile(x, q, axis=1)
        got = nanpercentile_rows(x, q)
        assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True), (x, q)


def test_percentile_and_median_of_one_row_equal_numpys() -> None:
    for x, q in windows(11, 3000):
        v = x[0][~np.isnan(x[0])]
        if v.shape[0]:
            with np.errstate(invalid="ignore"):  # inf - inf
                want = float(np.percentile(v, q))
            got = percentile_of(v, q)
            assert got == want or (np.isnan(got) and np.isnan(want)), (v, q)
        m, want_m = median_of(x[0]), np.median(x[0])  # NaN in the row: NaN, as numpy
        assert type(m) is type(want_m) and (m == want_m or (np.isnan(m) and np.isnan(want_m))), x[0]


def test_distinct_and_union_rows_equal_unique_and_union1d() -> None:
    rng = np.random.default_rng(3)
    for _ in range(2000):
        a = rng.integers(0, 30, int(rng.integers(0, 9))).astype(np.intp)
        b = rng.integers(0, 30, int(rng.integers(0, 9))).astype(np.intp)
        assert np.array_equal(distinct(a), np.unique(a)) and distinct(a).dtype == np.unique(a).dtype
        assert np.array_equal(union_rows(a, b), np.union1d(a, b)) and union_rows(a, b).dtype == a.dtype


def test_empty_windows_give_nan_rows() -> None:
    assert nanpercentile_rows(np.zeros((3, 0)), 20.0).shape == (3,)
    assert np.isnan(nanpercentile_rows(np.zeros((3, 0)), 20.0)).all()
    assert nanpercentile_rows(np.zeros((0, 5)), 20.0).shape == (0,)


@pytest.mark.parametrize("call", ["nanpercentile_rows(np.ones((2, 9)), 20.0)", "percentile_of(np.ones(9), 20.0)",
                                  "median_of(np.arange(4.0))", "union_rows(np.arange(3), np.arange(2, 5))"])
def test_none_of_them_imports_numpy_ma(call: str) -> None:
    code = ("import sys, numpy as np\nfrom surgewatch.analysis.rowstats import *\n"
            f"{call}\nprint('numpy.ma' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False"]
