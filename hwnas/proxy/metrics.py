"""Forecast and trading metrics of the proxy task, and the one-way ANOVA of the noise study.

Taught in: notebooks/06_bybit_data.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ..numerics import spearman


def directional_accuracy(pred: np.ndarray, realised: np.ndarray) -> float:
    """Share of the calls that were right: ``sign(pred) == sign(realised)``.

    A prediction of exactly zero makes no call and a realised return of exactly
    zero has no direction; both bars are left out. NaN when no bar is left (a
    model that always outputs zero).

    Taught in: notebooks/06_bybit_data.
    """
    pred, realised = np.asarray(pred, float), np.asarray(realised, float)
    keep = (realised != 0) & (pred != 0)
    if not keep.any():
        return float("nan")
    return float(np.mean(np.sign(pred[keep]) == np.sign(realised[keep])))


def information_coefficient(pred: np.ndarray, realised: np.ndarray) -> float:
    """Spearman rank correlation of predictions and realised returns (NaN if constant).

    Taught in: notebooks/06_bybit_data.
    """
    return spearman(pred, realised)


def strategy_returns(positions: np.ndarray, returns: np.ndarray, cost_bps: float = 0.0,
                     initial_position: float = 0.0) -> np.ndarray:
    """Per-bar P&L of holding ``positions[t]`` over the return ``returns[t]`` that follows.

    ``pnl_t = pos_t * r_t - c * |pos_t - pos_{t-1}|`` with ``c = cost_bps / 10^4``
    per unit of turnover (going from +1 to -1 trades 2 units) and
    ``pos_{-1} = initial_position``.

    Taught in: notebooks/06_bybit_data.
    """
    pos, ret = np.asarray(positions, float), np.asarray(returns, float)
    if pos.shape != ret.shape:
        raise ValueError(f"positions and returns must have the same shape, got {pos.shape} and {ret.shape}")
    if cost_bps < 0:
        raise ValueError(f"cost_bps must be >= 0, got {cost_bps}")
    turnover = np.abs(np.diff(pos, prepend=initial_position))
    return pos * ret - cost_bps * 1e-4 * turnover


def sharpe_ratio(pnl: np.ndarray, periods_per_year: float = 1.0) -> float:
    """Annualised Sharpe ratio ``mean / std * sqrt(periods_per_year)`` (zero risk-free rate).

    ``std`` is the sample standard deviation (ddof 1). NaN when it is zero.

    Taught in: notebooks/06_bybit_data.
    """
    pnl = np.asarray(pnl, float)
    if len(pnl) < 2:
        return float("nan")
    std = pnl.std(ddof=1)
    if not std > 0:
        return float("nan")
    return float(pnl.mean() / std * math.sqrt(periods_per_year))


def sharpe_standard_error(sharpe: float, n: int, periods_per_year: float = 1.0) -> float:
    """Standard error of an annualised Sharpe ratio estimated from ``n`` i.i.d. bars.

    With ``s`` the per-bar Sharpe ratio, ``se(s) = sqrt((1 + s^2 / 2) / n)``
    (Lo, 2002); annualising multiplies both by ``sqrt(periods_per_year)``.

    Taught in: notebooks/06_bybit_data.
    """
    per_bar = sharpe / math.sqrt(periods_per_year)
    return math.sqrt((1 + 0.5 * per_bar**2) / n) * math.sqrt(periods_per_year)


def qlike(forecast_var: np.ndarray, realised_var: np.ndarray) -> float:
    """Mean QLIKE loss ``s/h - log(s/h) - 1`` of variance forecasts ``h`` for realised ``s``.

    Zero for a perfect forecast, always >= 0, and it punishes forecasting too
    little variance more than too much (Patton, 2011).

    Taught in: notebooks/06_bybit_data.
    """
    h, s = np.asarray(forecast_var, float), np.asarray(realised_var, float)
    if (h <= 0).any() or (s <= 0).any():
        raise ValueError("variances must be positive for QLIKE")
    ratio = s / h
    return float(np.mean(ratio - np.log(ratio) - 1))


def qlike_log_vol(forecast_log_vol: np.ndarray, realised_log_vol: np.ndarray) -> float:
    """:func:`qlike` of volatility forecasts given as log volatilities, computed in log space.

    With ``h = exp(2 f)`` and ``s = exp(2 y)``, ``s/h = exp(2 (y - f))``, so the loss
    needs no variance that floats cannot hold: a model that diverged to a huge negative
    log volatility (a variance that underflows to 0) scores ``inf``, the loss of a
    forecast of no variance at all, instead of an error; a NaN forecast scores NaN.

    Taught in: notebooks/06_bybit_data.
    """
    gap = 2.0 * (np.asarray(realised_log_vol, float) - np.asarray(forecast_log_vol, float))
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.mean(np.exp(gap) - gap - 1.0))


def r2_against(pred: np.ndarray, realised: np.ndarray, baseline: np.ndarray | float) -> float:
    """Out-of-sample ``R^2 = 1 - SSE(pred) / SSE(baseline)``: > 0 beats the baseline.

    Taught in: notebooks/06_bybit_data.
    """
    pred, realised = np.asarray(pred, float), np.asarray(realised, float)
    base = np.broadcast_to(np.asarray(baseline, float), realised.shape)
    sse_base = float(np.sum((realised - base) ** 2))
    if sse_base == 0:
        return float("nan")
    return 1.0 - float(np.sum((realised - pred) ** 2)) / sse_base


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of ``a`` and ``b`` (NaN when either is constant).

    Taught in: notebooks/06_bybit_data.
    """
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def one_way_anova(scores: np.ndarray) -> dict[str, float]:
    """How much of the score variance the architecture explains.

    ``scores`` is ``(architectures, seeds)``. Returns the one-way ANOVA ``F``
    statistic and its p-value (are the architecture means different at all?),
    the intraclass correlation ``ICC(1) = (MSB - MSW) / (MSB + (k - 1) MSW)``
    (the share of the variance of a single run that is due to the architecture,
    the rest being seed noise), the mean between-architecture and within-
    architecture standard deviations.

    Taught in: notebooks/06_bybit_data.
    """
    scores = np.asarray(scores, float)
    if scores.ndim != 2 or scores.shape[0] < 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must be (architectures >= 2, seeds >= 2), got shape {scores.shape}")
    scores = scores[np.isfinite(scores).all(axis=1)]
    a, k = scores.shape
    means = scores.mean(axis=1)
    msb = k * np.sum((means - means.mean()) ** 2) / (a - 1)
    msw = np.sum((scores - means[:, None]) ** 2) / (a * (k - 1))
    f = msb / msw if msw > 0 else float("inf")
    p = float(stats.f.sf(f, a - 1, a * (k - 1))) if np.isfinite(f) else 0.0
    icc = (msb - msw) / (msb + (k - 1) * msw) if (msb + (k - 1) * msw) > 0 else float("nan")
    return {
        "architectures": int(a),
        "seeds": int(k),
        "f": float(f),
        "p": p,
        "icc": float(icc),
        "between_std": float(means.std(ddof=1)),
        "within_std": float(math.sqrt(msw)),
    }


__all__ = [
    "directional_accuracy",
    "information_coefficient",
    "one_way_anova",
    "pearson",
    "qlike",
    "qlike_log_vol",
    "r2_against",
    "sharpe_ratio",
    "sharpe_standard_error",
    "strategy_returns",
]
