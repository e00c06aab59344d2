"""Kline CSV files: a reader for recorded data and an on-disk cache of Bybit klines.

:func:`read_kline_csv` reads both the recorded Bybit files (``timestamp,open,high,
low,close,volume``, timestamps ``YYYY-MM-DD HH:MM:SS`` in UTC) and the cache's own
files (the same plus ``turnover``).  :class:`KlineCache` keeps one CSV per
(category, symbol, interval), written atomically and extended incrementally.

Taught in: the Bybit data chapter of the course.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import warnings
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from hwnas.data.bybit import (
    BYBIT_BASE_URL,
    KlineGapWarning,
    fetch_bybit_klines,
)
from hwnas.data.klines import (
    KLINE_COLUMNS,
    TimeLike,
    candles_between,
    check_limit,
    describe_gaps,
    empty_kline_frame,
    find_gaps,
    interval_label,
    next_open_ms,
    normalize_category,
    normalize_interval,
    to_ms,
)
from hwnas.fileio import write_atomic

__all__ = ["CACHE_ENV", "KlineCache", "default_cache_dir", "read_kline_csv"]

CACHE_ENV = "HWNAS_CACHE_DIR"
"""Environment variable naming the cache folder."""

_REQUIRED = ("timestamp", "open", "high", "low", "close", "volume")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _lines(mask: np.ndarray, show: int = 5) -> str:
    """CSV line numbers (header is line 1) of the true entries of ``mask``."""
    rows = np.flatnonzero(mask)
    text = ", ".join(str(int(r) + 2) for r in rows[:show])
    return text + (f" and {len(rows) - show} more" if len(rows) > show else "")


def read_kline_csv(path: str | os.PathLike[str], *, interval: str | int | None = None) -> pd.DataFrame:
    """Read a kline CSV into the standard kline frame.

    Required columns: ``timestamp, open, high, low, close, volume``; ``timestamp`` is
    the candle open time, either ``YYYY-MM-DD HH:MM:SS`` (UTC unless an offset is
    given) or integer milliseconds since the epoch.  ``turnover`` is optional: when it
    is absent (the recorded Bybit files dropped it) it is *estimated* as typical price
    times volume, ``(high + low + close) / 3 * volume``, and
    ``frame.attrs["turnover_estimated"]`` is set to True.

    Raises ``ValueError`` naming the missing columns, the lines that cannot be parsed,
    candles whose low/high do not bracket open and close (or negative volume), or the
    first line where timestamps do not strictly increase.  With ``interval``
    given, gaps are listed in ``attrs["gaps"]`` and reported with a warning.

    Taught in: notebooks/06_bybit_data.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty; a kline CSV needs a header line "
                         f"{', '.join(_REQUIRED)} and candles") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a readable CSV file ({first})") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in _REQUIRED if c not in raw.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)}; a kline CSV needs "
            f"{', '.join(_REQUIRED)} (turnover optional); found {', '.join(raw.columns)}"
        )
    if raw.empty:
        frame = empty_kline_frame()
        frame.attrs["path"] = str(path)
        return frame

    stamps_text = raw["timestamp"].str.strip()
    if stamps_text.str.fullmatch(r"\d{10,}").all():
        stamps = pd.to_datetime(stamps_text.astype(np.int64), unit="ms", utc=True)
    else:
        stamps = pd.to_datetime(stamps_text, utc=True, format="ISO8601", errors="coerce")
    bad = stamps.isna().to_numpy()
    if bad.any():
        raise ValueError(f"{path}: unparsable timestamp on line(s) {_lines(bad)} "
                         f"(expected 'YYYY-MM-DD HH:MM:SS' UTC or ms since the epoch)")
    index = pd.DatetimeIndex(stamps, name="timestamp").as_unit("ns")

    columns = [c for c in KLINE_COLUMNS if c in raw.columns]
    data: dict[str, np.ndarray] = {}
    for column in columns:
        values = pd.to_numeric(raw[column].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(f"{path}: unparsable or missing {column!r} value on line(s) {_lines(bad)}")
        data[column] = values

    inconsistent = (
        (data["low"] > np.minimum(data["open"], data["close"]))
        | (data["high"] < np.maximum(data["open"], data["close"]))
        | (data["volume"] < 0)
    )
    if inconsistent.any():
        raise ValueError(
            f"{path}: inconsistent candle on line(s) {_lines(inconsistent)}: a kline needs "
            f"low <= open, close <= high and volume >= 0"
        )

    step = np.diff(index.asi8)
    if (step <= 0).any():
        i = int(np.flatnonzero(step <= 0)[0]) + 1
        kind = "duplicate" if step[i - 1] == 0 else "decreasing"
        raise ValueError(
            f"{path}: timestamps must strictly increase; line {i + 2} ({index[i]}) is "
            f"{kind} after line {i + 1} ({index[i - 1]})"
        )

    frame = pd.DataFrame(data, index=index)
    estimated = "turnover" not in frame.columns
    if estimated:
        frame["turnover"] = (frame["high"] + frame["low"] + frame["close"]) / 3.0 * frame["volume"]
    frame = frame[list(KLINE_COLUMNS)].astype(np.float64)
    frame.attrs.update({"path": str(path), "turnover_estimated": estimated})
    if interval is not None:
        gaps = find_gaps(frame.index, interval)
        frame.attrs["gaps"] = gaps
        if gaps:
            warnings.warn(describe_gaps(gaps, str(path)) + " (not filled)", KlineGapWarning,
                          stacklevel=2)
    return frame


def default_cache_dir() -> Path:
    """``$HWNAS_CACHE_DIR`` if set, else ``~/.cache/hwnas/klines``.

    Taught in: notebooks/06_bybit_data.
    """
    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hwnas" / "klines"


def _write_frame(frame: pd.DataFrame, handle: IO[str]) -> None:
    """Write a kline frame as CSV (the cache's file format)."""
    out = frame[list(KLINE_COLUMNS)].copy()
    out.index = out.index.strftime(_TIME_FORMAT)
    out.index.name = "timestamp"
    out.to_csv(handle, float_format="%.10g", lineterminator="\n")


def _check_frame(frame: pd.DataFrame) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame; got {type(frame).__name__}")
    missing = [c for c in KLINE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"frame is missing column(s) {', '.join(missing)}; "
                         f"kline frames have {', '.join(KLINE_COLUMNS)}")
    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
        raise ValueError("frame must have a timezone-aware (UTC) DatetimeIndex of candle open times")
    if not frame.index.is_monotonic_increasing or frame.index.has_duplicates:
        raise ValueError("frame timestamps must strictly increase (sort and de-duplicate first)")


def _merge(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Union of two kline frames; where both hold a candle, the newer download wins."""
    parts = [f[list(KLINE_COLUMNS)] for f in (old, new) if len(f)]
    if not parts:
        return empty_kline_frame()
    merged = pd.concat(parts)
    merged.index = merged.index.tz_convert("UTC").as_unit("ns")
    merged = merged[~merged.index.duplicated(keep="last")].sort_index()
    merged.index.name = "timestamp"
    merged.attrs = {}
    return merged.astype(np.float64)


class KlineCache:
    """One CSV file of klines per (category, symbol, interval) in a folder.

    ``directory`` defaults to ``$HWNAS_CACHE_DIR`` or ``~/.cache/hwnas/klines``; it
    is created on the first write.  File names are a safe slug of the symbol plus a
    short hash of the exact key, so odd symbols (``"../x"``, ``"BTC/USDT"``) can
    neither leave the folder nor collide.  Files are replaced atomically.

    Taught in: notebooks/06_bybit_data.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory is not None else default_cache_dir()

    def __repr__(self) -> str:
        return f"KlineCache({str(self.directory)!r})"

    def path_for(self, symbol: str, interval: str | int, category: str = "linear") -> Path:
        """The file that holds (category, symbol, interval); it may not exist yet."""
        if not isinstance(symbol, str) or not symbol.strip():
            raise ValueError(f"symbol must be a non-empty string; got {symbol!r}")
        interval = normalize_interval(interval)
        category = normalize_category(category)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", symbol).strip("-")[:40] or "symbol"
        digest = hashlib.sha256(f"{category}\0{symbol}\0{interval}".encode()).hexdigest()[:10]
        return self.directory / f"{category}_{slug}_{interval_label(interval)}_{digest}.csv"

    def load(self, symbol: str, interval: str | int, category: str = "linear") -> pd.DataFrame | None:
        """The cached frame, or ``None`` when nothing is cached."""
        path = self.path_for(symbol, interval, category)
        if not path.is_file():
            return None
        frame = read_kline_csv(path)
        frame.attrs = {"path": str(path), "symbol": symbol,
                       "interval": normalize_interval(interval), "category": category}
        return frame

    def save(self, frame: pd.DataFrame, symbol: str, interval: str | int,
             category: str = "linear") -> Path:
        """Write ``frame`` atomically (temp file in the same folder, then ``os.replace``)."""
        _check_frame(frame)
        path = self.path_for(symbol, interval, category)
        return write_atomic(path, lambda handle: _write_frame(frame, handle), newline="")

    def merge(self, frame: pd.DataFrame, symbol: str, interval: str | int,
              category: str = "linear") -> pd.DataFrame:
        """Merge ``frame`` into the cached file (de-duplicated, sorted) and return the union."""
        old = self.load(symbol, interval, category)
        merged = _merge(old if old is not None else empty_kline_frame(), frame)
        path = self.save(merged, symbol, interval, category)
        merged.attrs.update({"path": str(path), "symbol": symbol,
                             "interval": normalize_interval(interval), "category": category})
        return merged

    def update(
        self,
        symbol: str,
        interval: str | int,
        *,
        category: str = "linear",
        limit: int = 1000,
        base_url: str = BYBIT_BASE_URL,
        timeout: float = 10.0,
        now: TimeLike | None = None,
        **fetch_kwargs: Any,
    ) -> pd.DataFrame:
        """Bring the cached file up to date from Bybit and return it.

        With nothing cached, the newest ``limit`` closed candles are downloaded.
        Otherwise only candles that opened after the last cached one are asked for
        (none at all if the next candle has not closed yet), then merged.
        ``attrs["new_rows"]`` says how many candles were added.  Extra keyword
        arguments go to :func:`~hwnas.data.bybit.fetch_bybit_klines`.
        """
        interval = normalize_interval(interval)
        category = normalize_category(category)
        limit = check_limit(limit)
        now_ms = to_ms(now, "now") if now is not None else int(time.time() * 1000)
        old = self.load(symbol, interval, category)
        kwargs: dict[str, Any] = dict(category=category, base_url=base_url, timeout=timeout,
                                      now=now_ms, **fetch_kwargs)
        if old is None or old.empty:
            old = empty_kline_frame()
            new = fetch_bybit_klines(symbol, interval, limit, warn_gaps=False, **kwargs)
        else:
            last_ms = int(old.index[-1].value // 1_000_000)
            start_ms = next_open_ms(last_ms, interval)
            if next_open_ms(start_ms, interval) > now_ms:
                old.attrs["new_rows"] = 0
                return old  # the next candle is still open: nothing to ask for
            count = candles_between(start_ms, now_ms, interval)
            new = fetch_bybit_klines(symbol, interval, count, start=start_ms, warn_gaps=False,
                                     **kwargs)
        merged = _merge(old, new)
        path = self.save(merged, symbol, interval, category)
        merged.attrs.update({"path": str(path), "symbol": symbol, "interval": interval,
                             "category": category})
        merged.attrs["new_rows"] = len(merged) - len(old)
        gaps = find_gaps(merged.index, interval)
        merged.attrs["gaps"] = gaps
        fresh = [g for g in gaps if len(old) == 0 or g["before"] > old.index[-1]]
        if fresh:
            warnings.warn(describe_gaps(fresh, f"cache {merged.attrs['path']}") + " (not filled)",
                          KlineGapWarning, stacklevel=2)
        return merged

    def files(self) -> list[Path]:
        """The cache files present in the folder."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("*.csv") if p.is_file())

