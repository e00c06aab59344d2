"""FLOPs, parameters and memory against torch's own counts and measurements."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from hwnas import (
    Architecture,
    LayerSpec,
    SearchSpace,
    build_model,
    cost_breakdown,
    count_flops,
    count_params,
    measure_activation_peak,
    memory_footprint,
)
from hwnas.cost_measure import countable_ops

SPACES = ["default", "fpga", "mobile", "gpu"]


def torch_flops(arch: Architecture, batch: int = 1) -> int:
    model = build_model(arch, seed=0)
    x = torch.randn(batch, arch.input_features, arch.lookback)
    # oneDNN off: torch's CPU LSTM is otherwise one oneDNN kernel the counter counts as 0
    with countable_ops(), FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops()


def one_layer(spec: LayerSpec, lookback: int = 32) -> Architecture:
    return Architecture(layers=[spec], input_features=spec.in_channels, lookback=lookback)


@pytest.mark.parametrize(
    "spec, expected",
    [
        # 2 L_out K C_in C_out, + head 2 * C_out * 1
        (LayerSpec("conv", 8, 16, kernel_size=5), 2 * 32 * 5 * 8 * 16 + 2 * 16),
        (LayerSpec("dilated_conv", 8, 16, kernel_size=3, dilation=4), 2 * 32 * 3 * 8 * 16 + 2 * 16),
        # depthwise 2 L K C + pointwise 2 L C_in C_out
        (LayerSpec("dwsep_conv", 8, 16, kernel_size=7), 2 * 32 * 7 * 8 + 2 * 32 * 8 * 16 + 2 * 16),
        (LayerSpec("fc", 8, 16), 2 * 32 * 8 * 16 + 2 * 16),
        # 4 n^2 d + 8 n d^2 (four d x d projections)
        (LayerSpec("attention", 8, 8, heads=2), 4 * 32 * 32 * 8 + 8 * 32 * 8 * 8 + 2 * 8),
        (LayerSpec("max_pool", 8, 8, kernel_size=2, stride=2), 2 * 8),
        (LayerSpec("conv", 8, 16, kernel_size=3, use_skip=True), 2 * 32 * 3 * 8 * 16 + 2 * 32 * 8 * 16 + 2 * 16),
    ],
)
def test_flop_formulas_match_hand_counts_and_torch(spec, expected):
    arch = one_layer(spec)
    assert count_flops(arch) == expected
    assert torch_flops(arch) == expected


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=200)
@given(seed=st.integers(0, 2**32 - 1))
def test_flops_equal_torch_counter(name, seed):
    arch = SearchSpace.named(name).sample(np.random.default_rng(seed))
    assert count_flops(arch) == torch_flops(arch)


@settings(max_examples=20)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(2, 5))
def test_flops_scale_with_batch(seed, batch):
    arch = SearchSpace.default().sample(np.random.default_rng(seed))
    assert count_flops(arch, batch_size=batch) == batch * count_flops(arch) == torch_flops(arch, batch)


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=200)
@given(seed=st.integers(0, 2**32 - 1))
def test_params_equal_numel_and_model_runs(name, seed):
    arch = SearchSpace.named(name).sample(np.random.default_rng(seed))
    model = build_model(arch)
    assert count_params(arch) == sum(p.numel() for p in model.parameters())
    with torch.inference_mode():
        y = model(torch.randn(2, arch.input_features, arch.lookback))
    assert y.shape == (2, arch.num_outputs) and torch.isfinite(y).all()


def test_breakdown_sums_to_totals():
    arch = SearchSpace.default().sample(np.random.default_rng(11))
    rows = cost_breakdown(arch)
    assert len(rows) == arch.depth + 1 and rows[-1].name.startswith("head:")
    assert sum(r.flops for r in rows) == count_flops(arch)
    assert sum(r.params for r in rows) == count_params(arch)


def test_memory_follows_the_chapter_formula():
    arch = Architecture(
        layers=[LayerSpec("fc", 4, 16), LayerSpec("conv", 16, 32, kernel_size=3),
                LayerSpec("conv", 32, 8, kernel_size=3)],
        input_features=4, lookback=10,
    )
    sizes = [4 * 10, 16 * 10, 32 * 10, 8 * 10]
    expected_values = max(a + b for a, b in zip(sizes, sizes[1:]))
    for precision, b in [("fp32", 4), ("fp16", 2), ("int8", 1)]:
        mem = memory_footprint(arch, precision, batch_size=3)
        assert mem.params_bytes == count_params(arch) * b
        assert mem.activation_bytes == expected_values * b * 3
        assert mem.total_bytes == mem.params_bytes + mem.activation_bytes
        assert mem.peak_layer == 1


def test_skip_keeps_extra_tensors_alive():
    plain = one_layer(LayerSpec("conv", 8, 16, kernel_size=3), lookback=10)
    skip = one_layer(LayerSpec("conv", 8, 16, kernel_size=3, use_skip=True), lookback=10)
    # the op's output, the projected shortcut and the sum: two extra outputs
    assert memory_footprint(skip).activation_bytes - memory_footprint(plain).activation_bytes == 2 * 16 * 10 * 4


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=50)
@given(seed=st.integers(0, 2**32 - 1))
def test_eager_memory_model_matches_measured_peak(name, seed):
    arch = SearchSpace.named(name).sample(np.random.default_rng(seed))
    mem = memory_footprint(arch)
    measured = measure_activation_peak(build_model(arch), torch.randn(1, arch.input_features, arch.lookback))
    assert measured == mem.eager_activation_bytes
    assert mem.activation_bytes <= measured  # the schedule model is a lower bound


def test_memory_rejects_bad_input(mentions):
    arch = SearchSpace.default().sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match=mentions("precision", "'fp8'", "fp16", "fp32", "int8")):
        memory_footprint(arch, "fp8")
    with pytest.raises(ValueError, match=mentions("batch_size", "1", "0")):
        memory_footprint(arch, batch_size=0)
    with pytest.raises(ValueError, match=mentions("batch_size", "1", "0")):
        count_flops(arch, batch_size=0)


def test_model_rejects_wrong_input_shape(mentions):
    arch = SearchSpace.default(input_features=8).sample(np.random.default_rng(0))
    model = build_model(arch)
    with pytest.raises(ValueError, match=mentions("input", "(batch, 8, ", "(1, 3, ")):
        model(torch.randn(1, 3, arch.lookback))


def test_build_model_seed_is_reproducible_and_local():
    arch = SearchSpace.default().sample(np.random.default_rng(0))
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = build_model(arch, seed=5), build_model(arch, seed=5)
    after = torch.rand(1)
    assert before == after  # the global generator was not consumed
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_max_batch_size_fits_the_budget_exactly():
    from hwnas.cost import max_batch_size

    arch = SearchSpace.default().sample(np.random.default_rng(2))
    budget = 5_000_000
    for eager in (True, False):
        n = max_batch_size(arch, "fp16", budget, eager=eager)
        per = memory_footprint(arch, "fp16", batch_size=n)
        used = per.eager_total_bytes if eager else per.total_bytes
        assert used <= budget
        after = memory_footprint(arch, "fp16", batch_size=n + 1)
        assert (after.eager_total_bytes if eager else after.total_bytes) > budget
    assert max_batch_size(arch, "fp32", 10) == 0


def test_operator_log_separates_counted_and_uncounted_ops():
    from hwnas.cost_measure import OperatorLog, measure_flops

    arch = one_layer(LayerSpec("conv", 8, 8, kernel_size=3, activation="relu", use_skip=True))
    model = build_model(arch)
    log = OperatorLog()
    with torch.no_grad(), log:
        model(torch.randn(1, 8, 32))
    assert "convolution" in log.counted and "relu" in log.values and "relu" not in log.counted
    assert measure_flops(model, torch.randn(1, 8, 32)) == count_flops(arch)
