"""Set and order statistics on small index and value arrays, equal to numpy's to the bit, without numpy.ma.

`np.unique`, `np.union1d` and the interpolating `np.percentile`/`np.nanpercentile` ask `np.ma.is_masked` of
arrays that are never masked, which imports numpy.ma (about 0.4 MB of a single-host daemon's RSS, issue 14)
on the first call. The analysis calls them every tick while series warm up and at every refit; these do the
same arithmetic (the linear method's index, neighbours and interpolation, in numpy's order of operations), so
results do not change by a bit. `nanpercentile_rows` is also one vectorised pass where numpy's nanpercentile
with an axis applies itself row by row.
"""

from __future__ import annotations

import numpy as np


def row_capacity(current: int, needed: int) -> int:
    """Rows to allocate for `needed` series when `current` fit: a quarter more than needed (or than current), so a
    detector's state grows in place while series arrive over a few ticks or churn adds a few (store.grown_size's
    rule at fleet sizes, here from the first allocation on: the state of 10,000 series is tens of MB)."""
    return max(needed + needed // 4, current + current // 4)


def distinct(a: np.ndarray) -> np.ndarray:
    """`np.unique(a)`: the sorted distinct values of a 1-D array."""
    u = np.sort(a, axis=None)
    if u.shape[0] < 2:
        return u
    keep = np.empty(u.shape[0], dtype=bool)
    keep[0] = True
    np.not_equal(u[1:], u[:-1], out=keep[1:])
    return u[keep]


def union_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`np.union1d(a, b)`: the sorted distinct values of both."""
    return distinct(np.concatenate((a, b)))


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's quantile interpolation (from the nearer neighbour's side, as numpy.lib's `_lerp`), in the values'
    dtype: numpy's weight for one scalar q is a Python float, which a float32 array takes as float32."""
    with np.errstate(invalid="ignore"):  # inf - inf is NaN, as numpy's (whose callers here hid its warning)
        diff = b - a
        out = np.add(a, diff * t.astype(a.dtype))
        np.subtract(b, diff * (1 - t).astype(a.dtype), out=out, where=t >= 0.5)
    return out


def nanpercentile_rows(window: np.ndarray, q: float) -> np.ndarray:
    """`np.nanpercentile(window, q, axis=1)` of a 2-D float array (NaN for a row without values)."""
    rows, width = window.shape
    out = np.full(rows, np.nan, dtype=window.dtype)
    if rows == 0 or width == 0:
        return out
    s = np.sort(window, axis=1)  # NaN last
    n = width - np.count_nonzero(np.isnan(s), axis=1)
    has = n > 0
    if not has.any():
        return out
    s, n = s[has], n[has]
    frac = np.true_divide(q, 100)
    virtual = (n - 1) * frac  # the linear method's index into each row's values
    prev = np.floor(virtual)
    top = virtual >= n - 1  # at or past the last value: the last value itself
    gamma = virtual - prev
    lo = np.where(top, n - 1, prev).astype(np.intp)
    hi = np.where(top, n - 1, prev + 1).astype(np.intp)
    at = np.arange(s.shape[0])
    out[has] = _lerp(s[at, lo], s[at, hi], gamma)
    return out


def percentile_of(values: np.ndarray, q: float) -> float:
    """`float(np.percentile(values, q))` of a non-empty 1-D float array without NaN."""
    return float(nanpercentile_rows(values[None, :], q)[0])


def median_of(values: np.ndarray) -> np.floating:
    """`np.median(values)` of a non-empty 1-D float array, a scalar of its dtype (NaN if it holds one):
    np.median asks `np.ma.isMaskedArray` of its result."""
    v = np.sort(values)
    n = v.shape[0]
    if np.isnan(v[-1]):
        return v[-1]
    if n % 2:
        return v[n // 2]
    return (np.add(v[n // 2 - 1:n // 2], v[n // 2:n // 2 + 1]) / 2)[0]
