"""Klines as data: Bybit's intervals and categories, times in milliseconds, gaps, empty frames.

Taught in: notebooks/06_bybit_data.

What every kline source of :mod:`hwnas.data` (the HTTP client in :mod:`hwnas.data.bybit`,
the cache, CSV files, the synthetic generator) agrees on: the interval names and their
lengths, how a time becomes Bybit's milliseconds, how many candles lie between two
times, where a series has gaps, and the shape of a kline frame.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from hwnas.checks import require_int

__all__ = [
    "CATEGORIES", "FIXED_INTERVAL_MS", "INTERVALS", "INTERVAL_LABELS", "KLINE_COLUMNS", "MINUTE_MS",
    "TimeLike", "candles_between", "check_limit", "check_symbol", "describe_gaps",
    "empty_kline_frame", "find_gaps", "frame_from_rows", "interval_label", "next_open_ms",
    "normalize_category", "normalize_interval", "to_ms",
]

INTERVALS: tuple[str, ...] = (
    "1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M",
)
"""Bybit's kline intervals: minutes, then day, week and month."""

CATEGORIES: tuple[str, ...] = ("spot", "linear", "inverse")
"""Bybit product categories that serve klines."""

INTERVAL_LABELS: dict[str, str] = {
    "1": "1m", "3": "3m", "5": "5m", "15": "15m", "30": "30m",
    "60": "1h", "120": "2h", "240": "4h", "360": "6h", "720": "12h",
    "D": "1d", "W": "1w", "M": "1M",
}
"""Bybit interval -> the short label used in file names (``BTCUSDT_1h_*.csv``)."""

LABEL_TO_INTERVAL = {label: interval for interval, label in INTERVAL_LABELS.items()}

KLINE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "turnover")
"""The float64 columns of every kline frame in :mod:`hwnas.data`."""

MINUTE_MS = 60_000
FIXED_INTERVAL_MS: dict[str, int] = {
    **{m: int(m) * MINUTE_MS for m in INTERVALS if m.isdigit()},
    "D": 1440 * MINUTE_MS,
    "W": 7 * 1440 * MINUTE_MS,
}
SYMBOL_RE = re.compile(r"[A-Za-z0-9]+")

TimeLike: TypeAlias = int | float | str | _dt.datetime | pd.Timestamp | np.datetime64


# ---------------------------------------------------------------- argument checking


def normalize_interval(interval: str | int) -> str:
    """Return Bybit's spelling of ``interval`` (``15`` -> ``"15"``, ``"1h"`` -> ``"60"``).

    Accepts Bybit intervals as strings or ints, ``"d"``/``"w"`` in lower case, and
    the file-name labels of :data:`INTERVAL_LABELS` (``"15m"``, ``"1h"``, ``"1d"``...).

    Taught in: notebooks/06_bybit_data.
    """
    if isinstance(interval, (bool, np.bool_)):
        pass  # bool is an int subclass; reject it below
    elif isinstance(interval, (int, np.integer)):
        if str(int(interval)) in INTERVALS:
            return str(int(interval))
    elif isinstance(interval, str):
        text = interval.strip()
        if text in INTERVALS:
            return text
        if text in ("d", "w"):
            return text.upper()
        if text in LABEL_TO_INTERVAL:
            return LABEL_TO_INTERVAL[text]
    raise ValueError(
        f"interval must be one of {', '.join(INTERVALS)} (ints such as 15 and labels "
        f"such as '15m', '1h', '1d' are accepted too); got {interval!r}"
    )


def interval_label(interval: str | int) -> str:
    """The short label of an interval, as used in file names (``"60"`` -> ``"1h"``).

    Taught in: notebooks/06_bybit_data.
    """
    return INTERVAL_LABELS[normalize_interval(interval)]


def normalize_category(category: str) -> str:
    """Check a Bybit product category (``spot``, ``linear`` or ``inverse``).

    Taught in: notebooks/06_bybit_data.
    """
    if isinstance(category, str) and category.strip().lower() in CATEGORIES:
        return category.strip().lower()
    raise ValueError(f"category must be one of {', '.join(CATEGORIES)}; got {category!r}")


def check_symbol(symbol: str) -> str:
    """``symbol`` if it is a Bybit symbol (ASCII letters and digits such as ``BTCUSDT``).

    Taught in: notebooks/06_bybit_data.
    """
    if not isinstance(symbol, str) or not SYMBOL_RE.fullmatch(symbol):
        raise ValueError(
            "symbol must be a non-empty string of ASCII letters and digits "
            f"such as 'BTCUSDT'; got {symbol!r}"
        )
    return symbol


def check_limit(limit: int, name: str = "limit") -> int:
    """``limit`` as an int >= 1 (:func:`hwnas.checks.require_int`), in this API's words.

    Taught in: notebooks/06_bybit_data.
    """
    try:
        return require_int(limit, name, 1)
    except ValueError:
        raise ValueError(f"{name} must be a positive int; got {limit!r}") from None


def to_ms(value: TimeLike, name: str = "time") -> int:
    """Convert a time to Bybit's milliseconds since the epoch (UTC).

    Ints and floats are taken as milliseconds; naive datetimes and strings without
    a zone are taken as UTC.

    Taught in: notebooks/06_bybit_data.
    """
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a time (ms int, datetime, Timestamp); got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite time; got {value!r}")
        return int(value)
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a time (ms int, datetime, pandas Timestamp or ISO string); "
            f"got {value!r}"
        ) from exc
    if stamp is pd.NaT or pd.isna(stamp):
        raise ValueError(f"{name} must be a time; got {value!r}")
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.as_unit("ns").value // 1_000_000)


# ------------------------------------------------------------------ interval maths


def next_open_ms(ts_ms: int, interval: str) -> int:
    """Open time of the candle after the one opening at ``ts_ms``.

    Taught in: notebooks/06_bybit_data.
    """
    if interval == "M":
        stamp = pd.Timestamp(ts_ms, unit="ms", tz="UTC") + pd.DateOffset(months=1)
        return int(stamp.as_unit("ns").value // 1_000_000)
    return ts_ms + FIXED_INTERVAL_MS[interval]


def candles_between(start_ms: int, stop_ms: int, interval: str) -> int:
    """How many candle opens lie in ``[start_ms, stop_ms]`` (0 if empty).

    Taught in: notebooks/06_bybit_data.
    """
    if stop_ms < start_ms:
        return 0
    if interval == "M":
        a = pd.Timestamp(start_ms, unit="ms", tz="UTC")
        b = pd.Timestamp(stop_ms, unit="ms", tz="UTC")
        return (b.year - a.year) * 12 + (b.month - a.month) + 1
    return (stop_ms - start_ms) // FIXED_INTERVAL_MS[interval] + 1


def find_gaps(index: pd.DatetimeIndex, interval: str | int) -> list[dict[str, Any]]:
    """Missing candles in a sorted ``index`` of candle open times.

    Returns one dict per gap: ``after`` (last candle before it), ``before`` (first
    candle after it), ``position`` (row of ``before``) and ``missing`` (how many
    candles are absent).  Month candles ("M") step by calendar months.

    Taught in: notebooks/06_bybit_data.
    """
    interval = normalize_interval(interval)
    if len(index) < 2:
        return []
    ms = np.asarray(index.as_unit("ns").asi8 // 1_000_000, dtype=np.int64)
    gaps: list[dict[str, Any]] = []
    if interval == "M":
        for i in range(1, len(ms)):
            expected = next_open_ms(int(ms[i - 1]), interval)
            if ms[i] > expected:
                gaps.append(_gap(index, i, candles_between(expected, int(ms[i]), "M") - 1))
        return gaps
    step = FIXED_INTERVAL_MS[interval]
    for j in np.flatnonzero(np.diff(ms) > step) + 1:
        gaps.append(_gap(index, int(j), int((ms[j] - ms[j - 1]) // step - 1)))
    return gaps


def _gap(index: pd.DatetimeIndex, i: int, missing: int) -> dict[str, Any]:
    return {"after": index[i - 1], "before": index[i], "position": i, "missing": max(missing, 1)}


def describe_gaps(gaps: Sequence[Mapping[str, Any]], what: str, show: int = 5) -> str:
    """One readable line per gap (at most ``show``), for warnings and reports.

    Taught in: notebooks/06_bybit_data.
    """
    parts = [
        f"{g['after']:%Y-%m-%d %H:%M} -> {g['before']:%Y-%m-%d %H:%M} "
        f"(row {g['position']}, {g['missing']} missing)"
        for g in gaps[:show]
    ]
    more = f"; and {len(gaps) - show} more" if len(gaps) > show else ""
    return f"{len(gaps)} gap(s) in {what}: " + "; ".join(parts) + more


def empty_kline_frame() -> pd.DataFrame:
    """A kline frame with no rows but the right index and columns.

    Taught in: notebooks/06_bybit_data.
    """
    index = pd.DatetimeIndex([], tz="UTC", name="timestamp").as_unit("ns")
    return pd.DataFrame({c: np.array([], dtype=np.float64) for c in KLINE_COLUMNS}, index=index)


def frame_from_rows(ms: Sequence[int], values: Sequence[Sequence[float]]) -> pd.DataFrame:
    """A kline frame from open times (ms) and rows of :data:`KLINE_COLUMNS` values.

    Taught in: notebooks/06_bybit_data.
    """
    if not ms:
        return empty_kline_frame()
    index = pd.DatetimeIndex(pd.to_datetime(np.asarray(ms, dtype=np.int64), unit="ms", utc=True),
                             name="timestamp").as_unit("ns")
    data = np.asarray(values, dtype=np.float64).reshape(len(ms), len(KLINE_COLUMNS))
    return pd.DataFrame(data, index=index, columns=list(KLINE_COLUMNS))
