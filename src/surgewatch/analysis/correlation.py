"""Campaign correlation: traffic lift, the lag at which host load follows traffic, and robust load models.

Everything here is batched across pairs. For traffic ("driver") rows x and host-metric rows y over a sliding
window, `lag_correlations` gives the Pearson correlation of x[t − k] with y[t] for every lag k at once (FFT
cross-correlation of masked sums, so gaps cost nothing extra). `fit_host_models` then fits, for every host
metric, load ≈ a + Σ b_d · x_d(t − lag_d) over its drivers (usually one campaign's traffic, several when several
campaigns land on one host) by least squares with a trimming pass (points beyond 3 robust sigmas dropped),
and keeps what is needed to predict a new value with an honest spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .detectors import MAD_TO_SIGMA
from .rowstats import nanpercentile_rows, percentile_of

MIN_POINTS = 30  # a model needs this many fitted points to be used at all
MIN_R2 = 0.6  # ... and at least this fit quality
MIN_T = 8.0  # ... and every slope this many standard errors above zero
SMALL_BATCH = 16  # host rows fitted at once up to which sharing work across them costs more than it saves


@dataclass(frozen=True, slots=True)
class LoadModel:
    """load ≈ intercept + slope · traffic(t − lag) for one driver, fitted over `n` points with quality r2.

    In a host model with several drivers, `intercept` includes the other drivers at their fitted means."""

    lag_ticks: int
    slope: float
    intercept: float
    r2: float
    resid_sigma: float
    n: int
    x_mean: float = 0.0
    x_ss: float = 0.0  # sum of squared deviations of the fitted traffic values
    slope_se: float = float("nan")
    x_max: float = float("nan")

    def expected(self, traffic: float) -> float:
        return self.intercept + self.slope * traffic

    def prediction_sigma(self, traffic: float, traffic_step: float = 0.0) -> float:
        """Spread of a new load value at this traffic: residual noise, fit uncertainty away from the
        fitted traffic, and a two-tick error in the lag while traffic moves by `traffic_step` a tick."""
        leverage = 1.0 + 1.0 / max(self.n, 1)
        if self.x_ss > 0:
            leverage += (traffic - self.x_mean) ** 2 / self.x_ss
        lag_err = 2.0 * self.slope * traffic_step
        return float(np.sqrt(self.resid_sigma**2 * leverage + lag_err**2))

    @property
    def usable(self) -> bool:
        """Good enough to explain load with traffic (a clear, positive relation)."""
        t_ok = math.isnan(self.slope_se) or self.slope > MIN_T * self.slope_se
        return self.n >= MIN_POINTS and self.r2 >= MIN_R2 and self.slope > 0 and t_ok


@dataclass(slots=True, eq=False)  # not frozen: a refit makes thousands, and a frozen init costs 3x (never written)
class HostModel:
    """One host metric explained by its drivers: load ≈ intercept + Σ coefs[d] · x[d](t − lags[d])."""

    row: int
    drivers: tuple[int, ...]
    lags: tuple[int, ...]
    coefs: np.ndarray
    intercept: float
    r2: float
    resid_sigma: float
    n: int
    x_mean: np.ndarray  # fitted means of the drivers
    cov: np.ndarray  # (X'X)^-1 of the centred design [1, x - x_mean], for prediction spread
    x_max: np.ndarray  # largest fitted value of each driver
    coef_se: np.ndarray  # standard error of each coefficient
    usable: bool  # a clear, positive relation to every driver, on enough points (see `usable_fits`)

    def expected(self, x: np.ndarray) -> float:
        """Expected load for driver values x (one per driver, each taken at its lag)."""
        return float(self.intercept + np.dot(self.coefs, x))

    def prediction_sigma(self, x: np.ndarray, step: np.ndarray | None = None) -> float:
        """Spread of a new value at x: noise, fit uncertainty (leverage) and a two-tick lag error."""
        a = np.concatenate(([1.0], x - self.x_mean))
        leverage = 1.0 + float(a @ self.cov @ a)
        var = self.resid_sigma**2 * max(leverage, 1.0)
        if step is not None:
            var += float(np.sum((2.0 * self.coefs * step) ** 2))
        return float(np.sqrt(var))

    def pair_model(self, d: int) -> LoadModel:
        """The single-driver view of driver index `d` (other drivers held at their fitted means)."""
        others = float(np.dot(self.coefs, self.x_mean) - self.coefs[d] * self.x_mean[d])
        var_d = float(self.cov[d + 1, d + 1])
        x_ss = 1.0 / var_d if var_d > 0 else 0.0
        return LoadModel(self.lags[d], float(self.coefs[d]), self.intercept + others, self.r2, self.resid_sigma,
                         self.n, float(self.x_mean[d]), x_ss, float(self.coef_se[d]), float(self.x_max[d]))


@dataclass(frozen=True, slots=True)
class HostFits:
    """A batch of fitted host rows as arrays (row i is host row rows[i]; G rows, k drivers each): what
    `fit_hosts` gives, and `models()` the HostModel of each (None for a row fitted on fewer than ten points)."""

    rows: np.ndarray  # [G] intp
    drivers: np.ndarray  # [G, k] intp
    lags: np.ndarray  # [G, k] intp
    coefs: np.ndarray  # [G, k]
    intercept: np.ndarray  # [G]
    r2: np.ndarray  # [G]
    sigma: np.ndarray  # [G] residual spread
    n: np.ndarray  # [G] points fitted
    x_mean: np.ndarray  # [G, k]
    cov: np.ndarray  # [G, k+1, k+1]
    x_max: np.ndarray  # [G, k]
    coef_se: np.ndarray  # [G, k]
    usable: np.ndarray  # [G] bool

    @property
    def fitted(self) -> np.ndarray:
        """[G] bool: rows with a model (fitted on at least ten points)."""
        return self.n >= 10

    @classmethod
    def empty(cls, rows: np.ndarray, drivers: np.ndarray, lags: np.ndarray) -> HostFits:
        """No row fitted (no point to fit on)."""
        g, k = drivers.shape
        nan = np.full((g, k), np.nan)
        return cls(rows, drivers, lags, nan, np.full(g, np.nan), np.zeros(g), np.full(g, np.nan), np.zeros(g), nan,
                   np.full((g, k + 1, k + 1), np.nan), nan, nan, np.zeros(g, dtype=bool))

    def models(self) -> list[HostModel | None]:
        drivers_l, lags_l = self.drivers.tolist(), self.lags.tolist()
        seen: dict[tuple[int, ...], tuple[int, ...]] = {}  # one tuple per distinct drivers (or lags) of the batch
        drivers = [seen.setdefault(d, d) for d in map(tuple, drivers_l)]
        lags = [seen.setdefault(lg, lg) for lg in map(tuple, lags_l)]
        n = self.n.tolist()
        out: list[HostModel | None] = list(map(
            HostModel, self.rows.tolist(), drivers, lags, self.coefs, self.intercept.tolist(), self.r2.tolist(),
            self.sigma.tolist(), [int(v) for v in n], self.x_mean, self.cov, self.x_max, self.coef_se,
            self.usable.tolist()))
        for i, count in enumerate(n):
            if count < 10:  # too few points: no model
                out[i] = None
        return out


def _fft_size(n: int) -> int:
    """The smallest 2^a·3^b·5^c at least n (fast for FFTs, far less padding than a power of two)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            v = p35
            while v < n:
                v *= 2
            best = min(best, v)
            p35 *= 3
        p5 *= 5
    return best


def ranks(a: np.ndarray) -> np.ndarray:
    """Each row's values replaced by their ranks (0..n-1, NaN kept): bounds the pull of any one outlier."""
    filled = np.where(np.isnan(a), np.inf, a)
    order = np.argsort(filled, axis=1, kind="stable")
    r = np.empty_like(a)
    np.put_along_axis(r, order, np.broadcast_to(np.arange(a.shape[1], dtype=np.float64), a.shape), axis=1)
    return np.where(np.isnan(a), np.nan, r)


def lag_correlations(x: np.ndarray, y: np.ndarray, pair_x: np.ndarray, pair_y: np.ndarray, max_lag: int,
                     min_points: int = 10, robust: bool = False) -> np.ndarray:
    """Pearson correlation of x[pair_x][t − k] with y[pair_y][t] for k = 0..max_lag, per pair ([P, max_lag+1]).

    Only time points where both values exist count; NaN where fewer than `min_points` overlap or a side is
    constant. Rows are centred first, so large offsets do not cost precision. `robust` correlates ranks
    (Spearman-like), so a burst of unexplained load cannot drag the lag to itself."""
    if robust:
        x, y = ranks(x), ranks(y)
    w = x.shape[1]
    size = _fft_size(w + max_lag + 1)

    def spectra(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The spectra of each row centred, squared, and of each distinct mask of where it has values (most
        rows have the same mask, all there: its spectrum is taken once), with each row's mask index."""
        m = ~np.isnan(a)
        with np.errstate(invalid="ignore"):
            cnt = np.maximum(m.sum(axis=1, keepdims=True), 1)
            mean = np.where(m, a, 0.0).sum(axis=1, keepdims=True) / cnt
        a0 = np.where(m, a - mean, 0.0)
        gaps = ~m.all(axis=1)  # rows with a gap keep their own mask; the others share the full one (index 0)
        which = np.where(gaps, np.cumsum(gaps), 0)
        masks = np.concatenate([np.ones((1, a.shape[1]), dtype=bool), m[gaps]])
        return (np.fft.rfft(a0, n=size, axis=1), np.fft.rfft(a0 * a0, n=size, axis=1),
                np.fft.rfft(masks.astype(np.float64), n=size, axis=1), which)

    fx, fxx, fmx, mx = spectra(x)
    fy, fyy, fmy, my = spectra(y)
    cx = np.conj(fx[pair_x])
    identity = pair_y.shape[0] == fy.shape[0] and bool(np.all(pair_y == np.arange(pair_y.shape[0])))
    by, byy = (fy, fyy) if identity else (fy[pair_y], fyy[pair_y])  # (each load row once: the usual search)
    # sum_t a[t] b[t + k] = irfft(conj(A) · B)[k]: x leads y by k. The sums that read y only through its mask
    # (the count, x's sum and x's sum of squares) are the same for pairs of one x row and one y mask: taken once.
    combo = pair_x * fmy.shape[0] + my[pair_y]
    uniq, at = np.unique(combo, return_inverse=True)
    ux, umy = uniq // fmy.shape[0], uniq % fmy.shape[0]
    cmx_u, bmy_u = np.conj(fmx[mx[ux]]), fmy[umy]
    rows = at.reshape(-1)

    def lagged(product: np.ndarray, take: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The first max_lag+1 sums of one product's inverse transform, for the rows `take`: one sum at a time,
        as the stacked products and transforms were a transient megabyte of a small daemon (issue 14)."""
        return np.fft.irfft(product, n=size, axis=1)[take, : max_lag + 1].copy()

    n, sx, sxx = lagged(cmx_u * bmy_u, rows), lagged(np.conj(fx[ux]) * bmy_u, rows), \
        lagged(np.conj(fxx[ux]) * bmy_u, rows)
    own = mx[pair_x]  # traffic with gaps has a mask of its own; the others share the full one (one row)
    cmx = np.conj(fmx[own]) if own.any() else np.conj(fmx[:1])
    sy, syy, sxy = lagged(cmx * by), lagged(cmx * byy), lagged(cx * by)
    n = np.rint(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sy / n
        vx = sxx - sx * sx / n
        vy = syy - sy * sy / n
        scale = np.sqrt(np.maximum(sxx, 0.0) * np.maximum(syy, 0.0))
        ok = (n >= min_points) & (vx > 1e-9 * scale) & (vy > 1e-9 * scale)
        r = np.where(ok, cov / np.sqrt(np.where(ok, vx * vy, 1.0)), np.nan)
    return np.clip(r, -1.0, 1.0)


def best_lags(corr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: the lag of the highest correlation (-1 where none) and that correlation."""
    filled = np.where(np.isnan(corr), -np.inf, corr)
    lag = np.argmax(filled, axis=1)
    peak = filled[np.arange(corr.shape[0]), lag]
    return np.where(np.isfinite(peak), lag, -1), np.where(np.isfinite(peak), peak, np.nan)


def _gram_inverse(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(A'WA + ridge)^-1 [G, k, k] of designs a [G, T, k] with weights w [G, T]."""
    aw = a * w[:, :, None]
    g = np.einsum("gti,gtj->gij", aw, a)
    k = a.shape[2]
    ridge = 1e-12 * np.maximum(np.trace(g, axis1=1, axis2=2), 1e-300)[:, None, None] * np.eye(k)
    return np.linalg.pinv(g + ridge)


def _design(xs: np.ndarray, x_mean: np.ndarray) -> np.ndarray:
    """The centred design [1, x - x_mean] [G, T, k+1] of drivers xs [G, k, T] (laid out time-major per column)."""
    a = np.empty((xs.shape[0], xs.shape[1] + 1, xs.shape[2]))
    a[:, 0] = 1.0
    np.subtract(xs, x_mean[:, :, None], out=a[:, 1:])
    return a.transpose(0, 2, 1)


def _masked_median(v: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Median of each row of v over its valid entries (NaN for an empty row)."""
    if valid.shape[1] and valid.all():  # every entry valid (the usual case): the same numbers, fewer passes
        s = np.sort(v, axis=1)
        lo, hi = (v.shape[1] - 1) // 2, v.shape[1] // 2
        return 0.5 * (s[:, lo] + s[:, hi])
    n = valid.sum(axis=1)
    s = np.sort(np.where(valid, v, np.inf), axis=1)
    lo = np.clip((n - 1) // 2, 0, None)[:, None]
    hi = np.clip(n // 2, 0, None)[:, None]
    med = 0.5 * (np.take_along_axis(s, lo, axis=1)[:, 0] + np.take_along_axis(s, hi, axis=1)[:, 0])
    return np.where(n > 0, med, np.nan)


def _masked_mad_sigma(r: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Robust sigma of each row of r over the points with weight 1."""
    valid = w > 0
    med = _masked_median(r, valid)
    mad = _masked_median(np.abs(r - med[:, None]), valid)
    return np.nan_to_num(MAD_TO_SIGMA * mad, nan=0.0)


def _shared_designs(drivers: np.ndarray, lags: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows that share a design (the same drivers at the same lags, every point present): one row of each, and
    each row's index into those. Hosts behind one campaign's traffic mostly share one; a row with a gap has its
    own."""
    if drivers.shape[0] <= SMALL_BATCH:  # a handful of rows: each its own
        every = np.arange(drivers.shape[0])
        return every, every
    gaps = ~valid.all(axis=1)
    key = np.concatenate([drivers, lags, np.where(gaps, np.arange(1, gaps.shape[0] + 1), 0)[:, None]], axis=1,
                         dtype=np.int64)
    as_bytes = key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).reshape(-1)
    _, first, inverse = np.unique(as_bytes, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def _lagged_drivers(window: np.ndarray, drivers: np.ndarray, lags: np.ndarray, first_col: int) -> np.ndarray:
    """[G, k, T]: each row's drivers at their lags, window[d, first_col - lag:][:T] (T = W - first_col); each
    distinct driver row is read once."""
    if drivers.shape[0] <= SMALL_BATCH:  # a handful of rows (the small end): gathered directly
        t = np.arange(first_col, window.shape[1])
        return window[drivers[:, :, None], t[None, None, :] - lags[:, :, None]]
    distinct, at = np.unique(drivers, return_inverse=True)
    spans = sliding_window_view(window[distinct], window.shape[1] - first_col, axis=1)
    return spans[at.reshape(drivers.shape), first_col - lags]


def fit_host_models(window: np.ndarray, host_rows: np.ndarray, drivers: np.ndarray, lags: np.ndarray,
                    trims: int = 1, trim_sigma: float = 3.0, start: int | None = None) -> list[HostModel | None]:
    """`fit_hosts`, one HostModel per host row (None when fewer than ten points overlap)."""
    return fit_hosts(window, host_rows, drivers, lags, trims, trim_sigma, start).models()


def fit_hosts(window: np.ndarray, host_rows: np.ndarray, drivers: np.ndarray, lags: np.ndarray,
              trims: int = 1, trim_sigma: float = 3.0, start: int | None = None) -> HostFits:
    """Fit every host row against its k drivers at their lags (all rows share k; drivers/lags are [G, k]).

    `window` is [series, W] (oldest first); the fit reads columns from `start` on (default: the largest lag, so
    that every row of a batch reads the same columns). A row fitted on fewer than ten points has no model.

    Each row's numbers are those of fitting it alone (from the same `start`), to the bit: rows that share a
    design (hosts on one campaign's traffic at the same lag, with the same points present) share the normal
    equations' inverse, taken once; the trimming pass refits only the rows it trimmed (for the others it would
    repeat the first pass exactly)."""
    g, k = drivers.shape
    if g == 0:
        return HostFits.empty(host_rows, drivers, lags)
    first_col = int(lags.max(initial=0)) if start is None else start
    if int(lags.max(initial=0)) > first_col:
        raise ValueError(f"fit from column {first_col}: a lag of {int(lags.max())} reaches before the window")
    if first_col >= window.shape[1]:
        return HostFits.empty(host_rows, drivers, lags)
    y = window[host_rows, first_col:]  # [G, T]
    xs = _lagged_drivers(window, drivers, lags, first_col)
    valid = ~np.isnan(y) & ~np.isnan(xs).any(axis=1)
    y = np.where(valid, y, 0.0)
    xs = np.where(valid[:, None, :], xs, 0.0)
    w = valid.astype(np.float64)
    cnt = np.maximum(w.sum(axis=1), 1.0)
    # the first pass: every row, one inverse per shared design
    x_mean = (xs * w[:, None, :]).sum(axis=2) / cnt[:, None]
    y_mean = (y * w).sum(axis=1) / cnt
    a = _design(xs, x_mean)
    first, which = _shared_designs(drivers, lags, valid)
    inv = _gram_inverse(_design(xs[first], x_mean[first]), w[first])[which]
    beta, resid = _solved(a, w, y, y_mean, inv)
    sigma = _masked_mad_sigma(resid, w)
    redo = np.arange(g)
    for _ in range(trims):  # the trimming passes: only rows whose points changed are fitted again
        keep = valid[redo] & (np.abs(resid[redo]) <= trim_sigma * np.maximum(sigma[redo], 1e-12)[:, None])
        enough = keep.sum(axis=1) >= max(10, k + 2)
        w_old = w[redo]
        w_new = np.where(enough[:, None], keep, w_old > 0).astype(np.float64)
        moved = (w_new != w_old).any(axis=1)
        redo, w_new = redo[moved], w_new[moved]
        if redo.shape[0] == 0:
            break
        w[redo] = w_new
        cnt_r = np.maximum(w_new.sum(axis=1), 1.0)
        xs_r, y_r = xs[redo], y[redo]
        x_mean_r = (xs_r * w_new[:, None, :]).sum(axis=2) / cnt_r[:, None]
        y_mean_r = (y_r * w_new).sum(axis=1) / cnt_r
        a_r = _design(xs_r, x_mean_r)
        inv_r = _gram_inverse(a_r, w_new)
        beta_r, resid_r = _solved(a_r, w_new, y_r, y_mean_r, inv_r)
        x_mean[redo], y_mean[redo], inv[redo], beta[redo], resid[redo] = x_mean_r, y_mean_r, inv_r, beta_r, resid_r
        sigma[redo] = _masked_mad_sigma(resid_r, w_new)
    n = w.sum(axis=1)
    ss_res = (resid**2 * w).sum(axis=1)
    ss_tot = (((y - y_mean[:, None]) ** 2) * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, 0.0)
        rms = np.sqrt(ss_res / np.maximum(n - k - 1, 1))
    sigma = np.maximum(np.maximum(sigma, 0.8 * rms), 1e-9 * (np.abs(y_mean) + 1.0))
    x_max = np.where(w[:, None, :] > 0, xs, -np.inf).max(axis=2)
    r2 = np.maximum(r2, 0.0)
    coefs = beta[:, 1:]
    se = sigma[:, None] * np.sqrt(np.maximum(np.diagonal(inv, axis1=1, axis2=2)[:, 1:], 0.0))
    usable = usable_fits(n, r2, coefs, se)
    # each model's arrays are rows of these (fresh arrays, never written again)
    coefs, x_mean, inv, x_max, se = (np.array(a, copy=True) for a in (coefs, x_mean, inv, x_max, se))
    if k == 1:  # the dot product of one driver is one product
        intercept = y_mean + beta[:, 0] - coefs[:, 0] * x_mean[:, 0]
    else:
        intercept = np.array([float(y_mean[i] + beta[i, 0] - np.dot(coefs[i], x_mean[i])) for i in range(g)])
    return HostFits(host_rows, drivers, lags, coefs, intercept, r2, sigma, n, x_mean, inv, x_max, se, usable)


def _solved(a: np.ndarray, w: np.ndarray, y: np.ndarray, y_mean: np.ndarray, inv: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients [G, k] of the weighted least squares of y - y_mean on designs a given their inverses, and
    the residuals [G, T]."""
    yc = y - y_mean[:, None]
    rhs = np.einsum("gti,gt->gi", a if bool(np.all(w == 1.0)) else a * w[:, :, None], yc)  # (a · 1 is a)
    beta = np.einsum("gij,gj->gi", inv, rhs)
    return beta, yc - np.einsum("gti,gi->gt", a, beta)


def usable_fits(n: np.ndarray, r2: np.ndarray, coefs: np.ndarray, se: np.ndarray) -> np.ndarray:
    """[G] bool: fits good enough to explain load with traffic: enough points, a fair r², and every coefficient
    positive and clearly above its standard error."""
    return ((n >= MIN_POINTS) & (r2 >= MIN_R2) & np.all(coefs > 0, axis=1)
            & np.all(coefs > MIN_T * se, axis=1))


def fit_load_model(traffic: np.ndarray, load: np.ndarray, max_lag: int) -> LoadModel | None:
    """Fit the lagged linear model of one load series on one traffic series (lag by cross-correlation)."""
    one = np.zeros(1, np.intp)
    lag, _peak = best_lags(lag_correlations(traffic[None], load[None], one, one, max_lag))
    if lag[0] < 0:
        return None
    m = fit_host_models(np.vstack([traffic, load]), np.array([1]), np.array([[0]]), lag[:, None])[0]
    return m.pair_model(0) if m is not None else None


def baseline(values: np.ndarray, quantile: float = 20.0) -> float:
    """A campaign-resistant baseline: a low quantile of the window (a surge is never most of it)."""
    v = values[~np.isnan(values)]
    if v.shape[0] == 0:
        return float("nan")
    return percentile_of(v, quantile)


def baselines(window: np.ndarray, quantile: float = 20.0) -> np.ndarray:
    """`baseline` of every row of a [series, W] window at once."""
    if window.shape[1] == 0 or window.shape[0] == 0:
        return np.full(window.shape[0], np.nan)
    return nanpercentile_rows(window, quantile)


def lift(site_now: float, site_base: float, campaign_now: float, campaign_base: float) -> float:
    """How many times over its baseline the site's traffic is because of this campaign."""
    if not math.isnan(site_base) and site_base > 0:
        extra = campaign_now - campaign_base if not math.isnan(campaign_base) else 0.0
        return (site_base + extra) / site_base
    if not math.isnan(campaign_base) and campaign_base > 0:
        return campaign_now / campaign_base
    return float("nan")
