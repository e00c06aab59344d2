"""``load_klines``: real data first, an honest synthetic fallback last.

Order of sources:

1. **recorded** - a folder of recorded kline CSVs (argument ``recorded_dir`` or the
   environment variable ``HWNAS_BYBIT_DIR``), files named like
   ``BTCUSDT_15m_2024.csv`` or ``BTCUSDT_1h_2021_2024.csv``;
2. **cache** - the on-disk :class:`~hwnas.data.cache.KlineCache`, refreshed from
   Bybit with only the new candles unless offline;
3. **live** - Bybit V5 (skipped when offline: argument ``offline`` or
   ``HWNAS_OFFLINE=1``), saved to the cache;
4. **synthetic** - :func:`~hwnas.data.synthetic.synthetic_klines`, with a loud
   :class:`SyntheticDataWarning`.

Taught in: the Bybit data chapter of the course.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hwnas.data.bybit import (
    BYBIT_BASE_URL,
    KLINE_PATH,
    BybitAPIError,
    KlineGapWarning,
    fetch_bybit_klines,
)
from hwnas.data.cache import KlineCache, read_kline_csv
from hwnas.data.klines import (
    check_limit,
    check_symbol,
    describe_gaps,
    find_gaps,
    interval_label,
    normalize_category,
    normalize_interval,
)
from hwnas.data.synthetic import SYNTHETIC_LABEL, synthetic_klines

__all__ = [
    "DEFAULT_LIMIT",
    "OFFLINE_ENV",
    "offline_from_env",
    "RECORDED_ENV",
    "SOURCES",
    "KlineData",
    "SyntheticDataWarning",
    "find_recorded_file",
    "load_kline_path",
    "load_klines",
]

RECORDED_ENV = "HWNAS_BYBIT_DIR"
OFFLINE_ENV = "HWNAS_OFFLINE"
SOURCES = ("recorded", "cache", "live", "synthetic")
DEFAULT_LIMIT = 1000
"""Rows fetched live or generated synthetically when ``limit`` is None."""


class SyntheticDataWarning(UserWarning):
    """No real data was found; the result is synthetic.

    Taught in: notebooks/06_bybit_data.
    """


@dataclass(frozen=True, eq=False)
class KlineData:
    """Klines plus where they came from.

    ``frame`` is the kline DataFrame, ``source`` one of ``"recorded"``, ``"cache"``,
    ``"live"``, ``"synthetic"`` and ``description`` a human-readable provenance
    (file path, URL, or the SYNTHETIC label).  ``print(data)`` shows a summary.

    Taught in: notebooks/06_bybit_data.
    """

    frame: pd.DataFrame
    source: str
    description: str
    symbol: str = "BTCUSDT"
    interval: str = "15"
    category: str = "linear"
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {self.source!r}")

    @property
    def is_synthetic(self) -> bool:
        """True when the frame is not market data."""
        return self.source == "synthetic"

    def summary(self) -> str:
        """A few lines a chapter can print: source, provenance, size and time span."""
        frame = self.frame
        head = f"Data source: {self.source.upper()} - {self.description}"
        what = f"{self.symbol} {self.category} {interval_label(self.interval)}"
        if len(frame):
            span = f"{frame.index[0]:%Y-%m-%d %H:%M} -> {frame.index[-1]:%Y-%m-%d %H:%M} UTC"
            body = f"{what}: {len(frame):,} candles, {span}"
        else:
            body = f"{what}: no candles"
        lines = [head, body]
        gaps = frame.attrs.get("gaps") or []
        if gaps:
            lines.append(describe_gaps(gaps, "the series"))
        if self.is_synthetic:
            lines.append("WARNING: synthetic series - results say nothing about real markets.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


_TRUE, _FALSE = ("1", "true"), ("0", "false", "")


def offline_from_env() -> bool:
    """``$HWNAS_OFFLINE`` parsed strictly: 1/true (no network) or 0/false/unset; anything else is a
    ValueError naming the variable (a typo never silently means "online").

    Taught in: notebooks/06_bybit_data.
    """
    value = os.environ.get(OFFLINE_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{OFFLINE_ENV}={os.environ[OFFLINE_ENV]!r} is not allowed; use 1 or true (offline), "
                     f"0 or false (online), or unset it")


def find_recorded_file(directory: str | os.PathLike[str], symbol: str,
                       interval: str | int) -> Path | None:
    """The recorded CSV for ``symbol`` and ``interval`` in ``directory``, if any.

    Matches ``{symbol}_{label}.csv`` and ``{symbol}_{label}_*.csv`` where label is
    ``15m``, ``1h``, ``1d``...; with several matches the last by name is used.

    Taught in: notebooks/06_bybit_data.
    """
    folder = Path(directory).expanduser()
    label = interval_label(interval)
    matches = [p for p in folder.glob(f"{symbol}_{label}*.csv")
               if p.is_file() and (p.stem == f"{symbol}_{label}"
                                   or p.stem.startswith(f"{symbol}_{label}_"))]
    return sorted(matches)[-1] if matches else None


def load_kline_path(path: str | os.PathLike[str], symbol: str = "BTCUSDT", interval: str | int | None = None,
                    *, option: str = "data") -> KlineData:
    """Klines from a user's ``path``: one kline CSV of any symbol and interval, or a folder holding
    ``{symbol}_{label}*.csv`` (the recorded files' names, see :func:`find_recorded_file`).

    Every error is one ``ValueError`` line naming ``option``: a path that does not exist, a
    ``.csv`` name that is a folder, a name ending in ``/`` that is a file, a folder with no file
    matching the pattern (which it says), or a file :func:`read_kline_csv` refuses. ``interval``
    (default: a folder's files are 15-minute ones, a CSV's is read from its timestamps) is checked
    for gaps.

    Taught in: notebooks/12_capstone.
    """
    symbol = check_symbol(symbol)
    given = None if interval is None else normalize_interval(interval)
    interval = given or "15"
    text = os.fspath(path)
    where = Path(text).expanduser()
    if not where.exists():
        raise ValueError(f"{option} {text!r} does not exist; give a kline CSV file or a folder of them")
    if where.is_dir() and where.suffix.lower() == ".csv":
        raise ValueError(f"{option} {text!r} is a folder, but its name says a CSV file; give the CSV file "
                         f"itself, or a folder of {symbol}_{interval_label(interval)}*.csv files")
    if where.is_file() and text.endswith(("/", os.sep)):
        raise ValueError(f"{option} {text!r} is a file, but the trailing '/' says a folder; drop the '/' "
                         f"to read it as a kline CSV")
    if where.is_dir():
        found = find_recorded_file(where, symbol, interval)
        if found is None:
            raise ValueError(f"{option} {text!r}: no file matching {symbol}_{interval_label(interval)}*.csv "
                             f"in that folder (set the symbol and interval, or give a CSV file)")
        where = found
    elif where.suffix.lower() != ".csv":
        raise ValueError(f"{option} {text!r} is not a .csv file; give a kline CSV file or a folder of them")
    try:
        frame = read_kline_csv(where, interval=given or (interval if where != Path(text).expanduser() else None))
    except ValueError as err:
        raise ValueError(f"{option}: {err}") from None
    if given is None and where == Path(text).expanduser() and len(frame) > 1:
        interval = _interval_of(frame.index, f"{option} {text!r}")
    frame.attrs.update(symbol=symbol, interval=interval, category="linear")
    extra = " (turnover estimated as typical price x volume)" if frame.attrs.get("turnover_estimated") else ""
    return KlineData(frame, "recorded", f"kline CSV {where}{extra}", symbol=symbol, interval=interval)


def _interval_of(index: pd.DatetimeIndex, what: str) -> str:
    """The Bybit interval of ``index``'s most common step (ValueError naming ``what`` if none fits)."""
    minutes = float(pd.Series(index.asi8).diff().dropna().mode().iloc[0]) / 60e9
    names = {1440.0: "D", 10080.0: "W"}
    name = names.get(minutes, str(int(minutes)) if minutes.is_integer() else "")
    try:
        return normalize_interval(name)
    except ValueError:
        raise ValueError(f"{what}: its candles are {minutes:g} minutes apart, not a Bybit interval; give "
                         f"the interval") from None


def _tail(frame: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    if limit is None or len(frame) <= limit:
        return frame
    attrs = dict(frame.attrs)
    out = frame.iloc[-limit:].copy()
    if "interval" in attrs:
        attrs["gaps"] = find_gaps(out.index, attrs["interval"])
    out.attrs = attrs
    return out


def load_klines(
    symbol: str = "BTCUSDT",
    interval: str | int = "15",
    limit: int | None = None,
    *,
    category: str = "linear",
    recorded_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    base_url: str = BYBIT_BASE_URL,
    timeout: float = 10.0,
    seed: int = 0,
) -> KlineData:
    """Load klines from the best source available and say which one it was.

    Tries a recorded folder (``recorded_dir`` or ``$HWNAS_BYBIT_DIR``), then the
    disk cache (``cache_dir`` or ``$HWNAS_CACHE_DIR``, refreshed from Bybit unless
    offline), then live Bybit (skipped when ``offline`` or ``$HWNAS_OFFLINE=1``),
    then :func:`synthetic_klines` with a loud :class:`SyntheticDataWarning`.  With
    ``limit`` the newest ``limit`` rows are returned; without it all recorded or
    cached rows, or ``DEFAULT_LIMIT`` live / synthetic rows.  Network failures are
    turned into warnings and the next source is tried; bad arguments raise
    ``ValueError`` at once.

    Taught in: notebooks/06_bybit_data.
    """
    symbol = check_symbol(symbol)
    interval = normalize_interval(interval)
    category = normalize_category(category)
    if limit is not None:
        limit = check_limit(limit)
    if offline is None:
        offline = offline_from_env()
    meta = dict(symbol=symbol, interval=interval, category=category)
    label = interval_label(interval)
    notes: list[str] = []

    # 1. recorded folder
    folder = recorded_dir if recorded_dir is not None else os.environ.get(RECORDED_ENV, "").strip()
    if folder:
        folder_path = Path(folder).expanduser()
        if folder_path.exists() and not folder_path.is_dir():
            where = "recorded_dir" if recorded_dir is not None else f"${RECORDED_ENV}"
            raise ValueError(f"{where} {str(folder_path)!r} is a file; it must name a folder of recorded "
                             f"kline CSV files (for one CSV file, read it with hwnas.read_kline_csv)")
        if not folder_path.is_dir():
            notes.append(f"recorded folder {folder_path} does not exist")
        else:
            path = find_recorded_file(folder_path, symbol, interval)
            if path is None:
                notes.append(f"no {symbol}_{label}_*.csv in {folder_path}")
            else:
                frame = read_kline_csv(path, interval=interval)
                frame.attrs.update(meta)
                if limit is not None and len(frame) < limit:
                    warnings.warn(f"asked for {limit} candles but {path} holds only {len(frame)}",
                                  UserWarning, stacklevel=2)
                extra = " (turnover estimated as typical price x volume)" \
                    if frame.attrs.get("turnover_estimated") else ""
                return KlineData(_tail(frame, limit), "recorded",
                                 f"recorded Bybit file {path}{extra}", notes=tuple(notes), **meta)
    else:
        notes.append(f"no recorded folder (set {RECORDED_ENV})")

    # 2. cache, refreshed when online
    cache = KlineCache(cache_dir)
    url = base_url.rstrip("/") + KLINE_PATH
    cached: pd.DataFrame | None = None
    try:
        cached = cache.load(symbol, interval, category)
    except ValueError as exc:
        warnings.warn(f"ignoring unreadable cache file: {exc}", UserWarning, stacklevel=2)
        notes.append("cache file unreadable")
    wanted = limit if limit is not None else 1
    have = 0 if cached is None else len(cached)

    def from_cache() -> KlineData:
        assert cached is not None
        description = f"cache file {cache.path_for(symbol, interval, category)}"
        frame = cached
        if offline:
            description += " (offline: not refreshed)"
        else:
            try:
                frame = cache.update(symbol, interval, category=category, base_url=base_url,
                                     timeout=timeout)
                description += f" (refreshed from {url}: {frame.attrs.get('new_rows', 0)} new candles)"
            except (BybitAPIError, OSError) as exc:
                warnings.warn(f"could not refresh the kline cache from Bybit, using it as is: {exc}",
                              UserWarning, stacklevel=3)
                description += " (refresh failed: not up to date)"
        if len(frame) < wanted:
            warnings.warn(f"asked for {wanted} candles but the cache holds only {len(frame)}",
                          UserWarning, stacklevel=3)
        frame.attrs.update(meta)
        frame.attrs["gaps"] = find_gaps(frame.index, interval)
        return KlineData(_tail(frame, limit), "cache", description, notes=tuple(notes), **meta)

    if have and (have >= wanted or offline):
        return from_cache()
    notes.append("nothing cached" if not have else f"cache holds only {have} candles")

    # 3. live Bybit
    if offline:
        notes.append("offline: live Bybit skipped")
    else:
        try:
            frame = fetch_bybit_klines(symbol, interval, limit or DEFAULT_LIMIT, category=category,
                                       base_url=base_url, timeout=timeout, warn_gaps=False)
        except BybitAPIError as exc:
            warnings.warn(f"live Bybit klines unavailable: {exc}", UserWarning, stacklevel=2)
            notes.append(f"live Bybit failed ({type(exc).__name__})")
        else:
            if frame.attrs["gaps"]:
                warnings.warn(describe_gaps(frame.attrs["gaps"], url) + " (not filled)",
                              KlineGapWarning, stacklevel=2)
            description = f"live Bybit {url}"
            try:
                cache.merge(frame, symbol, interval, category)
                description += f", saved to {cache.path_for(symbol, interval, category)}"
            except OSError as exc:
                warnings.warn(f"could not write the kline cache: {exc}", UserWarning, stacklevel=2)
            frame.attrs.update(meta)
            return KlineData(_tail(frame, limit), "live", description, notes=tuple(notes), **meta)

    if have:  # a short cache beats synthetic data
        offline = True  # the live attempt just failed: do not retry it for a refresh
        return from_cache()

    # 4. synthetic, loudly
    n = limit or DEFAULT_LIMIT
    frame = synthetic_klines(n, interval, seed=seed)
    frame.attrs.update(meta)
    reasons = "; ".join(notes)
    warnings.warn(
        f"NO REAL DATA for {symbol} {category} {label} ({reasons}). Using {n} SYNTHETIC candles "
        f"(seed={seed}): they are NOT market data and results on them say nothing about "
        f"real markets. Set {RECORDED_ENV} to a folder of recorded klines, or go online.",
        SyntheticDataWarning, stacklevel=2,
    )
    return KlineData(frame, "synthetic", f"{SYNTHETIC_LABEL} (seed={seed}; {reasons})",
                     notes=tuple(notes), **meta)
