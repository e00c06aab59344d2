"""A small client for Bybit V5 market klines (``GET /v5/market/kline``).

Bybit answers with at most 1000 candles per request, newest first, prices as
strings.  :func:`fetch_bybit_klines` hides that: it validates its arguments
before any request, pages backwards for longer histories, retries rate limits
with backoff, drops the candle that has not closed yet, and returns a tidy
``DataFrame`` (oldest first, UTC ``DatetimeIndex`` named ``timestamp``, float64
columns ``open, high, low, close, volume, turnover``).  Gaps in the returned
series are reported, never filled.

Taught in: the Bybit data chapter of the course.
"""

from __future__ import annotations

import datetime as _dt
import math
import random
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import numpy as np
import pandas as pd
import requests

from hwnas.checks import require_int, require_positive

__all__ = [
    "BYBIT_BASE_URL",
    "CATEGORIES",
    "INTERVALS",
    "INTERVAL_LABELS",
    "KLINE_COLUMNS",
    "MAX_PAGE_LIMIT",
    "BybitAPIError",
    "BybitConnectionError",
    "BybitRateLimitError",
    "BybitResponseError",
    "BybitTimeoutError",
    "KlineGapWarning",
    "fetch_bybit_klines",
    "find_gaps",
    "interval_label",
    "normalize_category",
    "normalize_interval",
]

BYBIT_BASE_URL = "https://api.bybit.com"
KLINE_PATH = "/v5/market/kline"
MAX_PAGE_LIMIT = 1000
"""Bybit's cap on candles per request."""

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

_LABEL_TO_INTERVAL = {label: interval for interval, label in INTERVAL_LABELS.items()}

KLINE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "turnover")
"""The float64 columns of every kline frame in :mod:`hwnas.data`."""

_MINUTE_MS = 60_000
_FIXED_INTERVAL_MS: dict[str, int] = {
    **{m: int(m) * _MINUTE_MS for m in INTERVALS if m.isdigit()},
    "D": 1440 * _MINUTE_MS,
    "W": 7 * 1440 * _MINUTE_MS,
}
_SYMBOL_RE = re.compile(r"[A-Za-z0-9]+")

# Rate limiting: retCode 10006 ("too many visits") and 10018 (IP limit), HTTP 429 and
# 403 (Bybit's answer when an IP exceeds its limit).  5xx are retried the same way.
_RATE_LIMIT_RET_CODES = frozenset({10006, 10018})
_RATE_LIMIT_HTTP = frozenset({403, 429})
_TRANSIENT_HTTP = frozenset({500, 502, 503, 504})
_RESET_HEADER = "X-Bapi-Limit-Reset-Timestamp"
_BACKOFF_BASE_S = 0.5
_BACKOFF_CAP_S = 30.0
_MAX_SLEEP_S = 60.0

TimeLike = Union[int, float, str, _dt.datetime, pd.Timestamp, np.datetime64]


# --------------------------------------------------------------------------- errors


class BybitAPIError(RuntimeError):
    """Bybit refused a request or could not be used.

    ``ret_code`` and ``ret_msg`` are Bybit's ``retCode`` / ``retMsg`` when the server
    answered with one (``None`` otherwise); ``params`` are the query parameters sent,
    ``url`` the endpoint and ``status`` the HTTP status, when known.

    Taught in: notebooks/06_bybit_data.
    """

    def __init__(
        self,
        message: str,
        *,
        ret_code: int | None = None,
        ret_msg: str | None = None,
        params: Mapping[str, Any] | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.ret_code = ret_code
        self.ret_msg = ret_msg
        self.params = dict(params) if params is not None else None
        self.url = url
        self.status = status


class BybitRateLimitError(BybitAPIError):
    """Bybit kept rate-limiting the client after every allowed retry.

    Taught in: notebooks/06_bybit_data.
    """


class BybitTimeoutError(BybitAPIError):
    """Bybit did not answer within the timeout.

    Taught in: notebooks/06_bybit_data.
    """


class BybitConnectionError(BybitAPIError):
    """The Bybit endpoint could not be reached (DNS, refused connection, no network).

    Taught in: notebooks/06_bybit_data.
    """


class BybitResponseError(BybitAPIError):
    """Bybit answered with something that is not a well-formed kline response.

    Taught in: notebooks/06_bybit_data.
    """


class KlineGapWarning(UserWarning):
    """Candles are missing between two consecutive timestamps.

    Taught in: notebooks/06_bybit_data.
    """


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
        if text in _LABEL_TO_INTERVAL:
            return _LABEL_TO_INTERVAL[text]
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


def _check_symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not _SYMBOL_RE.fullmatch(symbol):
        raise ValueError(
            "symbol must be a non-empty string of ASCII letters and digits "
            f"such as 'BTCUSDT'; got {symbol!r}"
        )
    return symbol


def _check_limit(limit: int, name: str = "limit") -> int:
    """``limit`` as an int >= 1 (:func:`hwnas.checks.require_int`), in this API's words."""
    try:
        return require_int(limit, name, 1)
    except ValueError:
        raise ValueError(f"{name} must be a positive int; got {limit!r}") from None


def to_ms(value: TimeLike, name: str = "time") -> int:
    """Convert a time to Bybit's milliseconds since the epoch (UTC).

    Ints and floats are taken as milliseconds; naive datetimes and strings without
    a zone are taken as UTC.
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


def _next_open_ms(ts_ms: int, interval: str) -> int:
    """Open time of the candle after the one opening at ``ts_ms``."""
    if interval == "M":
        stamp = pd.Timestamp(ts_ms, unit="ms", tz="UTC") + pd.DateOffset(months=1)
        return int(stamp.as_unit("ns").value // 1_000_000)
    return ts_ms + _FIXED_INTERVAL_MS[interval]


def _approx_interval_ms(interval: str) -> int:
    return _FIXED_INTERVAL_MS.get(interval, 31 * 1440 * _MINUTE_MS)


def _candles_between(start_ms: int, stop_ms: int, interval: str) -> int:
    """How many candle opens lie in ``[start_ms, stop_ms]`` (0 if empty)."""
    if stop_ms < start_ms:
        return 0
    if interval == "M":
        a = pd.Timestamp(start_ms, unit="ms", tz="UTC")
        b = pd.Timestamp(stop_ms, unit="ms", tz="UTC")
        return (b.year - a.year) * 12 + (b.month - a.month) + 1
    return (stop_ms - start_ms) // _FIXED_INTERVAL_MS[interval] + 1


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
            expected = _next_open_ms(int(ms[i - 1]), interval)
            if ms[i] > expected:
                gaps.append(_gap(index, i, _candles_between(expected, int(ms[i]), "M") - 1))
        return gaps
    step = _FIXED_INTERVAL_MS[interval]
    for j in np.flatnonzero(np.diff(ms) > step) + 1:
        gaps.append(_gap(index, int(j), int((ms[j] - ms[j - 1]) // step - 1)))
    return gaps


def _gap(index: pd.DatetimeIndex, i: int, missing: int) -> dict[str, Any]:
    return {"after": index[i - 1], "before": index[i], "position": i, "missing": max(missing, 1)}


def describe_gaps(gaps: Sequence[Mapping[str, Any]], what: str, show: int = 5) -> str:
    """One readable line per gap (at most ``show``), for warnings and reports."""
    parts = [
        f"{g['after']:%Y-%m-%d %H:%M} -> {g['before']:%Y-%m-%d %H:%M} "
        f"(row {g['position']}, {g['missing']} missing)"
        for g in gaps[:show]
    ]
    more = f"; and {len(gaps) - show} more" if len(gaps) > show else ""
    return f"{len(gaps)} gap(s) in {what}: " + "; ".join(parts) + more


def empty_kline_frame() -> pd.DataFrame:
    """A kline frame with no rows but the right index and columns."""
    index = pd.DatetimeIndex([], tz="UTC", name="timestamp").as_unit("ns")
    return pd.DataFrame({c: np.array([], dtype=np.float64) for c in KLINE_COLUMNS}, index=index)


def _frame_from_rows(ms: Sequence[int], values: Sequence[Sequence[float]]) -> pd.DataFrame:
    if not ms:
        return empty_kline_frame()
    index = pd.DatetimeIndex(pd.to_datetime(np.asarray(ms, dtype=np.int64), unit="ms", utc=True),
                             name="timestamp").as_unit("ns")
    data = np.asarray(values, dtype=np.float64).reshape(len(ms), len(KLINE_COLUMNS))
    return pd.DataFrame(data, index=index, columns=list(KLINE_COLUMNS))


# ------------------------------------------------------------------------ requests


def _backoff_delay(response: requests.Response | None, attempt: int, rng: random.Random) -> float:
    """Seconds to wait before retry ``attempt`` (0-based)."""
    if response is not None:
        reset = response.headers.get(_RESET_HEADER)
        if reset:
            try:
                wait = float(reset) / 1000.0 - time.time()
            except ValueError:
                wait = None
            if wait is not None:
                return min(max(wait, 0.0), _MAX_SLEEP_S)
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), _MAX_SLEEP_S)
            except ValueError:
                pass
    # exponential backoff with "equal jitter": half fixed, half random
    delay = min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2.0**attempt)
    return delay / 2.0 + rng.uniform(0.0, delay / 2.0)


def _get_page(
    session: requests.Session,
    url: str,
    params: dict[str, Any],
    *,
    timeout: float,
    max_retries: int,
    sleep: Callable[[float], Any],
    rng: random.Random,
) -> list[Any]:
    """One kline request with retries; returns Bybit's ``result.list``."""
    last_reason, last_code, rate_limited = "", None, True
    for attempt in range(max_retries + 1):
        try:
            response = session.get(url, params=params, timeout=timeout)
        except requests.Timeout as exc:
            raise BybitTimeoutError(
                f"Bybit did not answer within {timeout} s: GET {url} with params {params}",
                params=params, url=url,
            ) from exc
        except requests.RequestException as exc:
            raise BybitConnectionError(
                f"could not reach Bybit at {url} (params {params}): {exc}",
                params=params, url=url,
            ) from exc

        status = response.status_code
        retry = False
        payload: Any = None
        if status in _RATE_LIMIT_HTTP or status in _TRANSIENT_HTTP:
            retry = True
            last_reason, last_code = f"HTTP {status}", None
            rate_limited = status in _RATE_LIMIT_HTTP
        elif status >= 400:
            raise BybitAPIError(
                f"Bybit answered HTTP {status} for GET {url} with params {params}: "
                f"{response.text[:200]!r}",
                params=params, url=url, status=status,
            )
        else:
            try:
                payload = response.json()
            except ValueError as exc:
                raise BybitResponseError(
                    f"Bybit sent malformed JSON for GET {url} with params {params}: "
                    f"{response.text[:200]!r}",
                    params=params, url=url, status=status,
                ) from exc
            if not isinstance(payload, dict) or "retCode" not in payload:
                raise BybitResponseError(
                    f"Bybit response has no 'retCode' for GET {url} with params {params}: "
                    f"{str(payload)[:200]!r}",
                    params=params, url=url, status=status,
                )
            raw_code, ret_msg = payload.get("retCode"), str(payload.get("retMsg", ""))
            try:
                ret_code = int(raw_code)  # type: ignore[arg-type]  # checked by the except
            except (TypeError, ValueError) as exc:
                raise BybitResponseError(
                    f"Bybit response has a non-integer retCode {raw_code!r} for GET {url}",
                    params=params, url=url, status=status,
                ) from exc
            if ret_code in _RATE_LIMIT_RET_CODES:
                retry = True
                last_reason, last_code, rate_limited = f"retCode {ret_code} ({ret_msg})", ret_code, True
            elif ret_code != 0:
                raise BybitAPIError(
                    f"Bybit API error retCode={ret_code} retMsg={ret_msg!r} for GET {url} "
                    f"with params {params}",
                    ret_code=ret_code, ret_msg=ret_msg, params=params, url=url, status=status,
                )

        if not retry:
            return _extract_list(payload, url, params)
        if attempt == max_retries:
            break
        sleep(_backoff_delay(response, attempt, rng))

    cls = BybitRateLimitError if rate_limited else BybitAPIError
    raise cls(
        f"Bybit {'rate limit' if rate_limited else 'server error'} persisted after "
        f"{max_retries} retries ({max_retries + 1} requests); last answer: {last_reason}. "
        f"GET {url} with params {params}. Wait a little, lower the request rate, "
        "or use the disk cache / recorded data.",
        ret_code=last_code, params=params, url=url,
    )


def _extract_list(payload: Any, url: str, params: dict[str, Any]) -> list[Any]:
    result = payload.get("result")
    rows = result.get("list") if isinstance(result, dict) else None
    if not isinstance(rows, list):
        raise BybitResponseError(
            f"Bybit response lacks 'result.list' for GET {url} with params {params}: "
            f"{str(payload)[:200]!r}",
            ret_code=0, params=params, url=url,
        )
    return rows


def _parse_rows(rows: list[Any], url: str, params: dict[str, Any]) -> dict[int, list[float]]:
    """Bybit rows ``[startTime, open, high, low, close, volume, turnover]`` -> {ms: values}."""
    parsed: dict[int, list[float]] = {}
    for i, row in enumerate(rows):
        try:
            if not isinstance(row, (list, tuple)) or len(row) < 7:
                raise ValueError("expected 7 fields")
            ts = int(row[0])
            values = [float(v) for v in row[1:7]]
        except (TypeError, ValueError) as exc:
            raise BybitResponseError(
                f"Bybit kline row {i} is malformed ({exc}): {row!r} "
                f"(GET {url} with params {params})",
                params=params, url=url,
            ) from exc
        parsed[ts] = values
    return parsed


# ------------------------------------------------------------------------- fetching


def fetch_bybit_klines(
    symbol: str,
    interval: str | int,
    limit: int,
    *,
    category: str = "linear",
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    base_url: str = BYBIT_BASE_URL,
    timeout: float = 10.0,
    keep_unclosed: bool = False,
    max_retries: int = 5,
    session: requests.Session | None = None,
    now: TimeLike | None = None,
    sleep: Callable[[float], Any] = time.sleep,
    warn_gaps: bool = True,
) -> pd.DataFrame:
    """Download the most recent ``limit`` candles of ``symbol`` from Bybit V5.

    Parameters
    ----------
    symbol, interval, category:
        e.g. ``"BTCUSDT"``, one of :data:`INTERVALS` (``15`` and ``"15m"`` work too),
        one of :data:`CATEGORIES`.
    limit:
        total candles wanted; more than 1000 are fetched by paging backwards.
    start, end:
        optional bounds on the candle open time (ms ints, datetimes, Timestamps;
        naive means UTC).  The newest ``limit`` candles inside them are returned.
    keep_unclosed:
        keep the newest candle even if it has not closed yet at ``now``.
    max_retries, sleep:
        rate limits (retCode 10006, HTTP 429/403) are retried this many times,
        waiting until ``X-Bapi-Limit-Reset-Timestamp`` when Bybit sends it, else with
        exponential backoff and jitter; ``sleep`` does the waiting (inject one in tests).
    session, now:
        a ``requests.Session`` to reuse; the clock (default: this machine's).

    Returns a frame, oldest first, with a UTC ``DatetimeIndex`` named ``timestamp``
    (candle open time) and float64 columns ``open high low close volume turnover``.
    Missing candles are not filled: they are listed in ``frame.attrs["gaps"]`` and,
    with ``warn_gaps`` (the default), reported with a :class:`KlineGapWarning`.

    Raises ``ValueError`` for bad arguments (before any request),
    :class:`BybitAPIError` for ``retCode != 0`` and its subclasses
    :class:`BybitRateLimitError`, :class:`BybitTimeoutError`,
    :class:`BybitConnectionError` and :class:`BybitResponseError`.

    Taught in: notebooks/06_bybit_data.
    """
    symbol = _check_symbol(symbol)
    interval = normalize_interval(interval)
    category = normalize_category(category)
    limit = _check_limit(limit)
    start_ms = to_ms(start, "start") if start is not None else None
    end_ms = to_ms(end, "end") if end is not None else None
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise ValueError(f"start must be before end; got start={start!r}, end={end!r}")
    now_ms = to_ms(now, "now") if now is not None else int(time.time() * 1000)
    require_positive(timeout, "timeout (seconds)")
    require_int(max_retries, "max_retries", 0)
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must be an http(s) URL such as {BYBIT_BASE_URL!r}; got {base_url!r}")

    url = base_url.rstrip("/") + KLINE_PATH
    own_session = session is None
    http: requests.Session = requests.Session() if session is None else session
    if own_session:
        http.headers["User-Agent"] = "hwnas-kline-client"
    rng = random.Random()
    candles: dict[int, list[float]] = {}

    def is_closed(ts: int) -> bool:
        return _next_open_ms(ts, interval) <= now_ms

    def in_range(ts: int) -> bool:
        return (start_ms is None or ts >= start_ms) and (end_ms is None or ts <= end_ms)

    def wanted() -> int:
        return sum(1 for ts in candles if in_range(ts) and (keep_unclosed or is_closed(ts)))

    page_end = end_ms
    try:
        while True:
            remaining = limit - wanted()
            if remaining <= 0:
                break
            # one extra row absorbs an unclosed candle or a duplicated boundary candle
            page_limit = min(MAX_PAGE_LIMIT, remaining + 1)
            params: dict[str, Any] = {
                "category": category, "symbol": symbol, "interval": interval, "limit": page_limit,
            }
            if start_ms is not None:
                params["start"] = start_ms
            if page_end is not None:
                params["end"] = page_end
            rows = _get_page(http, url, params, timeout=float(timeout),
                             max_retries=int(max_retries), sleep=sleep, rng=rng)
            page = _parse_rows(rows, url, params)
            new = {ts: v for ts, v in page.items() if ts not in candles}
            candles.update(new)
            if not new or len(rows) < page_limit:
                break  # no older data (or a server that keeps repeating itself)
            oldest = min(page)
            if start_ms is not None and oldest <= start_ms:
                break
            page_end = oldest - 1
    finally:
        if own_session:
            http.close()

    kept = sorted(ts for ts in candles if in_range(ts) and (keep_unclosed or is_closed(ts)))
    kept = kept[-limit:]
    frame = _frame_from_rows(kept, [candles[ts] for ts in kept])
    frame.attrs.update(
        {"symbol": symbol, "interval": interval, "category": category,
         "gaps": find_gaps(frame.index, interval), "url": url}
    )
    if warn_gaps and frame.attrs["gaps"]:
        what = f"Bybit {category} {symbol} {interval} klines"
        warnings.warn(describe_gaps(frame.attrs["gaps"], what) + " (not filled)", KlineGapWarning,
                      stacklevel=2)
    return frame


