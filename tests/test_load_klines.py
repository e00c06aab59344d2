"""``load_klines`` source order and the synthetic fallback."""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.data import (
    KlineCache,
    KlineData,
    SyntheticDataWarning,
    load_klines,
    synthetic_klines,
)

try:
    from fake_bybit import FakeBybit, fake_bybit  # noqa: F401 (fixture)
except ImportError:  # pytest run with --import-mode=importlib
    from tests.fake_bybit import FakeBybit, fake_bybit  # noqa: F401

RECORDED = Path(os.environ.get("HWNAS_BYBIT_DIR")
                or Path(__file__).resolve().parents[2] / "shared" / "data" / "bybit")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may see the caller's data settings (or write to ~/.cache)."""
    for name in ("HWNAS_BYBIT_DIR", "HWNAS_OFFLINE", "HWNAS_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def need_recorded() -> Path:
    if not (RECORDED / "BTCUSDT_15m_2024.csv").is_file():
        pytest.skip(f"recorded Bybit data not found at {RECORDED} (only this project's machines have it)")
    return RECORDED


def small_recorded_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "recorded"
    folder.mkdir()
    frame = synthetic_klines(40, "60", seed=5)
    out = frame[["open", "high", "low", "close", "volume"]].copy()
    out.index = out.index.strftime("%Y-%m-%d %H:%M:%S")
    out.to_csv(folder / "BTCUSDT_1h_2024.csv")
    (folder / "BTCUSDT_15m_other.txt").write_text("not a csv")
    (folder / "BTCUSDT_1hx_2024.csv").write_text("wrong label")
    return folder


# --------------------------------------------------------------------- recorded


def test_recorded_real_data_first(tmp_path: Path, fake_bybit: FakeBybit) -> None:
    folder = need_recorded()
    data = load_klines("BTCUSDT", "15", 500, recorded_dir=folder, cache_dir=tmp_path,
                       base_url=fake_bybit.base_url)
    assert data.source == "recorded" and str(folder / "BTCUSDT_15m_2024.csv") in data.description
    assert len(data.frame) == 500
    assert data.frame.index[-1] == pd.Timestamp("2024-12-31 15:45", tz="UTC")
    assert fake_bybit.request_count == 0 and not any(tmp_path.iterdir())
    hourly = load_klines(interval=60, recorded_dir=folder, cache_dir=tmp_path)
    assert hourly.source == "recorded" and "BTCUSDT_1h_2021_2024.csv" in hourly.description
    assert len(hourly.frame) == 35_056
    assert "RECORDED" in str(hourly) and "35,056 candles" in str(hourly)


def test_recorded_dir_from_env_and_label_matching(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = small_recorded_dir(tmp_path)
    monkeypatch.setenv("HWNAS_BYBIT_DIR", str(folder))
    data = load_klines(interval="60", limit=10, cache_dir=tmp_path / "cache", offline=True)
    assert data.source == "recorded" and "BTCUSDT_1h_2024.csv" in data.description
    assert len(data.frame) == 10 and data.frame.attrs["turnover_estimated"]
    # nothing recorded for 15m: falls through (here to synthetic, offline)
    with pytest.warns(SyntheticDataWarning):
        other = load_klines(interval="15", limit=10, cache_dir=tmp_path / "cache", offline=True)
    assert other.source == "synthetic" and "no BTCUSDT_15m_*.csv" in other.description


# --------------------------------------------------------------- offline / synthetic


def test_offline_never_touches_the_network(tmp_path: Path, fake_bybit: FakeBybit) -> None:
    with pytest.warns(SyntheticDataWarning, match="SYNTHETIC"):
        data = load_klines(limit=200, cache_dir=tmp_path, offline=True, base_url=fake_bybit.base_url)
    assert fake_bybit.request_count == 0
    assert data.source == "synthetic" and data.is_synthetic
    assert "SYNTHETIC" in data.description and "offline" in data.description
    assert len(data.frame) == 200 and data.frame.attrs["synthetic"] is True
    assert "WARNING: synthetic" in data.summary()


def test_offline_env_switch(tmp_path: Path, fake_bybit: FakeBybit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWNAS_OFFLINE", "1")
    with pytest.warns(SyntheticDataWarning):
        data = load_klines(limit=50, cache_dir=tmp_path, base_url=fake_bybit.base_url)
    assert data.source == "synthetic" and fake_bybit.request_count == 0


def test_unreachable_bybit_falls_back_to_synthetic(tmp_path: Path) -> None:
    with pytest.warns(SyntheticDataWarning, match="NOT market data"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the connection failure warning
            warnings.simplefilter("always", SyntheticDataWarning)
            data = load_klines(limit=100, cache_dir=tmp_path, base_url=closed_port_url(), timeout=2.0)
    assert data.source == "synthetic" and "BybitConnectionError" in data.description
    assert len(data.frame) == 100


def test_synthetic_is_seeded(tmp_path: Path) -> None:
    with pytest.warns(SyntheticDataWarning):
        a = load_klines(limit=30, cache_dir=tmp_path, offline=True, seed=7)
    with pytest.warns(SyntheticDataWarning):
        b = load_klines(limit=30, cache_dir=tmp_path, offline=True, seed=7)
    pd.testing.assert_frame_equal(a.frame, b.frame)


# ------------------------------------------------------------------- live / cache


def test_live_then_cache(tmp_path: Path, fake_bybit: FakeBybit) -> None:
    live = load_klines(limit=300, cache_dir=tmp_path, base_url=fake_bybit.base_url)
    assert live.source == "live" and fake_bybit.base_url in live.description
    assert len(live.frame) == 300 and fake_bybit.request_count == 1
    assert KlineCache(tmp_path).path_for("BTCUSDT", "15").is_file()

    fake_bybit.requests.clear()
    offline = load_klines(limit=300, cache_dir=tmp_path, offline=True, base_url=fake_bybit.base_url)
    assert offline.source == "cache" and "offline" in offline.description
    assert fake_bybit.request_count == 0
    pd.testing.assert_frame_equal(offline.frame, live.frame, check_freq=False, rtol=1e-9)

    # online with a cache: at most a refresh of the newest candles, never a full download
    online = load_klines(limit=100, cache_dir=tmp_path, base_url=fake_bybit.base_url)
    assert online.source == "cache" and len(online.frame) == 100
    assert all("start" in r for r in fake_bybit.requests)


def test_short_cache_is_topped_up_live(tmp_path: Path, fake_bybit: FakeBybit) -> None:
    load_klines(limit=50, cache_dir=tmp_path, base_url=fake_bybit.base_url)
    data = load_klines(limit=400, cache_dir=tmp_path, base_url=fake_bybit.base_url)
    assert data.source == "live" and len(data.frame) == 400
    assert len(KlineCache(tmp_path).load("BTCUSDT", "15")) >= 400


def test_bad_arguments_raise_before_any_source(tmp_path: Path, fake_bybit: FakeBybit) -> None:
    for kwargs in ({"interval": "7"}, {"category": "futures"}, {"limit": 0}, {"symbol": "../x"}):
        with pytest.raises(ValueError):
            load_klines(cache_dir=tmp_path, base_url=fake_bybit.base_url, **kwargs)
    assert fake_bybit.request_count == 0


def test_kline_data_is_frozen_and_checked() -> None:
    frame = synthetic_klines(3, seed=0)
    data = KlineData(frame, "synthetic", "SYNTHETIC — not market data")
    with pytest.raises(AttributeError):
        data.source = "live"  # type: ignore[misc]
    with pytest.raises(ValueError, match="recorded, cache, live, synthetic"):
        KlineData(frame, "internet", "?")


# -------------------------------------------------------------------- synthetic


def test_synthetic_klines_shape_and_ohlc() -> None:
    frame = synthetic_klines(3000, "15", seed=1)
    assert list(frame.columns) == ["open", "high", "low", "close", "volume", "turnover"]
    assert (frame.dtypes == np.float64).all() and str(frame.index.tz) == "UTC"
    assert (np.diff(frame.index.asi8) == 15 * 60 * 10**9).all()
    assert (frame.low <= np.minimum(frame.open, frame.close)).all()
    assert (np.maximum(frame.open, frame.close) <= frame.high).all()
    assert (frame.volume > 0).all() and (frame.low > 0).all()
    assert (frame.open.iloc[1:].to_numpy() == frame.close.iloc[:-1].to_numpy()).all()
    assert frame.attrs["synthetic"] and "SYNTHETIC" in frame.attrs["description"]


def test_synthetic_stylised_facts() -> None:
    frame = synthetic_klines(6000, "15", seed=2)
    r = np.diff(np.log(frame.close.to_numpy()))
    kurtosis = np.mean((r - r.mean()) ** 4) / np.var(r) ** 2
    assert kurtosis > 4  # fat tails (a normal has 3)
    a = np.abs(r)
    assert np.corrcoef(a[1:], a[:-1])[0, 1] > 0.05  # volatility clustering
    assert np.corrcoef(a, frame.volume.to_numpy()[1:])[0, 1] > 0.3  # volume follows |return|


def test_synthetic_seed_and_intervals(mentions) -> None:
    pd.testing.assert_frame_equal(synthetic_klines(50, seed=3), synthetic_klines(50, seed=3))
    assert not synthetic_klines(50, seed=3).equals(synthetic_klines(50, seed=4))
    months = synthetic_klines(4, "M", seed=0, start="2024-01-01")
    assert list(months.index.month) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match=mentions("n", "0")):
        synthetic_klines(0, seed=0)
    with pytest.raises(TypeError):
        synthetic_klines(10)  # type: ignore[call-arg]  # a seed is required
