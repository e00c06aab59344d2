"""Zero-cost proxies against hand-computed values, their determinism and their use of labels,
and the pre-filter strategy built on them."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import hwnas
from hwnas.proxy.task import ProxySplit
from hwnas.search import SearchProblem
from hwnas.search.prefilter import ZeroCostPrefilter
from hwnas.search.random_search import RandomSearch
from hwnas.zero_cost import (
    LABEL_FREE,
    ZERO_COST_PROXIES,
    ZeroCostProxy,
    grad_norm,
    naswot,
    naswot_kernel,
    rank_correlation,
    snip,
    synflow,
    zero_cost_batch,
    zero_cost_score,
    zero_cost_scores,
)


def _linear(weight: list[list[float]], bias: list[float] | None = None) -> nn.Linear:
    w = torch.tensor(weight, dtype=torch.float32)
    layer = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(w)
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias))
    return layer


@pytest.fixture(scope="module")
def space(task: hwnas.ProxyTask) -> hwnas.SearchSpace:
    return hwnas.SearchSpace.default(input_features=task.num_features, widths=(8, 16), lookbacks=(16,),
                                     depths=(1, 2, 3))


@pytest.fixture(scope="module")
def archs(space: hwnas.SearchSpace) -> list[hwnas.Architecture]:
    rng = np.random.default_rng(4)
    return [space.sample(rng) for _ in range(4)]


# --------------------------------------------------------------------------- hand-computed values


@given(st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=20, max_size=20))
def test_synflow_closed_form_two_layer_linear(values: list[float]) -> None:
    """No bias: R = 1ᵀ|W2||W1|1, and each layer's sum |θ ⊙ dR/dθ| equals R, so SynFlow = 2R."""
    w1 = np.array(values[:12], dtype=np.float64).reshape(4, 3)
    w2 = np.array(values[12:], dtype=np.float64).reshape(2, 4)
    model = nn.Sequential(_linear(w1.tolist()), _linear(w2.tolist()))
    a1, a2 = np.abs(w1.astype(np.float32).astype(np.float64)), np.abs(w2.astype(np.float32).astype(np.float64))
    ones_in, ones_out = np.ones(3), np.ones(2)
    d_w1 = np.outer(ones_out @ a2, ones_in)  # dR/d|W1|
    d_w2 = np.outer(ones_out, a1 @ ones_in)  # dR/d|W2|
    expected = float((a1 * d_w1).sum() + (a2 * d_w2).sum())
    r = float(ones_out @ a2 @ a1 @ ones_in)
    assert expected == pytest.approx(2 * r, rel=1e-12, abs=1e-12)
    before = [p.detach().clone() for p in model.parameters()]
    assert synflow(model, (3,)) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the model is untouched


def test_synflow_is_double_precision() -> None:
    """20 layers of width 64 with weights 30: about 1e65, past float32's range, finite in double."""
    model = nn.Sequential(*[nn.Linear(64, 64, bias=False) for _ in range(20)])
    for layer in model:
        nn.init.constant_(layer.weight, 30.0)
    r = 64 * (64 * 30.0) ** 20  # 1ᵀ W^20 1 with every entry 30
    assert synflow(model, (64,)) == pytest.approx(20 * r, rel=1e-9)
    assert 20 * r > torch.finfo(torch.float32).max


def test_grad_norm_and_snip_one_layer_by_hand() -> None:
    """ŷ = Wx + b with MSE: dL/dW = (2/n) Σ r_i x_iᵀ, dL/db = (2/n) Σ r_i, r = ŷ - y."""
    w, b = np.array([[0.5, -1.0, 2.0]]), np.array([0.25])
    x = np.array([[1.0, 2.0, 0.5], [-1.0, 0.0, 1.0], [0.5, 0.5, -2.0], [2.0, -1.0, 0.0], [0.0, 1.0, 1.0]])
    y = np.array([1.0, -0.5, 0.0, 2.0, 0.5])
    r = x @ w[0] + b[0] - y
    d_w = 2 / len(y) * (r @ x)
    d_b = 2 / len(y) * r.sum()
    model = nn.Sequential(_linear(w.tolist(), b.tolist()))
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    assert grad_norm(model, xt, yt, nn.MSELoss()) == pytest.approx(np.linalg.norm(d_w) + abs(d_b), rel=1e-5)
    assert snip(model, xt, yt, nn.MSELoss()) == pytest.approx(np.abs(w[0] * d_w).sum() + abs(b[0] * d_b),
                                                              rel=1e-5)


@pytest.mark.parametrize("activation", [nn.ReLU, nn.GELU])
def test_naswot_hand_built_codes(activation: type[nn.Module]) -> None:
    """Pre-activations [1,-1,0], [-1,1,0], [1,1,2]: codes 100, 010, 111; K = agreements out of 3."""
    model = nn.Sequential(_linear([[1, 0], [0, 1], [1, 1]], [0, 0, 0]), activation(), _linear([[1, 1, 1]]))
    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
    codes = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 1]])
    kernel = torch.tensor([[3.0, 1, 1], [1, 3, 1], [1, 1, 3]], dtype=torch.float64)
    assert torch.equal(naswot_kernel(codes), kernel)
    assert naswot(model, x) == pytest.approx(math.log(20.0), rel=1e-12)  # det K = 3*8 - 2 - 2


def test_naswot_degenerate_cases() -> None:
    linear = nn.Sequential(_linear([[1.0, 2.0]]))
    assert naswot(linear, torch.randn(4, 2)) == -math.inf  # no ReLU/GELU: no codes
    relu = nn.Sequential(_linear([[1.0, 0.0], [0.0, 1.0]]), nn.ReLU())
    same = torch.tensor([[1.0, 1.0], [2.0, 3.0], [0.5, -1.0]])  # the first two share the code 11
    assert naswot(relu, same) == -math.inf


# --------------------------------------------------------------------------- on the task


def test_every_proxy_registered_and_finite(archs: list[hwnas.Architecture], task: hwnas.ProxyTask) -> None:
    assert set(ZERO_COST_PROXIES) == set(ZeroCostProxy)
    results = zero_cost_scores(archs, task, seed=1)
    assert len(results) == len(archs)
    for arch, res in zip(archs, results):
        assert set(res.scores) == set(res.seconds) == {p.value for p in ZeroCostProxy}
        assert res.scores["params"] == hwnas.count_params(arch)
        assert res.scores["flops"] == hwnas.count_flops(arch)
        for name, value in res.scores.items():
            assert value == zero_cost_score(arch, task, name, seed=1)  # the batch function agrees
            assert not math.isnan(value)


@pytest.mark.parametrize("proxy", list(ZeroCostProxy))
def test_deterministic_under_seed(proxy: ZeroCostProxy, archs: list[hwnas.Architecture],
                                  task: hwnas.ProxyTask) -> None:
    arch = archs[0]
    first = zero_cost_score(arch, task, proxy, seed=3)
    assert zero_cost_score(arch, task, proxy, seed=3) == first
    if proxy in (ZeroCostProxy.GRAD_NORM, ZeroCostProxy.SNIP):  # other weights and batch, other score
        assert zero_cost_score(arch, task, proxy, seed=4) != first


def _without_labels(task: hwnas.ProxyTask) -> hwnas.ProxyTask:
    """The task with every target of every split replaced by NaN."""
    def blank(part: ProxySplit) -> ProxySplit:
        return ProxySplit(part.X, {k: np.full_like(v, np.nan) for k, v in part.targets.items()}, part.index)
    return replace(task, train=blank(task.train), val=blank(task.val), test=blank(task.test))


@pytest.mark.parametrize("proxy", list(ZeroCostProxy))
def test_label_free_proxies_read_no_labels(proxy: ZeroCostProxy, archs: list[hwnas.Architecture],
                                           task: hwnas.ProxyTask) -> None:
    blank = _without_labels(task)
    for arch in archs[:2]:
        with_labels = zero_cost_score(arch, task, proxy, seed=0)
        without = zero_cost_score(arch, blank, proxy, seed=0)
        if proxy in LABEL_FREE:
            assert without == with_labels
        else:  # the labelled ones do read them: NaN labels give a NaN loss and score
            assert math.isnan(without) and not math.isnan(with_labels)


def test_batch_comes_from_training_windows(task: hwnas.ProxyTask) -> None:
    batch = zero_cost_batch(task, seed=5, batch_size=32)
    assert len(batch.rows) == 32 and set(batch.rows) <= set(task.train_indices())
    assert np.array_equal(batch.rows, zero_cost_batch(task, seed=5, batch_size=32).rows)


def test_bad_input_one_line_errors(archs: list[hwnas.Architecture], task: hwnas.ProxyTask,
                                   mentions) -> None:
    with pytest.raises(ValueError, match=mentions("proxy", "'jacov'", "synflow")) as info:
        zero_cost_score(archs[0], task, "jacov")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=mentions("proxy", "'nope'")):
        zero_cost_scores(archs, task, ["snip", "nope"])
    with pytest.raises(TypeError, match=mentions("arch", "Architecture")):
        zero_cost_score("arch", task, "snip")
    with pytest.raises(ValueError, match=mentions("batch_size")):
        zero_cost_score(archs[0], task, "snip", batch_size=1)
    wide = hwnas.SearchSpace.default(input_features=task.num_features + 1).sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match=mentions("input_features")):
        zero_cost_score(wide, task, "naswot")


# --------------------------------------------------------------------------- the pre-filter strategy


def _problem(space: hwnas.SearchSpace, task: hwnas.ProxyTask) -> SearchProblem:
    profile = hwnas.fpga_profile(hwnas.ZU9EG)
    return SearchProblem(space, profile, 1e12, 16, task=task, constraint="hard")


def test_prefilter_keeps_the_top_share(space: hwnas.SearchSpace, task: hwnas.ProxyTask) -> None:
    """Under a hard budget nothing exceeds, the surrogate reward is the proxy's rank: the kept
    candidates are the pool's largest by #params, in pool order; pool factor 1 is random search."""
    space = hwnas.SearchSpace.default(input_features=task.num_features, lookbacks=(16,),
                                      ops=(hwnas.OpType.CONV, hwnas.OpType.FC))  # the FPGA model runs all
    problem = _problem(space, task)
    pool = RandomSearch(problem, seed=7).ask(12)
    kept = ZeroCostPrefilter(problem, seed=7, proxy="params", pool_factor=4).ask(3)
    params = [hwnas.count_params(a) for a in pool]
    top = sorted(np.argsort(params, kind="stable")[::-1][:3])
    assert kept == [pool[i] for i in top]
    assert ZeroCostPrefilter(problem, seed=7, pool_factor=1).ask(12) == pool


def test_prefilter_state_round_trip_and_errors(space: hwnas.SearchSpace, task: hwnas.ProxyTask, mentions) -> None:
    problem = _problem(space, task)
    first = ZeroCostPrefilter(problem, seed=2, proxy="synflow", pool_factor=2)
    first.ask(2)
    again = ZeroCostPrefilter(problem, seed=2, proxy="synflow", pool_factor=2)
    again.load_state_dict(first.state_dict())
    assert again.ask(2) == first.ask(2)
    assert first.scored == 8 and first.zero_cost_seconds > 0
    with pytest.raises(ValueError, match=mentions("proxy", "'bogus'")):
        ZeroCostPrefilter(problem, proxy="bogus")
    with pytest.raises(ValueError, match=mentions("proxy", "task")):
        ZeroCostPrefilter(replace(problem, task=None), proxy="snip")
    with pytest.raises(ValueError, match=mentions("pool_factor")):
        ZeroCostPrefilter(problem, pool_factor=0)


# --------------------------------------------------------------------------- judging a proxy, and its figure


def test_rank_correlation_against_hand_ranks() -> None:
    x = [3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0]
    y = [0.2, 0.1, 0.5, 0.3, 0.4, 0.9, 0.0]
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))  # no ties: ranks 0..6
    d2 = float(((rx - ry) ** 2).sum())
    n = len(x)
    concordant = sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i in range(n) for j in range(i))
    out = rank_correlation(x, y, n_boot=200)
    assert out["n"] == n
    assert out["spearman"] == pytest.approx(1 - 6 * d2 / (n * (n * n - 1)))
    assert out["kendall"] == pytest.approx(concordant / (n * (n - 1) / 2))
    lo, hi = out["spearman_ci"]
    assert -1 <= lo <= hi <= 1


def test_rank_correlation_drops_nan_and_ranks_minus_inf_last() -> None:
    out = rank_correlation([-math.inf, 1.0, 2.0, math.nan, 3.0], [0.0, 1.0, 2.0, 5.0, 3.0], n_boot=50)
    assert out["n"] == 4 and out["spearman"] == pytest.approx(1.0) and out["spearman_ci"] == [1.0, 1.0]
    assert rank_correlation([1.0, 2.0], [1.0, 2.0]) == {"n": 2}
    with pytest.raises(ValueError, match="x and y"):
        rank_correlation([1.0, 2.0, 3.0], [1.0, 2.0])


def test_plot_proxy_correlations_one_panel_per_proxy() -> None:
    import matplotlib.pyplot as plt

    from hwnas import plots

    trained = [0.1, 0.2, 0.3, 0.4]
    scores = {"synflow": [1.0, 10.0, 1e3, 1e5], "naswot": [-math.inf, 2.0, 3.0, 4.0], "params": [4, 3, 2, 1]}
    corr = {"synflow": {"spearman": 1.0, "spearman_ci": [1.0, 1.0]}}
    fig = plots.plot_proxy_correlations(scores, trained, correlations=corr, ceiling={"spearman": 0.8}, ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3 and len(fig.axes) == 4  # a 2 x 2 grid, the fourth hidden
    assert visible[0].get_xscale() == "log" and visible[2].get_xscale() == "linear"
    assert "ρ = +1.00 [+1.00, +1.00]" in visible[0].get_title()
    assert len(visible[1].collections[0].get_offsets()) == 3  # -inf left out
    assert "0.80" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="params"):
        plots.plot_proxy_correlations({"params": [1, 2]}, trained)
    plt.close("all")
