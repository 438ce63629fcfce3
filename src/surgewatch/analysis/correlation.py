"""Campaign correlation: traffic lift, the lag at which host load follows traffic, and a robust load model.

For a campaign's traffic x and one host metric y over a sliding window, find the lag k maximising the
correlation of x[t - k] with y[t], fit y ≈ a + b·x[t - k] robustly (least squares, then again without points
more than 3 robust sigmas off), and keep the residual spread so that a new value can be judged against
what the traffic explains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detectors import MAD_TO_SIGMA


@dataclass(frozen=True, slots=True)
class LoadModel:
    """load ≈ intercept + slope · traffic(t − lag), fitted over `n` points with quality r2."""

    lag_ticks: int
    slope: float
    intercept: float
    r2: float
    resid_sigma: float
    n: int
    x_mean: float = 0.0
    x_ss: float = 0.0  # sum of squared deviations of the fitted traffic values

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
        return self.n >= 30 and self.r2 >= 0.6 and self.slope > 0


def _corr_per_lag(x: np.ndarray, y: np.ndarray, max_lag: int) -> np.ndarray:
    """Pearson correlation of x[t-k] with y[t] for k = 0..max_lag (NaN pairs skipped)."""
    out = np.full(max_lag + 1, np.nan)
    n = x.shape[0]
    for k in range(min(max_lag, n - 3) + 1):
        a, b = x[: n - k], y[k:]
        ok = ~(np.isnan(a) | np.isnan(b))
        if ok.sum() < 10:
            continue
        a, b = a[ok], b[ok]
        sa, sb = a.std(), b.std()
        if sa == 0 or sb == 0:
            continue
        out[k] = float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb))
    return out


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    xm, ym = x.mean(), y.mean()
    var = np.mean((x - xm) ** 2)
    slope = float(np.mean((x - xm) * (y - ym)) / var) if var > 0 else 0.0
    return slope, float(ym - slope * xm)


def fit_load_model(traffic: np.ndarray, load: np.ndarray, max_lag: int) -> LoadModel | None:
    """Fit the lagged linear model of load on traffic; None when there is too little overlapping data."""
    corr = _corr_per_lag(traffic, load, max_lag)
    if np.all(np.isnan(corr)):
        return None
    lag = int(np.nanargmax(corr))
    n = traffic.shape[0]
    x, y = traffic[: n - lag], load[lag:]
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if x.shape[0] < 10:
        return None
    slope, intercept = _fit(x, y)
    resid = y - (intercept + slope * x)
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(resid - np.median(resid))))
    keep = np.abs(resid) <= 3.0 * max(sigma, 1e-9)
    if keep.sum() >= 10 and keep.sum() < x.shape[0]:
        slope, intercept = _fit(x[keep], y[keep])
        resid = y - (intercept + slope * x)
        x, y, resid = x[keep], y[keep], resid[keep]
        sigma = MAD_TO_SIGMA * float(np.median(np.abs(resid - np.median(resid))))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else 0.0
    x_mean = float(x.mean())
    return LoadModel(lag, slope, intercept, max(r2, 0.0), max(sigma, 1e-9), int(x.shape[0]), x_mean,
                     float(np.sum((x - x_mean) ** 2)))


def baseline(values: np.ndarray, quantile: float = 20.0) -> float:
    """A campaign-resistant baseline: a low quantile of the window (a surge is never most of it)."""
    v = values[~np.isnan(values)]
    if v.shape[0] == 0:
        return float("nan")
    return float(np.percentile(v, quantile))


def lift(site_now: float, site_base: float, campaign_now: float, campaign_base: float) -> float:
    """How many times over its baseline the site's traffic is because of this campaign."""
    if site_base == site_base and site_base > 0:
        extra = campaign_now - campaign_base if campaign_base == campaign_base else 0.0
        return (site_base + extra) / site_base
    if campaign_base == campaign_base and campaign_base > 0:
        return campaign_now / campaign_base
    return float("nan")
