"""The kline CSV reader and the on-disk kline cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.data import KlineCache, read_kline_csv, synthetic_klines
from hwnas.data import cache as cache_module

try:
    from fake_bybit import FakeBybit, fake_bybit  # noqa: F401 (fixture)
except ImportError:  # pytest run with --import-mode=importlib
    from tests.fake_bybit import FakeBybit, fake_bybit  # noqa: F401

# the project's machines keep recorded Bybit klines next to the repository (../shared)
RECORDED = Path(os.environ.get("HWNAS_BYBIT_DIR")
                or Path(__file__).resolve().parents[2] / "shared" / "data" / "bybit")
COLUMNS = ["open", "high", "low", "close", "volume", "turnover"]


def recorded_file(name: str) -> Path:
    path = RECORDED / name
    if not path.is_file():
        pytest.skip(f"recorded Bybit data not found at {path} (only this project's machines have it)")
    return path


# ------------------------------------------------------------------ read_kline_csv


def test_reads_recorded_15m_file() -> None:
    frame = read_kline_csv(recorded_file("BTCUSDT_15m_2024.csv"), interval="15")
    assert len(frame) == 28_000
    assert list(frame.columns) == COLUMNS and (frame.dtypes == np.float64).all()
    assert str(frame.index.tz) == "UTC" and frame.index.name == "timestamp"
    assert frame.index[0] == pd.Timestamp("2024-03-15 00:00", tz="UTC")
    assert frame.index[-1] == pd.Timestamp("2024-12-31 15:45", tz="UTC")
    assert frame.index.is_monotonic_increasing and not frame.index.has_duplicates
    assert frame.attrs["gaps"] == []  # the README says the file is contiguous
    assert frame.attrs["turnover_estimated"] is True
    row = frame.iloc[0]
    assert (row.open, row.high, row.low, row.close, row.volume) == (71473.1, 71645.6, 71467.0, 71477.0, 637.141)
    assert row.turnover == pytest.approx((71645.6 + 71467.0 + 71477.0) / 3 * 637.141)
    assert ((frame.low <= frame[["open", "close"]].min(axis=1))
            & (frame[["open", "close"]].max(axis=1) <= frame.high)).all()


def test_reads_recorded_1h_file() -> None:
    frame = read_kline_csv(recorded_file("BTCUSDT_1h_2021_2024.csv"))
    assert len(frame) == 35_056
    assert (np.diff(frame.index.asi8) == 3_600 * 10**9).all()


def write(tmp_path: Path, text: str, name: str = "k.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


HEADER = "timestamp,open,high,low,close,volume\n"


def test_missing_columns_are_named(tmp_path: Path, mentions) -> None:
    path = write(tmp_path, "timestamp,open,close\n2024-01-01 00:00:00,1,2\n")
    with pytest.raises(ValueError, match=mentions("high", "low", "volume")):
        read_kline_csv(path)


def test_unparsable_rows_give_line_numbers(tmp_path: Path, mentions) -> None:
    path = write(tmp_path, HEADER + "2024-01-01 00:00:00,1,2,0.5,1.5,10\n2024-01-01 00:15:00,1,2,x,1.5,10\n")
    with pytest.raises(ValueError, match=mentions("'low'", "3")):
        read_kline_csv(path)
    path = write(tmp_path, HEADER + "yesterday,1,2,0.5,1.5,10\n")
    with pytest.raises(ValueError, match=mentions("timestamp", "2")):
        read_kline_csv(path)


@pytest.mark.parametrize("row", ["1,2,1.5,1.5,10", "1,1.2,0.5,1.5,10", "1,2,0.5,1.5,-1"])
def test_inconsistent_candles_are_rejected(tmp_path: Path, row: str, mentions) -> None:
    # low above the close, high below the close, negative volume
    path = write(tmp_path, HEADER + "2024-01-01 00:00:00,1,2,0.5,1.5,10\n2024-01-01 00:15:00," + row + "\n")
    with pytest.raises(ValueError, match=mentions("candle", "3")):
        read_kline_csv(path)


@pytest.mark.parametrize(("second", "kind"), [("2023-12-31 23:45:00", "decreasing"),
                                              ("2024-01-01 00:00:00", "duplicate")])
def test_timestamps_must_increase(tmp_path: Path, second: str, kind: str, mentions) -> None:
    path = write(tmp_path, HEADER + f"2024-01-01 00:00:00,1,2,0.5,1.5,10\n{second},1,2,0.5,1.5,10\n")
    with pytest.raises(ValueError, match=mentions("line 3", kind)):
        read_kline_csv(path)


def test_reads_millisecond_timestamps_and_turnover(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,open,high,low,close,volume,turnover\n"
                           "1670608800000,17071,17073,17027,17050.5,268611,4.59e9\n")
    frame = read_kline_csv(path)
    assert frame.index[0] == pd.Timestamp("2022-12-09 18:00", tz="UTC")
    assert frame.turnover.iloc[0] == 4.59e9 and frame.attrs["turnover_estimated"] is False


def test_gap_in_csv_is_warned(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "2024-01-01 00:00:00,1,2,0.5,1.5,10\n2024-01-01 01:00:00,1,2,0.5,1.5,10\n")
    with pytest.warns(UserWarning, match="3 missing"):
        frame = read_kline_csv(path, interval="15")
    assert frame.attrs["gaps"][0]["missing"] == 3


# ------------------------------------------------------------------------- cache


def test_directory_from_argument_env_or_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert KlineCache(tmp_path).directory == tmp_path
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "env"))
    assert KlineCache().directory == tmp_path / "env"
    monkeypatch.delenv("HWNAS_CACHE_DIR")
    assert KlineCache().directory == Path.home() / ".cache" / "hwnas" / "klines"
    assert not (tmp_path / "env").exists()  # created on first write only


def test_save_load_round_trip(tmp_path: Path) -> None:
    cache = KlineCache(tmp_path)
    frame = synthetic_klines(300, "60", seed=3)
    path = cache.save(frame, "BTCUSDT", "60")
    assert path.parent == tmp_path and path.name.startswith("linear_BTCUSDT_1h_")
    loaded = cache.load("BTCUSDT", 60)
    pd.testing.assert_frame_equal(loaded, frame, check_freq=False, rtol=1e-9)
    assert cache.load("BTCUSDT", "15") is None
    assert cache.load("BTCUSDT", "60", category="spot") is None


@pytest.mark.parametrize("symbol", ["../x", "../../etc/passwd", "BTC/USDT", "/abs", "..", "a\\b", "C:x", "\x00"])
def test_odd_symbols_stay_in_the_folder(tmp_path: Path, symbol: str) -> None:
    cache = KlineCache(tmp_path / "c")
    path = cache.path_for(symbol, "15")
    assert path.parent == tmp_path / "c" and path.resolve().parent == (tmp_path / "c").resolve()
    saved = cache.save(synthetic_klines(5, seed=0), symbol, "15")
    assert saved == path and [p.name for p in (tmp_path / "c").iterdir()] == [path.name]


def test_similar_keys_do_not_collide(tmp_path: Path) -> None:
    cache = KlineCache(tmp_path)
    keys = [("BTC/USDT", "15", "linear"), ("BTC-USDT", "15", "linear"), ("BTCUSDT", "15", "linear"),
            ("BTCUSDT", "15", "spot"), ("BTCUSDT", "1", "linear"), ("BTCUSDT", "M", "linear"),
            ("btcusdt", "15", "linear")]
    names = {cache.path_for(s, i, c).name.lower() for s, i, c in keys}  # even case-insensitively
    assert len(names) == len(keys)


def test_empty_symbol_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="symbol"):
        KlineCache(tmp_path).path_for("", "15")
    with pytest.raises(ValueError, match="interval"):
        KlineCache(tmp_path).path_for("BTCUSDT", "7")


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = KlineCache(tmp_path)
    path = cache.save(synthetic_klines(50, seed=1), "BTCUSDT", "15")
    before = path.read_bytes()

    def half_then_fail(frame, handle):
        handle.write("timestamp,open,high\n2024-01-01 00:00:00,1")
        raise OSError("disk full")

    monkeypatch.setattr(cache_module, "_write_frame", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        cache.save(synthetic_klines(80, seed=2), "BTCUSDT", "15")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_save_rejects_bad_frames(tmp_path: Path) -> None:
    cache = KlineCache(tmp_path)
    frame = synthetic_klines(10, seed=0)
    with pytest.raises(ValueError, match="turnover"):
        cache.save(frame.drop(columns="turnover"), "BTCUSDT", "15")
    with pytest.raises(ValueError, match="strictly increase"):
        cache.save(frame.iloc[::-1], "BTCUSDT", "15")
    assert not any(tmp_path.iterdir())


def test_merge_deduplicates_and_sorts(tmp_path: Path) -> None:
    cache = KlineCache(tmp_path)
    frame = synthetic_klines(100, seed=4)
    cache.save(frame.iloc[40:], "BTCUSDT", "15")
    merged = cache.merge(frame.iloc[:60], "BTCUSDT", "15")
    assert len(merged) == 100 and merged.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(cache.load("BTCUSDT", "15"), frame, check_freq=False, rtol=1e-9)


def test_update_fetches_only_new_candles(tmp_path: Path, fake_bybit: FakeBybit) -> None:
    cache = KlineCache(tmp_path)
    first = cache.update("BTCUSDT", "15", limit=300, base_url=fake_bybit.base_url, now=fake_bybit.now_ms)
    assert len(first) == 300 and first.attrs["new_rows"] == 300
    last = fake_bybit.closed_times[-1]
    assert first.index[-1] == pd.Timestamp(last, unit="ms", tz="UTC")

    # nothing has closed since: no request at all
    fake_bybit.requests.clear()
    same = cache.update("BTCUSDT", "15", base_url=fake_bybit.base_url, now=fake_bybit.now_ms)
    assert fake_bybit.request_count == 0 and len(same) == 300 and same.attrs["new_rows"] == 0

    fake_bybit.advance(7)
    fake_bybit.requests.clear()
    second = cache.update("BTCUSDT", "15", base_url=fake_bybit.base_url, now=fake_bybit.now_ms)
    assert fake_bybit.request_count == 1
    sent = fake_bybit.requests[0]
    assert int(sent["start"]) == last + fake_bybit.step_ms  # only candles after the cached one
    assert int(sent["limit"]) <= 10
    assert second.attrs["new_rows"] == 7 and len(second) == 307
    assert second.index.is_monotonic_increasing and not second.index.has_duplicates
    on_disk = cache.load("BTCUSDT", "15")
    pd.testing.assert_frame_equal(on_disk, second[on_disk.columns], check_freq=False, rtol=1e-9)
    assert [p.name for p in tmp_path.iterdir()] == [cache.path_for("BTCUSDT", "15").name]


def test_update_after_a_long_pause_pages(tmp_path: Path) -> None:
    with FakeBybit(n=2000) as fake:
        cache = KlineCache(tmp_path)
        cache.update("BTCUSDT", "15", limit=100, base_url=fake.base_url, now=fake.now_ms)
        fake.advance(1500)
        fake.requests.clear()
        frame = cache.update("BTCUSDT", "15", base_url=fake.base_url, now=fake.now_ms)
        assert frame.attrs["new_rows"] == 1500 and len(frame) == 1600
        assert fake.request_count == 2
        assert (np.diff(frame.index.asi8) == 15 * 60 * 10**9).all()
