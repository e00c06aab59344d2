"""Features, targets, windows and chronological splits for the proxy task.

Taught in: notebooks/06_bybit_data.

Everything here takes a kline DataFrame (UTC ``DatetimeIndex``, float columns
``open high low close volume``, oldest first) and never talks to an exchange.

Two rules keep the numbers honest:

* **Features look back only.** Every feature at bar ``t`` is computed from bars
  ``<= t`` (rolling windows that end at ``t``, no centring, no full-sample
  normalisation). Rows whose windows lack history are dropped, never filled.
* **Targets look forward and are kept apart.** :func:`make_targets` returns what
  happens *after* bar ``t``; :func:`make_windows` pairs the features up to ``t_i``
  with the target after ``t_i``; :func:`chronological_split` leaves a gap of at
  least ``lookback + horizon`` windows between train, validation and test, so no
  input window or target straddles two sets; :class:`Scaler` is fitted on the
  training rows only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwnas.checks import require_int

__all__ = [
    "MINUTES_PER_YEAR",
    "PRICE_COLUMNS",
    "Scaler",
    "Split",
    "TARGET_COLUMNS",
    "chronological_split",
    "feature_warmup",
    "log_returns",
    "make_features",
    "make_targets",
    "make_windows",
    "periods_per_year",
    "realized_volatility",
    "rolling_zscore",
]

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
TARGET_COLUMNS = ("ret_fwd", "direction", "log_vol_fwd", "log_vol_past", "ret_next", "ret_last")
VOL_FLOOR = 1e-6
"""Smallest realised volatility (per bar) before taking a log: a flat stretch of
prices would otherwise give ``log(0) = -inf``."""


def _check_frame(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Raise ValueError unless ``frame`` is a time-ordered kline frame with ``columns``."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame of klines, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"frame is missing column(s) {missing}; a kline frame has {list(PRICE_COLUMNS)}"
        )
    if not frame.index.is_monotonic_increasing or not frame.index.is_unique:
        raise ValueError("frame index must be unique and sorted oldest first")
    if "close" in columns and (frame["close"] <= 0).any():
        raise ValueError("close prices must be positive")


def log_returns(close: pd.Series) -> pd.Series:
    """``r_t = log(close_t / close_{t-1})``; the first value is NaN.

    Taught in: notebooks/06_bybit_data.
    """
    return np.log(close).diff()


def rolling_zscore(series: pd.Series, window: int) -> pd.Series:
    """``(x_t - mean) / std`` over the trailing ``window`` values ending at ``t``.

    The first ``window - 1`` values are NaN; a window with zero spread gives 0.

    Taught in: notebooks/06_bybit_data.
    """
    window = require_int(window, "window", 2)
    rolling = series.rolling(window, min_periods=window)
    mean, std = rolling.mean(), rolling.std()
    z = (series - mean) / std.where(std > 0)
    return z.where(std.isna() | (std > 0), 0.0)


def realized_volatility(returns: pd.Series, window: int) -> pd.Series:
    """Rolling standard deviation of returns over the trailing ``window`` bars.

    Taught in: notebooks/06_bybit_data.
    """
    window = require_int(window, "window", 2)
    return returns.rolling(window, min_periods=window).std()


def feature_warmup(vol_windows: Sequence[int] = (16, 64), momentum_horizons: Sequence[int] = (4, 16, 64),
                   zscore_window: int = 64, volume_window: int = 64) -> int:
    """Number of first rows :func:`make_features` drops because they lack history.

    A return needs the previous close, so a ``w``-bar window of returns first
    exists at row ``w``; a ``w``-bar z-score of prices at row ``w - 1``.

    Taught in: notebooks/06_bybit_data.
    """
    return max([*vol_windows, *momentum_horizons, zscore_window - 1, volume_window - 1, 1])


def make_features(
    frame: pd.DataFrame,
    *,
    vol_windows: Sequence[int] = (16, 64),
    momentum_horizons: Sequence[int] = (4, 16, 64),
    zscore_window: int = 64,
    volume_window: int = 64,
    dropna: bool = True,
) -> pd.DataFrame:
    """Past-only features of a kline frame, one row per bar.

    Columns (all computed from bars ``<= t``):

    * ``ret_1``: the last log return ``log(c_t / c_{t-1})``;
    * ``mom_h``: momentum, the sum of the last ``h`` log returns ``log(c_t / c_{t-h})``;
    * ``log_rv_w``: log realised volatility, the log of the rolling std of returns;
    * ``z_close``: z-score of the close against its trailing mean and std;
    * ``z_volume``: z-score of log volume against its trailing mean and std;
    * ``volume_change``: ``log(v_t / v_{t-1})`` (volume in base coin, floored at a tiny value);
    * ``hl_range``: the bar's range ``log(high_t / low_t)``.

    With ``dropna`` (the default) the first rows, which lack history, are dropped;
    nothing is ever filled in from later bars.

    Taught in: notebooks/06_bybit_data.
    """
    _check_frame(frame, PRICE_COLUMNS)
    vol_windows = [require_int(w, "vol_windows entry", 2) for w in vol_windows]
    momentum_horizons = [require_int(h, "momentum_horizons entry") for h in momentum_horizons]
    zscore_window = require_int(zscore_window, "zscore_window", 2)
    volume_window = require_int(volume_window, "volume_window", 2)

    close = frame["close"].astype(float)
    ret = log_returns(close)
    volume = np.log(frame["volume"].astype(float).clip(lower=1e-12))
    out: dict[str, pd.Series] = {"ret_1": ret}
    for h in momentum_horizons:
        out[f"mom_{h}"] = ret.rolling(h, min_periods=h).sum()
    for w in vol_windows:
        out[f"log_rv_{w}"] = np.log(realized_volatility(ret, w).clip(lower=VOL_FLOOR))
    out["z_close"] = rolling_zscore(close, zscore_window)
    out["z_volume"] = rolling_zscore(volume, volume_window)
    out["volume_change"] = volume.diff()
    out["hl_range"] = np.log(frame["high"].astype(float) / frame["low"].astype(float))
    features = pd.DataFrame(out, index=frame.index)
    if dropna:
        features = features.dropna()
    return features


def make_targets(frame: pd.DataFrame, horizon: int = 1, vol_window: int = 16) -> pd.DataFrame:
    """What happens after each bar ``t`` (these look forward by definition).

    * ``ret_fwd``: the log return over the next ``horizon`` bars, ``log(c_{t+h} / c_t)``;
    * ``direction``: 1.0 when ``ret_fwd > 0`` else 0.0 (NaN where ``ret_fwd`` is);
    * ``log_vol_fwd``: log realised volatility of the next ``vol_window`` bars,
      ``log sqrt(mean(r_{t+1}^2 .. r_{t+k}^2))``;
    * ``log_vol_past``: the same over the last ``vol_window`` bars ending at ``t``
      (past data: the persistence forecast of ``log_vol_fwd``);
    * ``ret_next``: the next bar's log return ``log(c_{t+1} / c_t)``, what a
      position held from ``t`` to ``t + 1`` earns (equal to ``ret_fwd`` when
      ``horizon == 1``);
    * ``ret_last``: the last bar's log return ``log(c_t / c_{t-1})`` (past data:
      the naive "same direction again" forecast).

    The last bars, whose future is not in the frame, hold NaN.

    Taught in: notebooks/06_bybit_data.
    """
    _check_frame(frame, ("close",))
    horizon = require_int(horizon, "horizon")
    vol_window = require_int(vol_window, "vol_window")
    close = frame["close"].astype(float)
    log_close = np.log(close)
    ret = log_close.diff()
    ret_fwd = log_close.shift(-horizon) - log_close
    direction = (ret_fwd > 0).astype(float).where(ret_fwd.notna())
    mean_sq_past = (ret**2).rolling(vol_window, min_periods=vol_window).mean()
    mean_sq_fwd = mean_sq_past.shift(-vol_window)
    log_vol = lambda ms: np.log(np.sqrt(ms).clip(lower=VOL_FLOOR))  # noqa: E731
    return pd.DataFrame(
        {
            "ret_fwd": ret_fwd,
            "direction": direction,
            "log_vol_fwd": log_vol(mean_sq_fwd),
            "log_vol_past": log_vol(mean_sq_past),
            "ret_next": log_close.shift(-1) - log_close,
            "ret_last": ret,
        },
        index=frame.index,
    )


def make_windows(
    features: pd.DataFrame,
    targets: pd.DataFrame | pd.Series,
    lookback: int,
    *,
    dtype: type = np.float32,
) -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex]:
    """Sliding windows of features paired with the target right after each window.

    Window ``i`` ends at bar ``t_i`` and holds feature rows ``t_i - lookback + 1 ..
    t_i`` (consecutive rows of ``features``); its target is the ``targets`` row at
    ``t_i``, which :func:`make_targets` defines as what happens after ``t_i``.
    Windows whose target is missing are dropped.

    Returns ``X`` of shape ``(n, n_features, lookback)`` (``dtype``, C-contiguous),
    ``y`` (``(n,)`` for a Series, ``(n, k)`` for a DataFrame) and the ``index``
    of the ``t_i``. Consecutive windows are one bar apart as long as the features
    frame is contiguous.

    Taught in: notebooks/06_bybit_data.
    """
    lookback = require_int(lookback, "lookback")
    if not isinstance(features, pd.DataFrame):
        raise ValueError(f"features must be a DataFrame, got {type(features).__name__}")
    if features.isna().to_numpy().any():
        raise ValueError("features hold NaN; build them with make_features(..., dropna=True)")
    if len(features) < lookback:
        raise ValueError(f"lookback={lookback} is longer than the {len(features)} feature rows")
    values = features.to_numpy(dtype=dtype)
    ends = features.index[lookback - 1:]
    aligned = targets.reindex(ends)
    mask = aligned.notna().to_numpy()
    if mask.ndim == 2:
        mask = mask.all(axis=1)
    positions = np.flatnonzero(mask)
    view = np.lib.stride_tricks.sliding_window_view(values, lookback, axis=0)  # (T-L+1, F, L)
    X = np.ascontiguousarray(view[positions])
    y = aligned.to_numpy()[positions]
    return X, y, ends[positions]


@dataclass(frozen=True)
class Split:
    """Index ranges of the train, validation and test windows, in time order.

    Taught in: notebooks/06_bybit_data.
    """

    train: range
    val: range
    test: range
    gap: int

    def __iter__(self) -> Iterator[range]:
        return iter((self.train, self.val, self.test))

    def summary(self) -> str:
        """One line per set, for a chapter to print (``describe()`` is the same)."""
        parts = [f"{name:<5} windows {r.start:>6} .. {r.stop - 1:>6} ({len(r):,})"
                 for name, r in zip(("train", "val", "test"), self)]
        return "\n".join(parts + [f"gap   {self.gap} windows dropped between sets"])

    describe = summary


def chronological_split(
    n: int,
    train: float = 0.6,
    val: float = 0.2,
    *,
    lookback: int,
    horizon: int = 1,
    gap: int | None = None,
) -> Split:
    """Split ``n`` consecutive windows into train, validation and test, in time order.

    ``gap`` windows are dropped between train and validation and between validation
    and test. Window ``i`` reads feature rows ``t_i - lookback + 1 .. t_i`` and its
    target reads bars up to ``t_i + horizon``, so the first window of the next set
    shares no bar with the last window or target of the previous one when
    ``gap >= lookback + horizon`` (the default and the minimum allowed). The test
    set gets what is left, ``1 - train - val`` of the windows minus the gaps.

    Taught in: notebooks/06_bybit_data.
    """
    n = require_int(n, "n")
    lookback = require_int(lookback, "lookback")
    horizon = require_int(horizon, "horizon")
    minimum = lookback + horizon
    gap = minimum if gap is None else require_int(gap, "gap", 0)
    if gap < minimum:
        raise ValueError(
            f"gap must be >= lookback + horizon = {minimum} so that no window or target "
            f"straddles two sets, got {gap}"
        )
    for name, value in (("train", train), ("val", val)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must be a fraction in (0, 1), got {value!r}")
    if train + val >= 1:
        raise ValueError(f"train + val must be < 1 to leave a test set, got {train + val}")
    usable = n - 2 * gap
    n_train, n_val = int(usable * train), int(usable * val)
    n_test = usable - n_train - n_val
    if min(n_train, n_val, n_test) < 1:
        raise ValueError(
            f"{n} windows are too few for a train/val/test split with two gaps of {gap}"
        )
    train_r = range(0, n_train)
    val_r = range(n_train + gap, n_train + gap + n_val)
    test_r = range(val_r.stop + gap, n)
    return Split(train_r, val_r, test_r, gap)


class Scaler:
    """Per-column standardisation ``(x - mean) / std`` with statistics from training rows.

    ``fit`` sees only the rows you give it (the training period); ``transform``
    applies those fixed statistics to any rows, optionally clipping to
    ``[-clip, clip]`` so that one extreme bar cannot blow up a short training run.

    Taught in: notebooks/06_bybit_data.
    """

    def __init__(self, clip: float | None = 8.0) -> None:
        self.clip = clip
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None
        self.columns_: list[str] | None = None

    def fit(self, data: pd.DataFrame | np.ndarray) -> Scaler:
        """Learn per-column mean and std (zero spread is treated as 1)."""
        values = np.asarray(data, dtype=np.float64)
        if values.ndim != 2 or len(values) < 2:
            raise ValueError(f"fit needs a 2-D array with at least 2 rows, got shape {values.shape}")
        self.mean_ = values.mean(axis=0)
        std = values.std(axis=0)
        self.std_ = np.where(std > 0, std, 1.0)
        self.columns_ = list(data.columns) if isinstance(data, pd.DataFrame) else None
        return self

    def transform(self, data: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
        """Standardise with the fitted statistics; keeps DataFrame labels."""
        if self.mean_ is None or self.std_ is None:
            raise ValueError("Scaler is not fitted; call fit(train_rows) first")
        values = np.asarray(data, dtype=np.float64)
        if values.shape[-1] != len(self.mean_):
            raise ValueError(f"expected {len(self.mean_)} columns, got {values.shape[-1]}")
        out = (values - self.mean_) / self.std_
        if self.clip is not None:
            out = np.clip(out, -self.clip, self.clip)
        if isinstance(data, pd.DataFrame):
            return pd.DataFrame(out, index=data.index, columns=data.columns)
        return out


MINUTES_PER_YEAR = 365 * 24 * 60  # crypto trades around the clock, every day of a 365-day year


def periods_per_year(index_or_interval: pd.DatetimeIndex | str | int) -> float:
    """Bars per year for crypto, which trades around the clock every day.

    Accepts a Bybit interval in minutes (``"15"``, ``60``), ``"D"``/``"W"``, or a
    regular ``DatetimeIndex`` (its median spacing is used). 15-minute bars give
    ``365 * 24 * 4 = 35,040`` (:data:`MINUTES_PER_YEAR`).

    Taught in: notebooks/06_bybit_data.
    """
    if isinstance(index_or_interval, pd.DatetimeIndex):
        if len(index_or_interval) < 2:
            raise ValueError("need at least two timestamps to infer the bar interval")
        step = pd.Series(index_or_interval).diff().median()
        minutes = step / pd.Timedelta(minutes=1)
    else:
        text = str(index_or_interval).strip().upper()
        named = {"D": 1440, "W": 10080}
        if text in named:
            minutes = named[text]
        elif text.isdigit() and int(text) > 0:
            minutes = int(text)
        else:
            raise ValueError(
                f"interval {index_or_interval!r} unknown; give minutes such as '15' or 60, 'D' or 'W'"
            )
    return MINUTES_PER_YEAR / float(minutes)
