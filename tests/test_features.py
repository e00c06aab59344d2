"""Features look back only; windows pair the past with what follows; splits keep a gap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwnas.data.features import (
    Scaler,
    chronological_split,
    feature_warmup,
    make_features,
    make_targets,
    make_windows,
    periods_per_year,
    rolling_zscore,
)

SMALL = dict(vol_windows=(3, 5), momentum_horizons=(2, 4), zscore_window=5, volume_window=4)


def klines(n: int, seed: int = 0) -> pd.DataFrame:
    """A small random-walk kline frame (15-minute bars)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 0.005, n)) * close
    index = pd.date_range("2024-01-01", periods=n, freq="15min", tz="UTC", name="timestamp")
    return pd.DataFrame({
        "open": open_, "high": np.maximum(open_, close) + spread,
        "low": np.minimum(open_, close) - spread, "close": close,
        "volume": rng.uniform(10, 100, n),
    }, index=index)


# ---------------------------------------------------------------- no look-ahead


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(0, 59), factor=st.floats(0.5, 2.0).filter(lambda f: abs(f - 1) > 1e-3),
       column=st.sampled_from(["open", "high", "low", "close", "volume"]), seed=st.integers(0, 3))
def test_changing_a_future_bar_changes_no_past_feature(k, factor, column, seed):
    frame = klines(60, seed)
    changed = frame.copy()
    changed.iloc[k, changed.columns.get_loc(column)] *= factor
    if column in ("open", "close"):  # keep the bar valid
        changed.iloc[k, changed.columns.get_loc("high")] = changed.iloc[k][["open", "high", "close"]].max()
        changed.iloc[k, changed.columns.get_loc("low")] = changed.iloc[k][["open", "low", "close"]].min()
    before = make_features(frame, **SMALL)
    after = make_features(changed, **SMALL)
    cut = frame.index[k]
    pd.testing.assert_frame_equal(before[before.index < cut], after[after.index < cut],
                                  check_exact=True)
    # the perturbed bar itself is seen from row k on (the change is not ignored)
    if k >= feature_warmup(**SMALL) and column in ("close", "volume"):
        assert not before.loc[cut].equals(after.loc[cut])
    # past-only targets (log_vol_past, ret_last) obey the same rule
    t0, t1 = make_targets(frame, vol_window=3), make_targets(changed, vol_window=3)
    past = ["log_vol_past", "ret_last"]
    pd.testing.assert_frame_equal(t0.loc[t0.index < cut, past], t1.loc[t1.index < cut, past])


def test_first_rows_without_history_are_dropped_not_filled():
    frame = klines(40)
    features = make_features(frame, **SMALL)
    assert len(frame) - len(features) == feature_warmup(**SMALL)
    assert features.index[0] == frame.index[feature_warmup(**SMALL)]
    assert not features.isna().any().any()
    raw = make_features(frame, dropna=False, **SMALL)
    assert raw.iloc[: feature_warmup(**SMALL)].isna().any(axis=1).all()


def test_feature_values_by_hand():
    frame = klines(30)
    f = make_features(frame, **SMALL)
    c = frame["close"]
    t = f.index[3]
    i = frame.index.get_loc(t)
    assert f.loc[t, "ret_1"] == pytest.approx(np.log(c.iloc[i] / c.iloc[i - 1]))
    assert f.loc[t, "mom_4"] == pytest.approx(np.log(c.iloc[i] / c.iloc[i - 4]))
    r = np.log(c).diff()
    assert f.loc[t, "log_rv_5"] == pytest.approx(np.log(r.iloc[i - 4: i + 1].std(ddof=1)))
    window = c.iloc[i - 4: i + 1]
    assert f.loc[t, "z_close"] == pytest.approx((c.iloc[i] - window.mean()) / window.std(ddof=1))
    assert f.loc[t, "hl_range"] == pytest.approx(np.log(frame["high"].iloc[i] / frame["low"].iloc[i]))


def test_rolling_zscore_of_a_flat_series_is_zero():
    z = rolling_zscore(pd.Series([5.0] * 6), 3)
    assert z.iloc[:2].isna().all() and (z.iloc[2:] == 0).all()


def test_bad_frames_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="missing column"):
        make_features(klines(30).drop(columns="volume"))
    with pytest.raises(ValueError, match="sorted"):
        make_features(klines(30).iloc[::-1])
    with pytest.raises(ValueError, match="zscore_window"):
        make_features(klines(30), zscore_window=1)


# ---------------------------------------------------------------- targets and windows


def tiny_frame() -> pd.DataFrame:
    close = np.array([100.0, 101, 99, 102, 103, 101, 104, 105])
    index = pd.date_range("2024-01-01", periods=len(close), freq="15min", tz="UTC")
    return pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close,
                         "volume": np.arange(1.0, 9.0)}, index=index)


def test_targets_look_forward_by_hand():
    frame = tiny_frame()
    t = make_targets(frame, horizon=1, vol_window=2)
    c = frame["close"].to_numpy()
    assert t["ret_fwd"].iloc[0] == pytest.approx(np.log(101 / 100))
    assert t["direction"].iloc[1] == 0.0 and t["direction"].iloc[2] == 1.0
    r = np.diff(np.log(c))  # r[j] = log(c[j+1] / c[j])
    # future vol at bar 2 uses the returns into bars 3 and 4
    assert t["log_vol_fwd"].iloc[2] == pytest.approx(np.log(np.sqrt((r[2] ** 2 + r[3] ** 2) / 2)))
    # past vol at bar 2 uses the returns into bars 1 and 2
    assert t["log_vol_past"].iloc[2] == pytest.approx(np.log(np.sqrt((r[0] ** 2 + r[1] ** 2) / 2)))
    assert t["ret_fwd"].iloc[-1:].isna().all() and t["log_vol_fwd"].iloc[-2:].isna().all()
    t3 = make_targets(frame, horizon=3)
    assert t3["ret_fwd"].iloc[1] == pytest.approx(np.log(c[4] / c[1]))


def test_window_i_ends_at_t_i_and_its_target_comes_right_after():
    frame = tiny_frame()
    features = pd.DataFrame({"a": np.arange(8.0), "b": 10 + np.arange(8.0)}, index=frame.index)
    targets = make_targets(frame, horizon=1, vol_window=2)["ret_fwd"]
    X, y, index = make_windows(features, targets, lookback=3)
    assert X.shape == (5, 2, 3) and X.dtype == np.float32 and X.flags["C_CONTIGUOUS"]
    # window 0 ends at bar 2 and holds bars 0..2; its target is the return from bar 2 to 3
    np.testing.assert_array_equal(X[0], [[0, 1, 2], [10, 11, 12]])
    assert index[0] == frame.index[2]
    assert y[0] == pytest.approx(np.log(102 / 99))
    # the last bar has no next bar: its window is dropped
    assert index[-1] == frame.index[-2]
    np.testing.assert_array_equal(X[-1, 0], [4, 5, 6])
    assert y[-1] == pytest.approx(np.log(105 / 104))


def test_windows_with_a_target_frame_drop_rows_missing_any_target():
    frame = tiny_frame()
    features = pd.DataFrame({"a": np.arange(8.0)}, index=frame.index)
    X, y, index = make_windows(features, make_targets(frame, vol_window=2), lookback=2)
    assert y.shape == (len(X), 6) and not np.isnan(y).any()
    assert index[-1] == frame.index[-3]  # log_vol_fwd needs two more bars


def test_make_windows_refuses_nan_features():
    features = make_features(klines(30), dropna=False, **SMALL)
    with pytest.raises(ValueError, match="NaN"):
        make_windows(features, make_targets(klines(30)), 4)


# ---------------------------------------------------------------- splits


@given(n=st.integers(300, 5000), lookback=st.integers(1, 64), horizon=st.integers(1, 16),
       extra=st.integers(0, 20), train=st.floats(0.3, 0.7), val=st.floats(0.1, 0.25))
@settings(max_examples=60, deadline=None)
def test_splits_are_ordered_disjoint_and_gapped(n, lookback, horizon, extra, train, val):
    gap = lookback + horizon + extra
    split = chronological_split(n, train, val, lookback=lookback, horizon=horizon, gap=gap)
    tr, va, te = split
    assert tr.start == 0 and te.stop == n
    assert tr.stop - 1 < va.start and va.stop - 1 < te.start
    assert va.start - (tr.stop - 1) - 1 == gap and te.start - (va.stop - 1) - 1 == gap
    # the last training target (bars up to t + horizon) ends before the first
    # validation window begins (bar t' - lookback + 1)
    assert (tr.stop - 1) + horizon < va.start - lookback + 1
    assert (va.stop - 1) + horizon < te.start - lookback + 1
    assert len(tr) + len(va) + len(te) + 2 * gap == n


def test_split_gap_below_lookback_plus_horizon_is_refused():
    with pytest.raises(ValueError, match="lookback \\+ horizon = 70"):
        chronological_split(1000, lookback=64, horizon=6, gap=69)
    with pytest.raises(ValueError, match="too few"):
        chronological_split(142, lookback=64, horizon=6)
    with pytest.raises(ValueError, match="train \\+ val"):
        chronological_split(1000, 0.7, 0.3, lookback=4)


# ---------------------------------------------------------------- scaler


def test_scaler_uses_training_rows_only():
    rng = np.random.default_rng(0)
    data = pd.DataFrame(rng.normal(0, 1, (100, 3)), columns=list("abc"))
    train = data.iloc[:60]
    scaler = Scaler(clip=None).fit(train)
    np.testing.assert_allclose(scaler.mean_, train.mean().to_numpy())
    shifted = data.copy()
    shifted.iloc[60:] += 1000.0  # later rows change wildly
    again = Scaler(clip=None).fit(shifted.iloc[:60])
    np.testing.assert_array_equal(scaler.mean_, again.mean_)
    np.testing.assert_array_equal(scaler.std_, again.std_)
    out = scaler.transform(shifted)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list("abc")
    np.testing.assert_allclose(out.iloc[:60].mean().to_numpy(), 0, atol=1e-12)
    assert (out.iloc[60:].mean() > 100).all()  # not re-centred on the later rows
    assert (Scaler(clip=3.0).fit(train).transform(shifted).abs().to_numpy() <= 3.0).all()


def test_scaler_must_be_fitted():
    with pytest.raises(ValueError, match="not fitted"):
        Scaler().transform(np.zeros((3, 2)))


def test_periods_per_year():
    assert periods_per_year("15") == 35_040
    assert periods_per_year(60) == 8_760
    assert periods_per_year(klines(10).index) == 35_040
    with pytest.raises(ValueError, match="interval"):
        periods_per_year("15x")
