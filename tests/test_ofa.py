"""Once-for-all (hwnas.search.ofa): slices, extraction, progressive shrinking, per-target search, errors."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hwnas.architecture import Activation, HeadType, LayerSpec, OpType
from hwnas.model import build_model
from hwnas.search.base import SearchProblem
from hwnas.search.ofa import (
    OFASpace,
    OFASupernet,
    Phase,
    SubnetConfig,
    extract,
    search_subnet,
    sort_channels,
    target_problem,
    train_supernet,
)
from hwnas.space import SearchSpace
from hwnas.targets.profiles import fpga_profile, gpu_profile

FEATURES = 9  # the tiny task's feature count (tests/conftest.py FEATURES)


def small_space(**overrides) -> OFASpace:
    settings = dict(input_features=FEATURES, lookbacks=(16, 32), depths=(1, 2, 3), kernel_sizes=(3, 5, 7),
                    widths=(4, 8), stem_widths=(4, 8))
    return OFASpace(**{**settings, **overrides})


def random_supernet(seed: int = 0) -> OFASupernet:
    """A supernet whose kernel transforms are random (not the identity they start at)."""
    net = OFASupernet(small_space(), seed=seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in net.transforms:
            for matrix in block.values():
                matrix.copy_(torch.randn(matrix.shape, generator=generator))
    return net


configs = st.builds(
    lambda lookback, stem, blocks, head: SubnetConfig(lookback, stem, tuple(b[0] for b in blocks),
                                                      tuple(b[1] for b in blocks), head),
    st.sampled_from((16, 32)), st.sampled_from((4, 8)),
    st.lists(st.tuples(st.sampled_from((3, 5, 7)), st.sampled_from((4, 8))), min_size=1, max_size=3),
    st.sampled_from((HeadType.GAP, HeadType.LAST)))


def test_extracted_weights_are_the_supernets_slices() -> None:
    net = random_supernet()
    config = SubnetConfig(32, 4, (7, 5, 3), (8, 8, 4), HeadType.LAST)
    arch = net.space.architecture(config)
    state = extract(net, arch).state_dict()
    assert torch.equal(state["layers.0.op.weight"], net.stem.weight[:4])
    assert torch.equal(state["layers.1.op.weight"], net.convs[0].weight[:8, :4])  # largest kernel: a plain slice
    assert torch.equal(state["layers.1.shortcut.weight"], net.projections[0].weight[:8, :4])
    assert "layers.2.shortcut.weight" not in state  # 8 -> 8: an identity skip, no projection
    # 5 taps: the centre 5 of block 1's 7 through its 5x5 transform; 3 taps: the centre of that through the 3x3
    w = net.convs[1].weight[:8, :8, 1:6].detach()
    five = w.reshape(-1, 5) @ net.transforms[1]["5"].detach().T
    assert torch.allclose(state["layers.2.op.weight"], five.reshape(8, 8, 5))
    w3 = net.convs[2].weight[:4, :8].detach().reshape(-1, 7)[:, 1:6] @ net.transforms[2]["5"].detach().T
    three = w3[:, 1:4] @ net.transforms[2]["3"].detach().T
    assert torch.allclose(state["layers.3.op.weight"], three.reshape(4, 8, 3))
    assert torch.equal(state["layers.3.op.bias"], net.convs[2].bias[:4])
    assert torch.equal(state["head.linear.weight"], net.heads["last"].weight[:, :4])
    assert set(state) == set(build_model(arch).state_dict())


@given(configs)
def test_extracted_model_equals_the_supernet_and_the_standalone_model(config: SubnetConfig) -> None:
    net = random_supernet()
    arch = net.space.architecture(config)
    assert net.space.config(arch) == config
    x = torch.randn(3, FEATURES, 32, generator=torch.Generator().manual_seed(1))
    standalone = build_model(arch, seed=5)
    standalone.load_state_dict(net.subnet_state_dict(config))
    with torch.no_grad():
        expected = net(x, config)
        got = extract(net, arch)(x[:, :, -config.lookback:])
        alone = standalone(x[:, :, -config.lookback:])
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.equal(got, alone)


@given(configs)
def test_a_last_head_reads_only_its_receptive_field(config: SubnetConfig) -> None:
    from hwnas.search.ofa import _steps_read

    net = random_supernet(3)
    x = torch.randn(3, FEATURES, 32, generator=torch.Generator().manual_seed(2))
    steps = _steps_read(config)
    with torch.no_grad():
        full, cut = net(x, config), net(x[:, :, -steps:], config)
    if config.head == HeadType.GAP:
        assert steps == config.lookback
    else:
        assert steps == min(config.lookback, 1 + sum((k - 1) // 2 for k in config.kernels))
    assert torch.allclose(cut, full, atol=1e-5)


def test_one_step_fewer_than_the_receptive_field_changes_a_last_prediction() -> None:
    net = random_supernet(3)
    config = SubnetConfig(32, 8, (7, 5, 3), (8, 8, 8), HeadType.LAST)
    x = torch.randn(4, FEATURES, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full, shorter = net(x, config), net(x[:, :, -(1 + 3 + 2 + 1) + 1:], config)
    assert not torch.allclose(shorter, full, atol=1e-5)


def test_the_search_scores_like_the_extracted_model(long_task) -> None:
    from hwnas.search.ofa import _search_score, inherited_score

    net = random_supernet(4)
    for config in (SubnetConfig(32, 8, (7, 5), (8, 4), HeadType.LAST), SubnetConfig(16, 4, (3,), (8,), HeadType.GAP),
                   SubnetConfig(32, 4, (5, 3, 7), (4, 4, 8), HeadType.GAP)):
        arch = net.space.architecture(config)
        assert _search_score(net, arch, long_task) == pytest.approx(inherited_score(net, arch, long_task), abs=1e-6)


def test_sorting_channels_keeps_the_full_network_and_puts_important_channels_first() -> None:
    net = random_supernet(2)
    config = net.space.largest()
    x = torch.randn(4, FEATURES, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = net(x, config)
        order = sort_channels(net)
        after = net(x, config)
    assert sorted(order.tolist()) == list(range(net.space.channels))
    assert torch.allclose(before, after, atol=1e-5)
    readers = [m.weight for m in (*net.convs, *net.projections)]
    importance = sum(w.detach().abs().sum(dim=(0, 2)) for w in readers) + sum(
        h.weight.detach().abs().sum(dim=0) for h in net.heads.values())
    assert torch.all(importance[:-1] >= importance[1:] - 1e-6)


def test_sample_makes_only_what_each_phase_allows() -> None:
    space = small_space()
    rng = np.random.default_rng(0)
    for phase in Phase:
        samples = [space.sample(rng, phase) for _ in range(200)]
        depths = {s.depth for s in samples}
        kernels = {k for s in samples for k in s.kernels}
        widths = {w for s in samples for w in (s.stem_width, *s.widths)}
        assert {s.lookback for s in samples} == {16, 32} and {s.head for s in samples} == {HeadType.GAP, HeadType.LAST}
        assert (len(kernels) > 1) == (phase != Phase.FULL)
        assert (len(depths) > 1) == (phase in (Phase.DEPTH, Phase.WIDTH))
        assert (len(widths) > 1) == (phase == Phase.WIDTH)


def test_supernet_trains_extracts_and_is_deterministic(long_task) -> None:
    space = small_space(lookbacks=(32,), widths=(16, 32), stem_widths=(16,), depths=(2, 3), kernel_sizes=(3, 5))
    runs = [train_supernet(long_task, space, seed=4, phase_epochs=(1, 1, 1, 1)) for _ in range(2)]
    curve = runs[0].curve
    assert [row["phase"] for row in curve] == ["full", "kernel", "depth", "width"]
    assert [row["step"] for row in curve] == [4, 8, 12, 16]  # 256 windows / batch 64 per epoch
    assert all(math.isfinite(row["loss"]) and -1 <= row["val_largest"] <= 1 for row in curve)
    def untimed(rows):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert untimed(curve) == untimed(runs[1].curve)
    for a, b in zip(runs[0].supernet.parameters(), runs[1].supernet.parameters()):
        assert torch.equal(a, b)
    problem = target_problem(runs[0].supernet, "fpga", fpga_profile(), long_task, evals=12)
    assert problem.space.kernel_sizes == (3,) and problem.space.head_types == (HeadType.LAST,)
    choices = [search_subnet(run.supernet, problem, seed=1, population_size=4, sample_size=2, target="fpga")
               for run in runs]
    assert choices[0].arch == choices[1].arch and choices[0].points == choices[1].points
    assert problem.within_budget(choices[0].metrics) and choices[0].scored >= 1
    assert runs[0].supernet.space.config(choices[0].arch).head == HeadType.LAST


def test_target_problem_cuts_each_plan_space_to_the_supernet() -> None:
    net = OFASupernet(OFASpace(input_features=FEATURES), seed=0)
    gpu = target_problem(net, "gpu", gpu_profile())
    assert (gpu.space.widths, gpu.space.stem_width, gpu.batch) == ((32, 64), 64, 256)
    cpu_space = net.space.search_space(SearchSpace.named("mobile", input_features=FEATURES))
    assert (cpu_space.widths, cpu_space.stem_width, cpu_space.ops) == ((16, 32), 16, (OpType.CONV,))
    arch = cpu_space.sample(np.random.default_rng(0))
    assert net.space.config(arch).stem_width == 16


@pytest.mark.parametrize(("make", "error", "names"), [
    (lambda: OFASpace(kernel_sizes=(2, 3)), ValueError, "kernel_sizes"),
    (lambda: OFASpace(lookbacks=(4,)), ValueError, "lookbacks"),
    (lambda: OFASpace(head_types=("flatten",)), ValueError, "head_types"),
    (lambda: OFASpace(widths=()), ValueError, "widths"),
    (lambda: OFASupernet("big"), TypeError, "space"),
    (lambda: extract(torch.nn.Linear(2, 2), None), TypeError, "supernet"),
    (lambda: target_problem(OFASupernet(), "tpu", gpu_profile()), ValueError, "target"),
    (lambda: OFASpace().search_space(SearchSpace.fpga(stem_width=8)), ValueError, "stem width"),
    (lambda: OFASpace(input_features=FEATURES).search_space(SearchSpace.fpga(FEATURES, kernel_sizes=(1,))),
     ValueError, "kernel size"),
])
def test_bad_arguments_are_one_line_errors(make, error, names) -> None:
    with pytest.raises(error, match=names) as info:
        make()
    assert "\n" not in str(info.value)


def test_architectures_outside_the_supernet_are_refused(long_task) -> None:
    net = OFASupernet(small_space(), seed=0)
    arch = net.space.architecture(net.space.largest())
    gelu = replace(arch, layers=(arch.layers[0], replace(arch.layers[1], activation=Activation.GELU),
                                 *arch.layers[2:]))
    wide = replace(arch, layers=(arch.layers[0], LayerSpec(OpType.CONV, 8, 8, kernel_size=9, use_skip=True),
                                 *arch.layers[2:]))
    for bad, names in ((gelu, "layers\\[1\\]"), (wide, "kernel size 9"), (replace(arch, head=HeadType.FLATTEN), "head"),
                       (replace(arch, lookback=64), "lookback")):
        with pytest.raises(ValueError, match=names):
            extract(net, bad)
    with pytest.raises(ValueError, match="phase_epochs"):
        train_supernet(long_task, net.space, phase_epochs=(1, 1))
    uncut = SearchProblem(SearchSpace.default(FEATURES, lookbacks=(32,)), gpu_profile(), 150.0, 5, task=long_task)
    with pytest.raises(ValueError, match="arch|layers|outside"):
        search_subnet(net, uncut)  # a space the supernet does not hold: refused before any scoring


def test_plot_ofa_draws_the_curve_and_one_panel_per_target() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwnas.plots import plot_ofa

    curve = [{"phase": "full", "epoch": 1, "step": 4, "loss": 1.0, "val_largest": 0.1, "val_smallest": 0.05},
             {"phase": "width", "epoch": 1, "step": 8, "loss": 0.9, "val_largest": 0.2, "val_smallest": 0.1}]
    point = {"arch": "a", "latency_us": 3.0, "score": 0.2, "within_budget": True}
    targets = {"fpga": {"budget_us": 20.0, "ofa": {"points": [point, {**point, "score": None}], "latency_us": 3.0,
                                                   "inherited_test": 0.1, "finetuned": {"test_mean": 0.2},
                                                   "scratch": {"test_mean": 0.25}},
                        "separate": {"strategy": "fbnet", "points": [point], "latency_us": 2.0,
                                     "retrained": {"test_mean": 0.3}}},
               "gpu": {"budget_us": 150.0, "ofa": {"points": [point]}}}
    fig = plot_ofa(curve, targets)
    assert [ax.get_title() for ax in fig.axes] == ["supernet training", "fpga", "gpu"]
    assert len(fig.axes[0].lines) >= 2 and len(fig.axes[1].collections) == 6  # 2 clouds, 4 chosen markers
    plt.close(fig)
    with pytest.raises(ValueError, match="curve"):
        plot_ofa([], targets)
