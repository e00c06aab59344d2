"""Synthetic klines: the clearly labelled fallback when no real data is at hand.

The series is *not* market data.  It only mimics two well-known stylised facts of
crypto returns so that code paths and chapters run: volatility clustering (a
GARCH(1,1) variance) and fat tails (Student-t innovations).  Every frame it makes
carries ``attrs["synthetic"] = True`` and a description that says so.

Taught in: the Bybit data chapter of the course.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hwnas.data.features import MINUTES_PER_YEAR
from hwnas.data.klines import (
    FIXED_INTERVAL_MS,
    KLINE_COLUMNS,
    TimeLike,
    check_limit,
    normalize_interval,
    to_ms,
)

__all__ = ["SYNTHETIC_LABEL", "synthetic_klines"]

SYNTHETIC_LABEL = "SYNTHETIC — not market data"
_MONTH_MINUTES = MINUTES_PER_YEAR / 12


def _timestamps(n: int, interval: str, start: TimeLike) -> pd.DatetimeIndex:
    first = pd.Timestamp(to_ms(start, "start"), unit="ms", tz="UTC")
    freq = "MS" if interval == "M" else pd.Timedelta(milliseconds=FIXED_INTERVAL_MS[interval])
    index = pd.date_range(first, periods=n, freq=freq, name="timestamp")
    return pd.DatetimeIndex(index, name="timestamp").as_unit("ns")


def synthetic_klines(
    n: int,
    interval: str | int = "15",
    *,
    seed: int | np.random.Generator,
    start: TimeLike = "2024-01-01",
    price: float = 30_000.0,
    annual_vol: float = 0.6,
    tail_df: float = 4.0,
    alpha: float = 0.08,
    beta: float = 0.90,
) -> pd.DataFrame:
    """``n`` SYNTHETIC candles shaped like the frames of :func:`fetch_bybit_klines`.

    Log returns follow ``r_t = sigma_t * z_t`` with ``sigma_t^2 = omega +
    alpha * r_{t-1}^2 + beta * sigma_{t-1}^2`` (GARCH(1,1)) and ``z_t`` a Student-t
    with ``tail_df`` degrees of freedom scaled to unit variance; ``omega`` is set so
    the long-run volatility is ``annual_vol`` per year.  Each candle opens at the
    previous close; high and low extend beyond open/close by a random part of
    ``sigma_t`` (so ``low <= open, close <= high``); volume is positive and grows
    with ``|r_t|``; turnover is typical price times volume.  The same ``seed`` gives
    the same frame.  ``attrs["synthetic"]`` is True and ``attrs["description"]``
    says it is not market data.

    Taught in: notebooks/06_bybit_data.
    """
    n = check_limit(n, "n")
    interval = normalize_interval(interval)
    if not (price > 0 and np.isfinite(price)):
        raise ValueError(f"price must be a positive number; got {price!r}")
    if not (annual_vol > 0 and np.isfinite(annual_vol)):
        raise ValueError(f"annual_vol must be a positive number; got {annual_vol!r}")
    if not tail_df > 2:
        raise ValueError(f"tail_df must be > 2 (finite variance); got {tail_df!r}")
    if not (alpha >= 0 and beta >= 0 and alpha + beta < 1):
        raise ValueError(f"alpha and beta must be >= 0 with alpha + beta < 1; got {alpha!r}, {beta!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    minutes = _MONTH_MINUTES if interval == "M" else FIXED_INTERVAL_MS[interval] / 60_000
    long_run_var = annual_vol**2 * minutes / MINUTES_PER_YEAR
    omega = long_run_var * (1.0 - alpha - beta)

    z = rng.standard_t(tail_df, size=n) * np.sqrt((tail_df - 2.0) / tail_df)
    returns = np.empty(n)
    sigma = np.empty(n)
    var, prev_r = long_run_var, 0.0
    for t in range(n):
        var = omega + alpha * prev_r**2 + beta * var
        sigma[t] = np.sqrt(var)
        returns[t] = prev_r = sigma[t] * z[t]

    close = price * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([price], close[:-1]))
    wick_up = np.abs(rng.normal(size=n)) * sigma * 0.5
    wick_down = np.abs(rng.normal(size=n)) * sigma * 0.5
    high = np.maximum(open_, close) * np.exp(wick_up)
    low = np.minimum(open_, close) * np.exp(-wick_down)

    base_volume = 40.0 * minutes  # roughly BTC per candle on a large perpetual
    activity = 0.5 + np.abs(returns) / np.sqrt(long_run_var)
    volume = base_volume * activity * np.exp(0.5 * rng.normal(size=n))
    turnover = (high + low + close) / 3.0 * volume

    frame = pd.DataFrame(
        np.column_stack([open_, high, low, close, volume, turnover]),
        index=_timestamps(n, interval, start),
        columns=list(KLINE_COLUMNS),
    ).astype(np.float64)
    seed_text = "Generator" if isinstance(seed, np.random.Generator) else repr(seed)
    frame.attrs.update({
        "synthetic": True,
        "source": "synthetic",
        "interval": interval,
        "gaps": [],
        "description": (
            f"{SYNTHETIC_LABEL}: GARCH(1,1) volatility, Student-t({tail_df:g}) shocks, "
            f"seed={seed_text}"
        ),
    })
    return frame
