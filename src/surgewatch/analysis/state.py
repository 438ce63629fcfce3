"""The analyzer's state, typed: load models packed as arrays, which rows drive which, what it remembers
between ticks, and what the models say at one tick.

Rows are store rows (one per series). H is the number of packed host models, K the most drivers (traffic
series) any of them has: a model with fewer drivers is padded with its first driver at coefficient 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np

from .correlation import HostFits, HostModel
from .rowstats import distinct


@dataclass
class PackedModels:
    """Host models as padded arrays (H rows × K drivers) so that each tick is a few vector operations."""

    models: list[HostModel]
    rows: np.ndarray  # [H] intp: the host row of each model
    drivers: np.ndarray  # [H, K] intp: driver (traffic) rows
    lags: np.ndarray  # [H, K] intp: each driver's lag in ticks
    coefs: np.ndarray  # [H, K] float: load per unit of traffic (0 for padding)
    x_mean: np.ndarray  # [H, K] float: mean traffic of the fit window
    cov: np.ndarray  # [H, K+1, K+1] float: (X'X)^-1 of the centred design [1, x - x_mean], for the spread
    intercept: np.ndarray  # [H] float: load at no traffic
    sigma: np.ndarray  # [H] float: residual sd of the fit
    usable: np.ndarray  # [H] bool: the fit is good enough to explain load with
    limit: np.ndarray  # [H] float: the saturation level of each row's metric (NaN: none)
    growth: np.ndarray  # [H, K] float: traffic growth per second of each driver (0 for padding)
    pos: dict[int, int]  # host row -> index into the arrays
    changed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # [H] tick each model last moved

    @classmethod
    def build(cls, models: list[HostModel], limits: Mapping[int, float] | None = None,
              growth: Mapping[int, float] | None = None, reuse: PackedModels | None = None) -> PackedModels:
        """Pack `models` in their order. With `reuse` (an earlier packing), the models it holds (the same objects)
        are copied from its arrays and only the others are packed: a host joining or leaving a fleet of
        thousands of models packs one host's. The arrays are the same either way."""
        width = [len(m.drivers) for m in models]
        k = max(width, default=1)
        if reuse is None or reuse.coefs.shape[1] != k or not reuse.rows.shape[0] or not models:
            return cls._pack(models, limits, growth)
        pos, held = reuse.pos, reuse.models
        rows_of = [m.row for m in models]
        src = np.array([j if (j := pos.get(r)) is not None and held[j] is m else -1
                        for r, m in zip(rows_of, models, strict=True)], dtype=np.intp)
        fresh = np.flatnonzero(src < 0)
        kept = np.flatnonzero(src >= 0)
        new = cls._pack([models[i] for i in fresh.tolist()], k=k)
        h = len(models)
        out = []
        for name in ("rows", "drivers", "lags", "coefs", "x_mean", "cov", "intercept", "sigma", "usable"):
            a, b = getattr(reuse, name), getattr(new, name)
            arr = np.empty((h, *a.shape[1:]), dtype=a.dtype)
            arr[kept] = a[src[kept]]
            arr[fresh] = b
            out.append(arr)
        rows, drivers, lags, coefs, x_mean, cov, intercept, sigma, usable = out
        lim = limits or {}
        limit = np.fromiter(map(lim.get, rows_of, repeat(float("nan"))), dtype=np.float64, count=h)
        grow = np.zeros((h, k))
        if growth is not None:
            at = distinct(drivers)
            rates = np.array([growth.get(d, float("nan")) for d in at.tolist()], dtype=np.float64)
            real = np.arange(k)[None, :] < np.array(width, dtype=np.intp)[:, None]
            grow = np.where(real, rates[np.searchsorted(at, drivers)], 0.0)
        return cls(list(models), rows, drivers, lags, coefs, x_mean, cov, intercept, sigma, usable, limit, grow,
                   dict(zip(rows_of, range(h), strict=True)))

    @classmethod
    def _pack(cls, models: list[HostModel], limits: Mapping[int, float] | None = None,
              growth: Mapping[int, float] | None = None, k: int | None = None) -> PackedModels:
        h = len(models)
        k = max((len(m.drivers) for m in models), default=1) if k is None else k
        drivers = np.zeros((h, k), dtype=np.intp)
        lags = np.zeros((h, k), dtype=np.intp)
        coefs = np.zeros((h, k))
        x_mean = np.zeros((h, k))
        cov = np.zeros((h, k + 1, k + 1))
        grow = np.zeros((h, k))
        by_width: dict[int, list[int]] = {}
        for i, m in enumerate(models):
            by_width.setdefault(len(m.drivers), []).append(i)
        for j, at in by_width.items():  # the models with j drivers written at once (a fleet has thousands)
            sel = [models[i] for i in at]
            ia = np.array(at, dtype=np.intp)
            d = np.array([m.drivers for m in sel], dtype=np.intp).reshape(len(sel), j)
            lg = np.array([m.lags for m in sel], dtype=np.intp).reshape(len(sel), j)
            drivers[ia, :j], drivers[ia, j:] = d, d[:, :1]
            lags[ia, :j], lags[ia, j:] = lg, lg[:, :1]
            coefs[ia, :j] = np.array([m.coefs for m in sel], dtype=np.float64).reshape(len(sel), j)
            x_mean[ia, :j] = np.array([m.x_mean for m in sel], dtype=np.float64).reshape(len(sel), j)
            cov[ia, : j + 1, : j + 1] = np.array([m.cov for m in sel], dtype=np.float64).reshape(len(sel), j + 1,
                                                                                                  j + 1)
            if growth is not None:
                grow[ia, :j] = np.array([[growth.get(x, float("nan")) for x in m.drivers] for m in sel],
                                        dtype=np.float64).reshape(len(sel), j)
        limit = np.array([(limits or {}).get(m.row, float("nan")) for m in models], dtype=np.float64)
        return cls(models, np.array([m.row for m in models], dtype=np.intp), drivers, lags, coefs, x_mean, cov,
                   np.array([m.intercept for m in models]), np.array([m.resid_sigma for m in models]),
                   np.array([m.usable for m in models], dtype=bool), limit, grow,
                   {m.row: i for i, m in enumerate(models)})

    def update(self, models: Sequence[HostModel | None], growth: Mapping[int, float],
               refreshed: Sequence[int], fits: HostFits | None = None) -> bool:
        """Write refitted models (and refreshed traffic growth) in place; False when a rebuild is needed
        (a model appeared or vanished, or has more drivers than the arrays hold). `fits`, when given, are the
        arrays `models` were made from (in their order): written from there at once."""
        k = self.coefs.shape[1]
        if fits is not None and fits.drivers.shape[1] == k and bool(fits.fitted.all()):
            at = [self.pos.get(r, -1) for r in fits.rows.tolist()]
            if -1 not in at:
                self._write(at, models, fits)
                self._refresh_growth(growth, refreshed)
                return True
        if any(m is None or m.row not in self.pos or len(m.drivers) > k for m in models):
            return False
        full = [m for m in models if m is not None and len(m.drivers) == k]
        if full:  # models with every driver slot filled: written all at once
            idx = np.array([self.pos[m.row] for m in full], dtype=np.intp)
            for i, m in zip(idx.tolist(), full, strict=True):
                self.models[i] = m
            self.drivers[idx] = [m.drivers for m in full]
            self.lags[idx] = [m.lags for m in full]
            self.coefs[idx] = np.stack([m.coefs for m in full])
            self.x_mean[idx] = np.stack([m.x_mean for m in full])
            self.cov[idx] = np.stack([m.cov for m in full])
            self.intercept[idx] = [m.intercept for m in full]
            self.sigma[idx] = [m.resid_sigma for m in full]
            self.usable[idx] = [m.usable for m in full]
        for part in models:
            assert part is not None
            if len(part.drivers) == k:
                continue
            m = part
            i, j = self.pos[m.row], len(m.drivers)
            self.models[i] = m
            self.drivers[i, :j], self.drivers[i, j:] = m.drivers, m.drivers[0]
            self.lags[i, :j], self.lags[i, j:] = m.lags, m.lags[0]
            self.coefs[i] = 0.0
            self.coefs[i, :j] = m.coefs
            self.x_mean[i] = 0.0
            self.x_mean[i, :j] = m.x_mean
            self.cov[i] = 0.0
            self.cov[i, : j + 1, : j + 1] = m.cov
            self.intercept[i], self.sigma[i], self.usable[i] = m.intercept, m.resid_sigma, m.usable
        self._refresh_growth(growth, refreshed)
        return True

    def _write(self, at: list[int], models: Sequence[HostModel | None], fits: HostFits) -> None:
        """Models at positions `at`, from the arrays they were made from."""
        idx = np.array(at, dtype=np.intp)
        for i, m in zip(at, models, strict=True):
            assert m is not None
            self.models[i] = m
        self.drivers[idx], self.lags[idx], self.coefs[idx] = fits.drivers, fits.lags, fits.coefs
        self.x_mean[idx], self.cov[idx] = fits.x_mean, fits.cov
        self.intercept[idx], self.sigma[idx], self.usable[idx] = fits.intercept, fits.sigma, fits.usable

    def _refresh_growth(self, growth: Mapping[int, float], refreshed: Sequence[int]) -> None:
        if refreshed:
            rows, at = np.unique(self.drivers, return_inverse=True)
            g = np.array([growth.get(d, np.nan) for d in rows.tolist()], dtype=np.float64)[at]
            g = g.reshape(self.drivers.shape)
            self.growth = np.where(self.coefs != 0, g, 0.0)

    def settled(self, ticks: int, min_support: int) -> np.ndarray:
        """[H] bool: each model has stayed put for at least `min_support` ticks."""
        return (ticks - self.changed) >= min_support


@dataclass
class Topology:
    """Which rows drive which host rows, derived from the campaign specs and the current series index."""

    size: int  # number of series names it was built from
    campaign_rows: list[int | None]  # per campaign: its own (visitors) row
    driver_of: list[int | None]  # per campaign: the traffic row its hosts follow
    host_drivers: dict[int, tuple[int, ...]]  # host row -> driver rows
    host_campaigns: dict[int, tuple[int, ...]]  # host row -> indices of campaigns landing on it
    host_of: dict[str, list[int]]  # host name -> campaign indices
    drivers: list[int]
    parts: dict[int, tuple[str, str, str]]  # host row -> (kind, host, metric)
    campaign_hosts: list[list[int]]  # per campaign: the host rows it lands on


class LagCurves:
    """Per (driver, host) pair: its lag evidence accumulated over refits ([max_lag + 1] floats) and the tick it
    was last added to, held as rows of two arrays with a row (slot) per pair: no object per pair for the garbage
    collector to walk, and a refit's thousands of curves read and written at once."""

    def __init__(self) -> None:
        self.slot: dict[tuple[int, int], int] = {}  # pair -> its row of `values` and `at` (in order of arrival)
        self.values = np.zeros((0, 0))
        self.at = np.zeros(0, dtype=np.int64)
        self.free: list[int] = []  # rows of forgotten pairs, taken again first

    def __len__(self) -> int:
        return len(self.slot)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.slot)

    def get(self, pair: tuple[int, int]) -> tuple[np.ndarray, int] | None:
        """The curve (a copy) and its tick of one pair, or None."""
        i = self.slot.get(pair)
        return None if i is None else (self.values[i].copy(), int(self.at[i]))

    def read(self, pairs: Sequence[tuple[int, int]]) -> tuple[list[int], np.ndarray, np.ndarray]:
        """The positions in `pairs` of the pairs with a curve, their curves [n, L] and ticks [n] (copies)."""
        slot = self.slot
        found = [slot.get(p, -1) for p in pairs]
        known = [k for k, i in enumerate(found) if i >= 0]
        rows = np.array([found[k] for k in known], dtype=np.intp)
        return known, self.values[rows], self.at[rows]

    def write(self, pairs: Sequence[tuple[int, int]], curves: np.ndarray, tick: int) -> None:
        """Set the curves [len(pairs), L] of `pairs`, added to at `tick` (new pairs take a row)."""
        if not pairs:
            return
        slot, width = self.slot, curves.shape[1]
        if self.values.shape[1] != width:  # (the first write: every curve of an analyzer has one length)
            assert not slot, "lag curves of another length"
            self.values = np.zeros((0, width))
        new = [p for p in pairs if p not in slot]
        if new:
            need = len(new) - len(self.free)
            if need > 0:  # more rows, and as many again to spare (amortised)
                end = self.values.shape[0]
                grow = max(need, end // 2)
                self.values = np.concatenate([self.values, np.zeros((grow, width))])
                self.at = np.concatenate([self.at, np.zeros(grow, dtype=np.int64)])
                self.free.extend(range(end + grow - 1, end - 1, -1))  # (taken from the end: the lowest first)
            free = self.free
            slot.update(zip(new, [free.pop() for _ in new], strict=True))
        at = np.array([slot[p] for p in pairs], dtype=np.intp)
        self.values[at] = curves
        self.at[at] = tick

    def forget(self, pairs: Iterable[tuple[int, int]]) -> None:
        slot = self.slot
        for p in pairs:
            self.free.append(slot.pop(p))


@dataclass
class FitMemory:
    """What the analyzer remembers between ticks about load models and the traffic that drives them.

    Keys are store rows (host rows, traffic rows), (driver row, host row) pairs, or campaign indices;
    `forget` drops rows that were evicted or handed to a new series."""

    models: dict[int, HostModel | None] = field(default_factory=dict)  # host row -> last fit (None: no model)
    lags: dict[tuple[int, int], tuple[int, float]] = field(default_factory=dict)  # (driver, host) -> (lag, corr)
    # (driver, host) -> (lag evidence accumulated over refits, the tick it was last added to)
    curves: LagCurves = field(default_factory=LagCurves)
    changed_at: dict[int, int] = field(default_factory=dict)  # host row -> tick its model last moved
    last_fit: dict[int, int] = field(default_factory=dict)  # host row -> tick of its last refit
    searched_at: dict[int, int] = field(default_factory=dict)  # host row -> tick its lags were last searched
    stats_at: dict[int, int] = field(default_factory=dict)  # traffic row -> tick its statistics were refreshed
    fitted_x: dict[int, float] = field(default_factory=dict)  # driver row -> traffic level counted as unmoved
    noise: dict[int, float] = field(default_factory=dict)  # traffic row -> sd of a 3-sample mean
    growth: dict[int, float] = field(default_factory=dict)  # traffic row -> growth per second
    base: np.ndarray = field(default_factory=lambda: np.zeros(0))  # by store row: traffic baseline (NaN: unknown)
    moved: set[int] = field(default_factory=set)  # driver rows whose traffic moved this tick
    lifted_since: dict[int, int] = field(default_factory=dict)  # campaign index -> tick its traffic lifted
    # host rows due for a refit that the per-tick budget left for a later tick -> (the tick they were due, whether
    # their traffic had moved: their lags are searched again when they are refitted)
    backlog: dict[int, tuple[int, bool]] = field(default_factory=dict)
    search_now: set[int] = field(default_factory=set)  # backlog rows refitted this tick whose traffic had moved

    def forget(self, gone: set[int], rows: np.ndarray) -> None:
        """Drop everything about `gone` (the same rows as the array `rows`)."""
        per_row: tuple[dict[int, Any], ...] = (self.changed_at, self.models, self.fitted_x, self.noise,
                                                  self.stats_at, self.searched_at, self.last_fit, self.growth,
                                                  self.backlog)
        for table in per_row:
            for r in gone.intersection(table):
                del table[r]
        per_pair: tuple[dict[tuple[int, int], Any], ...] = (self.lags, self.curves.slot)
        for pairs in per_pair:
            drivers = set(map(itemgetter(0), pairs))  # a few traffic rows drive thousands of host rows
            if gone.isdisjoint(drivers):  # host rows went (churn): their pairs, found by set operations
                doomed: Iterable[tuple[int, int]] = pairs.keys() & {(d, h) for d in drivers for h in gone}
            else:
                doomed = [k for k in pairs if k[0] in gone or k[1] in gone]
            if pairs is self.curves.slot:
                self.curves.forget(doomed)
                continue
            for key in doomed:
                del pairs[key]
        self.moved -= gone
        self.search_now -= gone
        self.base[rows[rows < self.base.shape[0]]] = np.nan


@dataclass(frozen=True, slots=True)
class ModelsNow:
    """What every packed load model says at one tick; index i is PackedModels row i."""

    x: np.ndarray  # [H, K] float: each driver's traffic at its lag (the latest sample at or just before it)
    expected: np.ndarray  # [H] float: the host value the model expects from that traffic
    sigma: np.ndarray  # [H] float: the spread of that expectation (residual, leverage and traffic trend)
    rz: np.ndarray  # [H] float: (value - expected) / sigma; NaN where the value is missing
    mature: np.ndarray  # [H] bool: settled, and has seen traffic near its current level long enough to vouch
    x_now: np.ndarray  # [H, K] float: each driver's latest traffic (x where the latest sample is missing)
    base: np.ndarray  # [H, K] float: each driver's traffic baseline (NaN: unknown)

    @classmethod
    def empty(cls) -> ModelsNow:
        e = np.zeros(0)
        return cls(np.zeros((0, 1)), e, e, e, e.astype(bool), np.zeros((0, 1)), np.zeros((0, 1)))
