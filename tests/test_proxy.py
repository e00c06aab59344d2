"""The proxy task: seeded and deterministic, finite on a tiny task, metrics right by hand."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hwnas import Activation, Architecture, LayerSpec, OpType, SearchSpace, build_model
from hwnas.proxy import (
    BASELINES,
    DEFAULT_TARGET,
    MODEL_METRICS,
    PRIMARY_METRIC,
    TARGETS,
    directional_accuracy,
    evaluate,
    evaluate_splits,
    information_coefficient,
    make_proxy_task,
    one_way_anova,
    qlike,
    qlike_log_vol,
    r2_against,
    sharpe_ratio,
    sharpe_standard_error,
    strategy_returns,
    train_baseline,
)
from hwnas.proxy_study import NoiseStudy, noise_study


def small_arch(features: int, lookback: int = 16) -> Architecture:
    return Architecture(
        layers=(
            LayerSpec(OpType.FC, features, 8),
            LayerSpec(OpType.CONV, 8, 8, kernel_size=3, use_skip=True),
            LayerSpec(OpType.ATTENTION, 8, 8, heads=2, activation=Activation.GELU),
        ),
        input_features=features, lookback=lookback, head="last",
    )


# ---------------------------------------------------------------- the task


def test_task_shapes_and_split(task):
    assert DEFAULT_TARGET in TARGETS and task.target == "volatility"
    assert task.train.X.dtype == torch.float32
    assert task.train.X.shape[1:] == (task.num_features, 16)
    for part in (task.train, task.val, task.test):
        assert all(len(v) == len(part) for v in part.targets.values())
    tr, va, te = task.split
    assert len(task.train) == len(tr) and len(task.val) == len(va) and len(task.test) == len(te)
    assert task.train.index[-1] < task.val.index[0] < task.val.index[-1] < task.test.index[0]
    # the gap in bars between the last train window and the first val window
    step = task.val.index[0] - task.train.index[-1]
    assert step / pd.Timedelta(minutes=15) == task.split.gap + 1 >= 16 + 4 + 1
    assert len(task.train_indices()) == 256
    np.testing.assert_array_equal(task.train_indices(), task.train_indices())  # fixed subset


def test_later_data_changes_nothing_the_training_sees(frame, task, features, recipe):
    """The scaler is fitted on training rows only: change every bar after the
    training period and the training tensors stay identical."""
    changed = frame.copy()
    later = changed.index > task.train.index[-1] + pd.Timedelta(minutes=15 * 5)  # past its targets
    rng = np.random.default_rng(0)
    factor = rng.uniform(0.5, 2.0, size=(int(later.sum()), 1))  # a new path, each bar still valid
    changed.loc[later, ["open", "high", "low", "close"]] *= factor
    changed.loc[later, "volume"] *= rng.uniform(0.1, 10.0, size=int(later.sum()))
    other = make_proxy_task(changed, "volatility", lookback=16, vol_window=4,
                            feature_kwargs=features, **recipe)
    assert torch.equal(task.train.X, other.train.X)
    for key, values in task.train.targets.items():
        np.testing.assert_array_equal(values, other.train.targets[key])
    assert not torch.equal(task.test.X, other.test.X)


def test_bad_task_settings_are_refused(frame, task):
    with pytest.raises(ValueError, match="target"):
        make_proxy_task(frame, "price")
    with pytest.raises(ValueError, match="unknown recipe"):
        make_proxy_task(frame, epochs=1, learning_rate=0.1)
    with pytest.raises(ValueError, match="eval_stride"):
        replace(task, target="direction", eval_stride=2)
    with pytest.raises(ValueError, match="epochs"):
        replace(task, epochs=0)


# ---------------------------------------------------------------- evaluate


def test_same_seed_same_scores_different_seed_different_weights(task):
    arch = small_arch(task.num_features)
    a = evaluate(arch, task, seed=7, keep_predictions=True)
    b = evaluate(arch, task, seed=7, keep_predictions=True)
    assert a.score == b.score and a.metrics == b.metrics
    np.testing.assert_array_equal(a.predictions, b.predictions)
    c = evaluate(arch, task, seed=8, keep_predictions=True)
    assert not np.array_equal(a.predictions, c.predictions)
    w7, w8 = build_model(arch, seed=7), build_model(arch, seed=8)
    assert not torch.equal(w7.layers[1].op.weight, w8.layers[1].op.weight)


def test_evaluate_restores_torch_settings(task):
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    evaluate(small_arch(task.num_features), task, seed=0)
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before


@pytest.mark.parametrize("target", TARGETS)
def test_tiny_task_gives_finite_metrics(task, target):
    t = replace(task, target=target)
    scores = evaluate_splits(small_arch(t.num_features, lookback=8), t, seed=0)
    for split, s in scores.items():
        assert s.split == split and not s.diverged
        assert set(MODEL_METRICS[target]) <= set(s.metrics)
        assert all(math.isfinite(v) for v in s.metrics.values()), s.metrics
        assert s.score == s.metrics[PRIMARY_METRIC[target]]
        assert s.n_eval == len(t.eval_indices(split)) and s.train_seconds > 0
    if target == "volatility":
        assert scores["val"].n_eval == len(range(0, len(t.val), 4))  # every 4th window
    else:
        assert scores["val"].n_eval == len(t.val)  # P&L needs every bar
        assert 0 <= scores["val"].metrics["accuracy"] <= 1


def test_evaluate_refuses_architectures_that_do_not_fit(task, mentions):
    with pytest.raises(ValueError, match=mentions("lookback", "32", "16")):
        evaluate(small_arch(task.num_features, lookback=32), task)
    with pytest.raises(ValueError, match="input_features"):
        evaluate(small_arch(task.num_features + 1), task)


def test_random_architectures_of_the_default_space_run(task):
    space = SearchSpace.default(input_features=task.num_features, lookbacks=(8, 16))
    rng = np.random.default_rng(1)
    for _ in range(3):
        s = evaluate(space.sample(rng), task, seed=0)
        assert math.isfinite(s.score)


@pytest.mark.parametrize("kind", BASELINES)
@pytest.mark.parametrize("target", TARGETS)
def test_baselines(task, kind, target):
    t = replace(task, target=target)
    s = train_baseline(kind, t, seed=0, lookback=8)
    assert math.isfinite(s.score) and s.model.startswith(kind)
    if target == "volatility" and kind == "persistence":
        assert s.metrics["r2_vs_persistence"] == 0.0
    if target == "direction" and kind == "mean":
        assert s.metrics["long_share"] in (0.0, 1.0)  # a constant position


def test_noise_study_shapes(task):
    space = SearchSpace.default(input_features=task.num_features, lookbacks=(8,), depths=(2,))
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(3)]
    out = noise_study(replace(task, max_train_windows=64), archs, seeds=(0, 1), targets=("volatility",),
                      long_factor=2, baselines=("persistence",))
    res = out.targets["volatility"]
    assert np.array(res.short["pearson"]).shape == (3, 2)
    assert 0 <= res.anova_short["pearson"]["p"] <= 1
    assert set(res.rank_agreement["pearson"]) == {"short_long", "one_seed_long", "val_test",
                                                  "val_test_long"}
    # the typed result round-trips through its JSON form
    again = NoiseStudy.from_dict(json.loads(json.dumps(out.to_dict())))
    np.testing.assert_array_equal(again.targets["volatility"].table("short"), res.table("short"))
    assert again.architectures == tuple(archs) and again.seeds == (0, 1)


# ---------------------------------------------------------------- metrics by hand


def test_sharpe_with_costs_by_hand():
    positions = np.array([1.0, 1.0, -1.0, -1.0, 0.0])
    returns = np.array([0.01, -0.02, 0.03, 0.01, 0.05])
    pnl = strategy_returns(positions, returns, cost_bps=10)
    # turnover 1, 0, 2, 0, 1 units at 10 bps = 0.001 each
    np.testing.assert_allclose(pnl, [0.009, -0.02, -0.032, -0.01, -0.001])
    mean, std = pnl.mean(), pnl.std(ddof=1)
    assert sharpe_ratio(pnl, 252) == pytest.approx(mean / std * math.sqrt(252))
    assert sharpe_ratio(pnl) == pytest.approx(-0.010_8 / 0.015_990_6, rel=1e-5)
    assert math.isnan(sharpe_ratio(np.ones(5)))
    # no costs and always long: the P&L is the return itself
    np.testing.assert_allclose(strategy_returns(np.ones(5), returns), returns)


def test_sharpe_standard_error():
    # a zero Sharpe over n bars: se = 1 / sqrt(n) per bar
    assert sharpe_standard_error(0.0, 100) == pytest.approx(0.1)
    assert sharpe_standard_error(0.0, 100, 35_040) == pytest.approx(0.1 * math.sqrt(35_040))


def test_qlike_by_hand():
    assert qlike(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.0
    assert qlike(np.array([1.0]), np.array([2.0])) == pytest.approx(2 - math.log(2) - 1)
    # under-forecasting is punished more than over-forecasting by the same factor
    assert qlike(np.array([0.5]), np.array([1.0])) > qlike(np.array([2.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="positive"):
        qlike(np.array([0.0]), np.array([1.0]))


@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5)), min_size=1, max_size=20))
def test_qlike_of_log_vols_equals_qlike_of_their_variances(pairs):
    f, y = np.array(pairs).T
    assert qlike_log_vol(f, y) == pytest.approx(qlike(np.exp(2 * f), np.exp(2 * y)), rel=1e-9, abs=1e-12)


def test_a_diverged_volatility_model_scores_inf_qlike_instead_of_crashing():
    # exp(2 * -400) underflows to a variance of 0: the loss of forecasting no variance is infinite
    assert qlike_log_vol(np.array([-400.0, 0.0]), np.array([0.0, 0.0])) == math.inf
    assert math.isnan(qlike_log_vol(np.array([math.nan]), np.array([0.0])))


def test_directional_accuracy_and_ic_by_hand():
    pred = np.array([0.2, -0.1, 0.3, 0.0, -0.5])
    real = np.array([0.01, 0.02, 0.03, -0.01, 0.0])
    # calls: right, wrong, right; no call at the zero prediction; the zero return is left out
    assert directional_accuracy(pred, real) == pytest.approx(2 / 3)
    assert math.isnan(directional_accuracy(np.zeros(5), real))
    assert information_coefficient(np.arange(5.0), np.arange(5.0) ** 3) == pytest.approx(1.0)
    assert math.isnan(information_coefficient(np.zeros(5), np.arange(5.0)))


def test_r2_against_a_baseline():
    y = np.array([1.0, 2.0, 3.0])
    assert r2_against(y, y, 0.0) == 1.0
    assert r2_against(np.full(3, 2.0), y, y.mean()) == 0.0
    assert r2_against(np.array([1.0, 2.0, 4.0]), y, np.array([2.0, 2.0, 2.0])) == pytest.approx(0.5)


def test_one_way_anova_by_hand():
    scores = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    # group means 1.5, 3.5, 5.5: MSB = 2 * 8 / 2 = 8; MSW = 6 * 0.25 / 3 = 0.5
    out = one_way_anova(scores)
    assert out["f"] == pytest.approx(16.0)
    assert out["icc"] == pytest.approx((8 - 0.5) / (8 + 0.5))
    assert out["p"] == pytest.approx(0.025_1, abs=1e-3)
    noise = one_way_anova(np.random.default_rng(0).normal(size=(30, 5)))
    assert noise["p"] > 0.01 and noise["icc"] < 0.2
