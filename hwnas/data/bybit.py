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

import random
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import requests

from hwnas.checks import require_int, require_positive
from hwnas.data.klines import (
    TimeLike,
    check_limit,
    check_symbol,
    describe_gaps,
    find_gaps,
    frame_from_rows,
    next_open_ms,
    normalize_category,
    normalize_interval,
    to_ms,
)

__all__ = [
    "BYBIT_BASE_URL",
    "KLINE_PATH",
    "MAX_PAGE_LIMIT",
    "BybitAPIError",
    "BybitConnectionError",
    "BybitRateLimitError",
    "BybitResponseError",
    "BybitTimeoutError",
    "KlineGapWarning",
    "fetch_bybit_klines",
]

BYBIT_BASE_URL = "https://api.bybit.com"
KLINE_PATH = "/v5/market/kline"
MAX_PAGE_LIMIT = 1000
"""Bybit's cap on candles per request."""


# Rate limiting: retCode 10006 ("too many visits") and 10018 (IP limit), HTTP 429 and
# 403 (Bybit's answer when an IP exceeds its limit).  5xx are retried the same way.
_RATE_LIMIT_RET_CODES = frozenset({10006, 10018})
_RATE_LIMIT_HTTP = frozenset({403, 429})
_TRANSIENT_HTTP = frozenset({500, 502, 503, 504})
_RESET_HEADER = "X-Bapi-Limit-Reset-Timestamp"
_BACKOFF_BASE_S = 0.5
_BACKOFF_CAP_S = 30.0
_MAX_SLEEP_S = 60.0



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
    symbol = check_symbol(symbol)
    interval = normalize_interval(interval)
    category = normalize_category(category)
    limit = check_limit(limit)
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
        return next_open_ms(ts, interval) <= now_ms

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
    frame = frame_from_rows(kept, [candles[ts] for ts in kept])
    frame.attrs.update(
        {"symbol": symbol, "interval": interval, "category": category,
         "gaps": find_gaps(frame.index, interval), "url": url}
    )
    if warn_gaps and frame.attrs["gaps"]:
        what = f"Bybit {category} {symbol} {interval} klines"
        warnings.warn(describe_gaps(frame.attrs["gaps"], what) + " (not filled)", KlineGapWarning,
                      stacklevel=2)
    return frame


