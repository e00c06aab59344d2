"""The Bybit V5 kline client against a local fake Bybit server (real HTTP, no mocks)."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest

from hwnas.data import (
    BybitAPIError,
    BybitRateLimitError,
    BybitResponseError,
    BybitTimeoutError,
    KlineGapWarning,
    fetch_bybit_klines,
)
from hwnas.data.bybit import BybitConnectionError
from hwnas.data.klines import find_gaps

try:
    from fake_bybit import FakeBybit, fake_bybit  # noqa: F401 (fixture)
except ImportError:  # pytest run with --import-mode=importlib
    from tests.fake_bybit import FakeBybit, fake_bybit  # noqa: F401


class Sleeps(list):
    """A ``sleep`` that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fetch(fake: FakeBybit, limit: int, **kwargs):
    kwargs.setdefault("now", fake.now_ms)
    kwargs.setdefault("sleep", Sleeps())
    return fetch_bybit_klines("BTCUSDT", "15", limit, base_url=fake.base_url, **kwargs)


def expected_frame(fake: FakeBybit, times: list[int]) -> pd.DataFrame:
    index = pd.DatetimeIndex(pd.to_datetime(times, unit="ms", utc=True), name="timestamp")
    data = [fake.frame_values(ts) for ts in times]
    return pd.DataFrame(data, index=index.as_unit("ns"),
                        columns=["open", "high", "low", "close", "volume", "turnover"])


def test_single_page_shape_order_and_values(fake_bybit: FakeBybit) -> None:
    frame = fetch(fake_bybit, 100)
    assert list(frame.columns) == ["open", "high", "low", "close", "volume", "turnover"]
    assert (frame.dtypes == np.float64).all()
    assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "UTC"
    assert frame.index.name == "timestamp"
    assert frame.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(frame, expected_frame(fake_bybit, fake_bybit.closed_times[-100:]),
                                  check_freq=False)
    assert fake_bybit.request_count == 1
    sent = fake_bybit.requests[0]
    assert sent["category"] == "linear" and sent["symbol"] == "BTCUSDT" and sent["interval"] == "15"
    assert int(sent["limit"]) <= 1000


def test_unclosed_candle_dropped_unless_kept(fake_bybit: FakeBybit) -> None:
    open_ts = fake_bybit.times[-1]
    assert open_ts + fake_bybit.step_ms > fake_bybit.now_ms  # the fake's last candle is open
    closed = fetch(fake_bybit, 10)
    assert closed.index[-1] == pd.Timestamp(fake_bybit.closed_times[-1], unit="ms", tz="UTC")
    assert len(closed) == 10
    kept = fetch(fake_bybit, 10, keep_unclosed=True)
    assert kept.index[-1] == pd.Timestamp(open_ts, unit="ms", tz="UTC")
    assert len(kept) == 10


def test_pages_backwards_beyond_1000(fake_bybit: FakeBybit) -> None:
    frame = fetch(fake_bybit, 2500)
    assert len(frame) == 2500 and not frame.index.has_duplicates
    pd.testing.assert_frame_equal(frame, expected_frame(fake_bybit, fake_bybit.closed_times[-2500:]),
                                  check_freq=False)
    assert fake_bybit.request_count == 3
    assert all(int(r["limit"]) <= 1000 for r in fake_bybit.requests)
    ends = [int(r["end"]) for r in fake_bybit.requests[1:]]
    assert ends == sorted(ends, reverse=True)  # each page ends before the previous one


def test_boundary_duplicates_are_dropped(fake_bybit: FakeBybit) -> None:
    fake_bybit.duplicate_boundary = True
    frame = fetch(fake_bybit, 2200)
    assert len(frame) == 2200 and not frame.index.has_duplicates
    pd.testing.assert_frame_equal(frame, expected_frame(fake_bybit, fake_bybit.closed_times[-2200:]),
                                  check_freq=False)


def test_stops_when_history_runs_out() -> None:
    with FakeBybit(n=1500) as fake:
        frame = fetch(fake, 5000)
        assert len(frame) == len(fake.closed_times) == 1499
        assert fake.request_count == 2  # the second page is short: no third request


def test_start_and_end_bound_the_candles(fake_bybit: FakeBybit) -> None:
    times = fake_bybit.closed_times
    start, end = times[-1800], times[-300]
    frame = fetch(fake_bybit, 5000, start=pd.Timestamp(start, unit="ms", tz="UTC"), end=end)
    assert frame.index[0] == pd.Timestamp(start, unit="ms", tz="UTC")
    assert frame.index[-1] == pd.Timestamp(end, unit="ms", tz="UTC")
    assert len(frame) == 1501
    assert all(int(r["start"]) == start for r in fake_bybit.requests)
    # a limit smaller than the range gives its newest candles
    assert fetch(fake_bybit, 50, start=start, end=end).index[-1] == frame.index[-1]


def test_int_interval_and_datetime_bounds(fake_bybit: FakeBybit) -> None:
    times = fake_bybit.closed_times
    start = pd.Timestamp(times[-20], unit="ms", tz="UTC").to_pydatetime()
    frame = fetch_bybit_klines("BTCUSDT", 15, 100, start=start, base_url=fake_bybit.base_url,
                               now=fake_bybit.now_ms)
    assert len(frame) == 20
    assert fake_bybit.requests[0]["interval"] == "15"


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"interval": "7"}, "interval", "1, 3, 5, 15"),
        ({"interval": True}, "interval", "D, W, M"),
        ({"category": "futures"}, "category", "spot, linear, inverse"),
        ({"limit": 0}, "limit", "positive int"),
        ({"limit": 2.5}, "limit", "positive int"),
        ({"symbol": ""}, "symbol", "letters and digits"),
        ({"symbol": "BTC/USDT"}, "symbol", "letters and digits"),
        ({"start": 2_000, "end": 1_000}, "start", "before end"),
        ({"start": "not a time"}, "start", "time"),
    ],
)
def test_bad_arguments_fail_before_any_request(fake_bybit: FakeBybit, kwargs, field, allowed) -> None:
    args = {"symbol": "BTCUSDT", "interval": "15", "limit": 10}
    args.update(kwargs)
    with pytest.raises(ValueError) as info:
        fetch_bybit_klines(args.pop("symbol"), args.pop("interval"), args.pop("limit"),
                           base_url=fake_bybit.base_url, **args)
    assert field in str(info.value) and allowed in str(info.value)
    assert fake_bybit.request_count == 0


def test_api_error_carries_code_message_and_params(fake_bybit: FakeBybit) -> None:
    fake_bybit.queue_ret_code(10001, "params error: Symbol Is Invalid")
    with pytest.raises(BybitAPIError) as info:
        fetch(fake_bybit, 10)
    err = info.value
    assert not isinstance(err, BybitRateLimitError)
    assert err.ret_code == 10001 and err.ret_msg == "params error: Symbol Is Invalid"
    assert "10001" in str(err) and "BTCUSDT" in str(err) and "'limit'" in str(err)
    assert err.params["symbol"] == "BTCUSDT"
    assert fake_bybit.request_count == 1  # not retried


def test_unknown_symbol_from_the_server(fake_bybit: FakeBybit) -> None:
    with pytest.raises(BybitAPIError) as info:
        fetch_bybit_klines("ETHUSDT", "15", 10, base_url=fake_bybit.base_url)
    assert info.value.ret_code == 10001


def test_rate_limit_then_success_honours_reset_header(fake_bybit: FakeBybit) -> None:
    reset_ms = int(time.time() * 1000) + 3000
    fake_bybit.queue_ret_code(10006, "Too many visits!",
                              headers={"X-Bapi-Limit-Reset-Timestamp": str(reset_ms)})
    sleeps = Sleeps()
    frame = fetch(fake_bybit, 20, sleep=sleeps)
    assert len(frame) == 20
    assert fake_bybit.request_count == 2
    assert len(sleeps) == 1 and 2.0 < sleeps[0] <= 3.0


def test_reset_header_wait_is_capped(fake_bybit: FakeBybit) -> None:
    far = int(time.time() * 1000) + 3_600_000
    fake_bybit.queue_ret_code(10006, "Too many visits!",
                              headers={"X-Bapi-Limit-Reset-Timestamp": str(far)})
    sleeps = Sleeps()
    fetch(fake_bybit, 5, sleep=sleeps)
    assert sleeps == [60.0]


def test_persistent_rate_limit_raises_after_max_retries(fake_bybit: FakeBybit) -> None:
    fake_bybit.queue_ret_code(10006, "Too many visits!", times=10)
    sleeps = Sleeps()
    with pytest.raises(BybitRateLimitError) as info:
        fetch(fake_bybit, 20, max_retries=3, sleep=sleeps)
    assert fake_bybit.request_count == 4  # the first try and 3 retries
    assert len(sleeps) == 3
    assert sleeps[0] < sleeps[2]  # exponential backoff (jitter stays below the doubling)
    assert info.value.ret_code == 10006
    assert "3 retries" in str(info.value) and "10006" in str(info.value)
    assert isinstance(info.value, BybitAPIError)


@pytest.mark.parametrize("status", [403, 429])
def test_http_rate_limit_statuses_are_retried(fake_bybit: FakeBybit, status: int) -> None:
    fake_bybit.queue(status, body=b"rate limited", times=2)
    sleeps = Sleeps()
    frame = fetch(fake_bybit, 20, sleep=sleeps)
    assert len(frame) == 20 and fake_bybit.request_count == 3 and len(sleeps) == 2


def test_http_403_forever_becomes_rate_limit_error(fake_bybit: FakeBybit) -> None:
    fake_bybit.queue(403, body=b"Forbidden", times=5)
    with pytest.raises(BybitRateLimitError, match="HTTP 403"):
        fetch(fake_bybit, 20, max_retries=2)
    assert fake_bybit.request_count == 3


def test_malformed_json(fake_bybit: FakeBybit) -> None:
    fake_bybit.queue(200, body=b"<html>gateway says hello</html>")
    with pytest.raises(BybitResponseError, match="malformed JSON"):
        fetch(fake_bybit, 5)


def test_missing_fields(fake_bybit: FakeBybit) -> None:
    fake_bybit.queue(200, {"retCode": 0, "retMsg": "OK", "result": {}})
    with pytest.raises(BybitResponseError, match="result.list"):
        fetch(fake_bybit, 5)
    fake_bybit.queue(200, {"retCode": 0, "result": {"list": [["1670608800000", "17071", "x"]]}})
    with pytest.raises(BybitResponseError, match="row 0"):
        fetch(fake_bybit, 5)


def test_slow_reply_times_out_with_url_and_timeout(fake_bybit: FakeBybit) -> None:
    fake_bybit.queue(200, {"retCode": 0}, delay=2.0)
    began = time.monotonic()
    with pytest.raises(BybitTimeoutError) as info:
        fetch(fake_bybit, 5, timeout=0.2)
    assert time.monotonic() - began < 1.5
    assert fake_bybit.base_url in str(info.value) and "0.2 s" in str(info.value)


def test_closed_port_is_a_connection_error() -> None:
    with FakeBybit() as fake:
        url = fake.base_url
    with pytest.raises(BybitConnectionError, match="could not reach"):
        fetch_bybit_klines("BTCUSDT", "15", 5, base_url=url, timeout=2.0)


def test_gap_is_warned_and_recorded(fake_bybit: FakeBybit) -> None:
    gone = fake_bybit.remove(len(fake_bybit.times) - 50, 3)
    with pytest.warns(KlineGapWarning, match="3 missing"):
        frame = fetch(fake_bybit, 200)
    gaps = frame.attrs["gaps"]
    assert len(gaps) == 1 and gaps[0]["missing"] == 3
    assert gaps[0]["after"] == pd.Timestamp(gone[0] - fake_bybit.step_ms, unit="ms", tz="UTC")
    assert gaps[0]["before"] == pd.Timestamp(gone[-1] + fake_bybit.step_ms, unit="ms", tz="UTC")
    assert frame.index[gaps[0]["position"]] == gaps[0]["before"]
    assert len(frame) == 200  # not filled


def test_no_gap_no_warning(fake_bybit: FakeBybit) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", KlineGapWarning)
        frame = fetch(fake_bybit, 300)
    assert frame.attrs["gaps"] == []


def test_month_gaps_follow_the_calendar() -> None:
    months = pd.DatetimeIndex(["2024-01-01", "2024-02-01", "2024-03-01", "2024-06-01"], tz="UTC")
    gaps = find_gaps(months, "M")
    assert len(gaps) == 1 and gaps[0]["missing"] == 2 and gaps[0]["position"] == 3
