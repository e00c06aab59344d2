"""EfficientNet compound scaling: the derived constraint, scaled architectures, the grid, the strategy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hwnas import (
    Architecture,
    DeviceType,
    HardwareProfile,
    LayerSpec,
    OpType,
    SearchSpace,
    arch_op_specs,
    build_model,
    count_flops,
    count_params,
    fpga_profile,
    gpu_profile,
    memory_footprint,
)
from hwnas.architecture import POOL_OPS
from hwnas.latency import TimingSpec
from hwnas.search import Metrics, SearchProblem, get_strategy
from hwnas.search.scaling import PHI_LADDER, ScalingStrategy, metrics_of, scaling_grid
from hwnas.search.scaling_rule import (
    CONSTRAINT_EXPONENTS,
    compound_scale,
    constraint_grid,
    constraint_kind,
    constraint_value,
    effective_exponents,
    flops_growth,
    flops_terms,
    width_multiple_for,
)

SPACE = SearchSpace.default()
GAMMA_CONV = 2 / (1.2 * 1.1**2)  # alpha * beta^2 * gamma = 2 with EfficientNet's alpha, beta


def sampled_base(seed: int, space: SearchSpace = SPACE) -> Architecture:
    return space.sample(np.random.default_rng(seed))


def conv_base(blocks: int, width: int, kernel: int, lookback: int, features: int = 8) -> Architecture:
    """A homogeneous conv-only base: stem to ``width``, ``blocks`` convs ``width -> width``."""
    layers = [LayerSpec(OpType.FC, features, width)]
    layers += [LayerSpec(OpType.CONV, width, width, kernel_size=kernel) for _ in range(blocks)]
    return Architecture(tuple(layers), features, lookback)


def compute_layers(arch: Architecture) -> int:
    return sum(1 for layer in arch.layers[1:] if layer.op not in POOL_OPS)


# ---------------------------------------------------------------- the cost model


@settings(max_examples=60)
@given(seed=st.integers(0, 100_000), fpga=st.booleans())
def test_flops_terms_sum_to_count_flops(seed, fpga):
    arch = sampled_base(seed, SearchSpace.fpga() if fpga else SPACE)
    terms = flops_terms(arch)
    assert sum(terms.values()) == count_flops(arch)
    assert math.isclose(flops_growth(arch, 1.0, 1.0, 1.0), 1.0)
    a, b, c = effective_exponents(arch)
    assert 0 <= a <= 1 and 1 <= b <= 2 and 0 <= c <= 2


def test_flops_terms_by_hand():
    # stem 2*16*8*32, conv k3 2*16*3*32*32, attention 4*16^2*32 + 8*16*32^2, head 2*32
    arch = Architecture((LayerSpec("fc", 8, 32), LayerSpec("conv", 32, 32, kernel_size=3),
                         LayerSpec("attention", 32, 32, heads=2)), 8, 16)
    assert flops_terms(arch) == {(0, 1, 1): 8192, (1, 2, 1): 98304 + 131072, (1, 1, 2): 32768,
                                 (0, 1, 0): 64}
    assert constraint_kind(arch) == "conv"
    long = Architecture((LayerSpec("fc", 8, 16), LayerSpec("attention", 16, 16, heads=2)), 8, 128)
    assert constraint_kind(long) == "attention"  # 4 n^2 d = 1.05 M against 8 n d^2 = 0.26 M


@pytest.mark.parametrize("kind", sorted(CONSTRAINT_EXPONENTS))
@pytest.mark.parametrize("step", [0.05, 0.1, 0.2])
def test_constraint_holds_for_every_grid_point(kind, step):
    a, b, c = CONSTRAINT_EXPONENTS[kind]
    points = constraint_grid(kind, step=step)
    for alpha, beta, gamma in points:
        assert math.isclose(constraint_value(alpha, beta, gamma, kind), 2.0, rel_tol=1e-12)
        assert alpha >= 1 and beta >= 1 and gamma >= 1
    # brute force: every (beta, gamma) on the grid with beta^b gamma^c <= 2, alpha solved
    grid = [round(1 + i * step, 4) for i in range(int(1 / step) + 2)]
    expected = {(y, z) for y in grid for z in grid if y**b * z**c <= 2 + 1e-9}
    assert {(round(y, 4), round(z, 4)) for _, y, z in points} == expected
    capped = constraint_grid(kind, step=step, max_gamma=1.2)
    assert capped == [p for p in points if p[2] <= 1.2 + 1e-9]
    assert (2.0 ** (1 / a), 1.0, 1.0) in points  # depth alone


def test_constraint_value_by_hand_and_bad_input():
    assert math.isclose(constraint_value(1.2, 1.1, 1.15, "image"), 1.2 * 1.21 * 1.3225)
    assert math.isclose(constraint_value(1.2, 1.1, GAMMA_CONV, "conv"), 2.0)
    with pytest.raises(ValueError, match="kind"):
        constraint_value(1.2, 1.1, 1.15, "video")
    with pytest.raises(ValueError, match="beta"):
        constraint_value(1.2, 0.0, 1.15)


@settings(max_examples=40)
@given(blocks=st.integers(1, 5), width=st.sampled_from([16, 24, 32, 64]), kernel=st.sampled_from([1, 3, 5]),
       lookback=st.sampled_from([32, 48, 64]), phi=st.sampled_from([-1.0, -0.5, 0.5, 1.0, 1.5, 2.0, 3.0]),
       point=st.integers(0, 8), multiple=st.sampled_from([1, 8]))
def test_flops_ratio_matches_the_derived_form_on_conv_bases(blocks, width, kernel, lookback, phi, point,
                                                            multiple):
    alpha, beta, gamma = constraint_grid("conv", step=0.2)[point % len(constraint_grid("conv", step=0.2))]
    base = conv_base(blocks, width, kernel, lookback)
    scaled = compound_scale(base, phi, alpha, beta, gamma, width_multiple=multiple)
    measured = count_flops(scaled) / count_flops(base)
    # with the realised multipliers the derived form d w^2 r (stem w r, head w) is exact
    d_real = compute_layers(scaled) / blocks
    w_real = scaled.layers[0].out_channels / width
    r_real = scaled.lookback / lookback
    assert math.isclose(measured, flops_growth(base, d_real, w_real, r_real), rel_tol=1e-12)
    # and it differs from the unrounded model (2^phi on the repeated layers) by rounding only
    d, w, r = alpha**phi, beta**phi, gamma**phi
    model = flops_growth(base, d, w, r)
    d_lo, d_hi = 1.0, (d * blocks + 1) / (d * blocks)  # ceil adds less than one layer
    w_err = multiple / 2 / (width * w)  # nearest multiple
    r_err = 0.5 / (lookback * r)
    lo = d_lo * (1 - w_err) ** 2 * (1 - r_err)
    hi = d_hi * (1 + w_err) ** 2 * (1 + r_err)
    assert lo - 1e-12 <= measured / model <= hi + 1e-12
    blocks_term = constraint_value(alpha, beta, gamma) ** phi
    assert math.isclose(blocks_term, 2.0**phi)


# ---------------------------------------------------------------- compound_scale


@settings(max_examples=60)
@given(seed=st.integers(0, 100_000), phi=st.floats(-3.0, 3.0), point=st.integers(0, 24),
       multiple=st.sampled_from([1, 8]))
def test_every_scaled_architecture_is_valid_and_builds(seed, phi, point, multiple):
    base = sampled_base(seed)
    points = constraint_grid("conv", step=0.1)
    alpha, beta, gamma = points[point % len(points)]
    try:
        scaled = compound_scale(base, phi, alpha, beta, gamma, width_multiple=multiple, max_lookback=128)
    except ValueError as err:  # only a base at every floor may refuse
        assert "cannot be scaled down further" in str(err) and phi < 0
        return
    assert Architecture.from_json(scaled.to_json()) == scaled
    n = compute_layers(base)
    assert compute_layers(scaled) == max(min(1, n), math.ceil(alpha**phi * n - 1e-9))
    assert scaled.lookback <= 128 and scaled.input_features == base.input_features
    heads = math.lcm(multiple, *[lay.heads for lay in base.layers if lay.op == OpType.ATTENTION])
    assert all(layer.out_channels % heads == 0 for layer in scaled.layers)
    pools = [[lay.op for lay in arch.layers if lay.op in POOL_OPS] for arch in (scaled, base)]
    assert pools[0] == pools[1]
    if phi > 0:
        assert scaled.lookback >= base.lookback and count_flops(scaled) >= count_flops(base)
    x = torch.zeros(2, scaled.input_features, scaled.lookback)
    with torch.no_grad():
        assert tuple(build_model(scaled, seed=0)(x).shape) == (2, 1)


@settings(max_examples=30)
@given(seed=st.integers(0, 100_000))
def test_phi_zero_gives_the_base_back(seed):
    base = sampled_base(seed)
    assert compound_scale(base, 0.0, 1.2, 1.1, GAMMA_CONV, width_multiple=8) == base
    assert compound_scale(base, 0, 3.0, 3.0, 3.0) is base


def test_scaling_by_hand():
    base = conv_base(blocks=3, width=32, kernel=3, lookback=32)
    up = compound_scale(base, 1.0, 1.2, 1.1, GAMMA_CONV)
    # ceil(3 * 1.2) = 4 layers (the last block twice), 32 * 1.1 = 35.2 -> 35, 32 * 1.377 = 44.08 -> 44
    assert compute_layers(up) == 4 and up.lookback == 44
    assert [lay.out_channels for lay in up.layers] == [35] * 5
    assert [lay.out_channels for lay in compound_scale(base, 1.0, 1.2, 1.1, GAMMA_CONV, width_multiple=8).layers] \
        == [32] * 5  # 35.2 rounds to the multiple 32
    down = compound_scale(base, -1.0, 1.2, 1.1, GAMMA_CONV)
    assert compute_layers(down) == 3 and down.lookback == 23  # ceil(2.5) = 3; 32 / 1.377 = 23.2
    assert [lay.out_channels for lay in down.layers] == [29] * 4  # 29.09
    capped = compound_scale(base, 3.0, 1.2, 1.1, GAMMA_CONV, max_lookback=64)
    assert capped.lookback == 64


def test_pooling_is_kept_and_the_lookback_floor_respected():
    base = Architecture((LayerSpec("fc", 8, 16), LayerSpec("conv", 16, 16, kernel_size=3),
                         LayerSpec("max_pool", 16, 16, kernel_size=2, stride=2),
                         LayerSpec("conv", 16, 16, kernel_size=5),
                         LayerSpec("max_pool", 16, 16, kernel_size=2, stride=2)), 8, 32)
    down = compound_scale(base, -4.0, 1.0, 1.0, 2.0)  # lookback 2 asked: pools need 4 * 4 = 16 steps
    assert down.lookback == 16 and [lay.op for lay in down.layers] == [lay.op for lay in base.layers]
    up = compound_scale(base, 2.0, 1.5, 1.0, 1.0)  # 2 convs -> ceil(4.5) = 5
    assert compute_layers(up) == 5
    assert [lay.op.value for lay in up.layers].count("max_pool") == 2
    assert all(lay.stride == 1 for lay in up.layers if lay.op not in POOL_OPS)


def test_bad_coefficients_and_floors_raise_naming_the_argument(mentions):
    base = conv_base(blocks=2, width=32, kernel=3, lookback=32)
    for name, args in (("alpha", (0.0, 1.1, 1.2)), ("beta", (1.2, -1.0, 1.2)), ("gamma", (1.2, 1.1, math.nan))):
        with pytest.raises(ValueError, match=name):
            compound_scale(base, 1.0, *args)
    with pytest.raises(ValueError, match="phi"):
        compound_scale(base, math.inf, 1.2, 1.1, 1.2)
    with pytest.raises(ValueError, match="max_lookback"):
        compound_scale(base, 1.0, 1.2, 1.1, 1.2, max_lookback=16)
    with pytest.raises(ValueError, match="width_multiple"):
        compound_scale(base, 1.0, 1.2, 1.1, 1.2, width_multiple=0)
    tiny = Architecture((LayerSpec("fc", 8, 8), LayerSpec("conv", 8, 8, kernel_size=3)), 8, 3)
    with pytest.raises(ValueError, match=mentions("phi=-1.0", "base", "min_depth 1", "8", "lookback 3")):
        compound_scale(tiny, -1.0, 1.2, 1.1, 1.2, width_multiple=8)
    assert compound_scale(tiny, 1.0, 1.2, 1.1, 1.2, width_multiple=8).depth == 3  # up is fine


# ---------------------------------------------------------------- targets and latency


def measured_profile(archs) -> HardwareProfile:
    """A 'measured' CPU profile with a made-up table for exactly the keys of ``archs``."""
    keys = {k for a in archs for k in arch_op_specs(a)}
    return HardwareProfile("cpu-test", DeviceType.CPU, {k: 1.0 + k.flops / 1e6 for k in keys},
                           10**9, 1e10, conditions={"threads": 1})


def test_width_multiple_per_target():
    assert width_multiple_for(gpu_profile(measure=False)) == 8
    assert width_multiple_for(gpu_profile(precision="fp32", measure=False)) == 1
    assert width_multiple_for(fpga_profile()) == 1
    assert width_multiple_for(measured_profile([conv_base(1, 16, 3, 16)])) == 1


def test_extend_profile_measures_only_the_missing_keys():
    from hwnas.latency import extend_profile, missing_keys

    base = conv_base(blocks=1, width=8, kernel=3, lookback=16)
    scaled = compound_scale(base, 1.0, 1.0, 2.0, 1.0)  # widths 16: stem and conv keys are new
    profile = measured_profile([base])
    missing = missing_keys(profile, [base, scaled])
    assert set(missing) == set(arch_op_specs(scaled)) - set(arch_op_specs(base))
    with pytest.raises(KeyError):
        profile.predict_latency(scaled)
    extended = extend_profile(profile, [scaled], timing=TimingSpec.QUICK.replace(passes=1, target_ms=0.5))
    assert extended is not profile and len(profile.latency_table) == 3  # the original is untouched
    assert set(extended.latency_table) == set(profile.latency_table) | set(missing)
    assert extended.predict_latency(scaled) > 0 and extended.conditions["extended"]["keys"] == len(missing)
    assert missing_keys(extended, [scaled]) == []
    analytical = gpu_profile(measure=False)
    assert extend_profile(analytical, [scaled]) is analytical


# ---------------------------------------------------------------- the grid and the family


def fake_metrics(profile):
    """A deterministic stand-in for the proxy task: prefers depth, then width."""

    def run(arch, extended=None):
        used = extended or profile
        score = 0.1 + 0.01 * compute_layers(arch) + 0.0001 * arch.layers[0].out_channels - 0.0002 * arch.lookback
        return Metrics(score=score, latency_us=used.predict_latency(arch),
                       memory_bytes=memory_footprint(arch, used.precision).total_bytes,
                       flops=count_flops(arch), params=count_params(arch))

    return run


def small_base(features: int, lookback: int = 16) -> Architecture:
    return Architecture((LayerSpec("fc", features, 8), LayerSpec("conv", 8, 8, kernel_size=3),
                         LayerSpec("dwsep_conv", 8, 16, kernel_size=3, use_skip=True)), features, lookback)


def test_scaling_grid_picks_the_best_point_and_fills_the_budgets(long_task):
    profile = gpu_profile(measure=False)
    base = small_base(long_task.num_features)
    calls = []
    fake = fake_metrics(profile)
    result = scaling_grid(base, long_task, profile, step=0.2, budgets_us=[20.0, 40.0, 80.0],
                          evaluator=lambda a, p: calls.append(a.to_json()) or fake(a, p))
    assert result.kind == "conv" and result.width_multiple == 8
    assert len(calls) == len(set(calls)) == result.evaluations  # one evaluation per distinct model
    max_gamma = long_task.lookback / base.lookback
    assert [(p.alpha, p.beta, p.gamma) for p in result.grid] == constraint_grid("conv", step=0.2,
                                                                                max_gamma=max_gamma)
    best = max(result.grid, key=lambda p: p.metrics.score)
    assert result.best == (best.alpha, best.beta, best.gamma)
    for member in result.family:  # the largest ladder phi under each budget
        assert member.metrics.latency_us <= member.budget_us
        bigger = [p for p in PHI_LADDER if p > member.phi]
        for phi in bigger[:1]:
            arch = compound_scale(base, phi, *result.best, width_multiple=8, max_lookback=long_task.lookback)
            assert profile.predict_latency(arch) > member.budget_us
    assert [m.phi for m in result.family] == sorted(m.phi for m in result.family)


def test_scaling_grid_trains_with_the_proxy_task(long_task):
    profile = fpga_profile()
    result = scaling_grid(small_base(long_task.num_features), long_task, profile, step=0.5, phis=(-1.0, 1.0))
    assert result.width_multiple == 1 and len(result.family) == 2
    assert all(math.isfinite(p.metrics.score) and p.metrics.feasible for p in result.grid)
    direct = metrics_of(result.family[1].arch, long_task, profile)
    assert direct.score == result.family[1].metrics.score


def test_scaling_grid_extends_a_measured_profile_and_leaves_it_alone(long_task):
    base = small_base(long_task.num_features)
    profile = measured_profile([base])
    before = dict(profile.latency_table)
    result = scaling_grid(base, long_task, profile, step=0.5, phis=(1.0,), evaluator=fake_metrics(profile))
    assert profile.latency_table == before
    assert all(result.profile.predict_latency(m.arch) > 0 for m in result.family)


# ---------------------------------------------------------------- the strategy


def drive(strategy, evaluate, batch=2, stop_after=None):
    asked = []
    while True:
        archs = strategy.ask(batch)
        if not archs:
            return asked
        for arch in archs:
            strategy.tell(arch, evaluate(arch))
            asked.append(arch.to_json())
        if stop_after is not None and len(asked) >= stop_after:
            return asked


def problem(profile, budget=60.0, evals=30, **kw):
    return SearchProblem(SPACE, profile, budget, evals, **kw)


def test_strategy_is_registered_and_follows_its_plan():
    profile = gpu_profile(measure=False)
    prob = problem(profile, constraint="hard")
    assert get_strategy("scaling") is ScalingStrategy
    strategy = ScalingStrategy(prob, seed=3)
    evaluate = fake_metrics(profile)
    asked = drive(strategy, evaluate)
    assert len(asked) == prob.num_iterations  # the plan, then the runners-up and random fill
    assert strategy.phase == "done" and strategy.ask(4) == []
    assert asked[:strategy.warmup] == [a.to_json() for a in strategy.warmup_archs]
    planned = [arch.to_json() for *_, arch in strategy.grid] + [arch.to_json() for *_, arch in strategy.family]
    assert len(set(planned)) == len([a for a in asked if a in set(planned)])  # each planned model once
    kind = constraint_kind(strategy.base)
    for alpha, beta, gamma, _ in strategy.grid:
        assert math.isclose(constraint_value(alpha, beta, gamma, kind), 2.0)
    rewards = [prob.reward(evaluate(arch)) for *_, arch in strategy.grid]
    assert strategy.ranked[0] == int(np.argmax(rewards))
    assert strategy.best == strategy.grid[strategy.ranked[0]][:3]
    assert strategy.family and all(budget <= prob.latency_budget_us for _, _, budget, _ in strategy.family)
    for _, _phi, budget, arch in strategy.family:
        assert profile.predict_latency(arch) <= budget
    assert json.loads(json.dumps(strategy.state_dict())) == strategy.state_dict()


def test_strategy_is_deterministic_and_resumes():
    profile = gpu_profile(measure=False)
    evaluate = fake_metrics(profile)
    whole = drive(ScalingStrategy(problem(profile), seed=5), evaluate)
    assert whole == drive(ScalingStrategy(problem(profile), seed=5), evaluate)
    assert whole != drive(ScalingStrategy(problem(profile), seed=6), evaluate)
    first = ScalingStrategy(problem(profile), seed=5)
    part = drive(first, evaluate, stop_after=9)
    resumed = ScalingStrategy(problem(profile), seed=5)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert part + drive(resumed, evaluate) == whole


def test_strategy_with_a_base_skips_the_warmup_and_extends_a_measured_profile():
    base = small_base(8, 32)
    profile = measured_profile([base])
    tiny = SearchSpace.default(ops=("conv", "fc"), widths=(8,), kernel_sizes=(3,), lookbacks=(32,),
                               depths=(2,), stem_width=8, skip_choices=(False,))
    prob = SearchProblem(tiny, profile, 2 * profile.predict_latency(base), 10)
    strategy = ScalingStrategy(prob, seed=0, base=base, step=0.5)
    first = strategy.ask(1)
    assert strategy.warmup == 0 and strategy.phase == "grid" and first
    asked = drive(strategy, fake_metrics(profile))
    assert all(profile.predict_latency(Architecture.from_json(a)) > 0 for a in asked)
    with pytest.raises(ValueError, match="base"):
        ScalingStrategy(problem(profile), base="conv")


# ---------------------------------------------------------------- figures


def test_figures_draw_what_they_are_given():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwnas import plots

    points = constraint_grid("conv", step=0.5)
    scores = [0.1 * i for i in range(len(points))]
    ax = plots.scaling_grid_heatmap(points, scores, best=points[-1])
    assert len(ax.texts) == len(points) and len(ax.patches) == 1
    assert ax.images[0].get_array().count() == len(points)  # one unmasked cell per point
    ax = plots.flops_growth_plot([0, 1, 2], {"count_flops": [1, 2.1, 3.9], "cost model": [1, 2, 4]})
    assert len(ax.lines) == 3 and ax.get_yscale() == "log"
    ax = plots.scaled_families({"compound": ([10, 20], [0.5, 0.6]), "depth": ([10, 30], [0.4, 0.5])},
                               errors={"compound": [0.01, 0.02]}, budgets=[15, 25],
                               fronts={"random": ([5, 40], [0.3, 0.55])})
    assert len(ax.containers) == 2 and ax.get_xscale() == "log"
    assert plots.family_colour("compound") == plots.strategy_color("scaling")
    ax = plots.target_families({"cpu": ([0, 1], [10, 20]), "gpu": ([0, 1], [5, 6])})
    assert [line.get_color() for line in ax.lines] == [plots.target_color("cpu"), plots.target_color("gpu")]
    plt.close("all")


def test_through_the_search_loop_with_a_measured_profile(long_task):
    """hwnas.search(strategy="scaling"): the loop's evaluator finds the keys the strategy measured."""
    from hwnas.search import search

    base = small_base(long_task.num_features, 16)
    profile = measured_profile([base])
    tiny = SearchSpace.default(input_features=long_task.num_features, ops=("conv", "fc"), widths=(8,),
                               kernel_sizes=(3,), lookbacks=(16,), depths=(2,), stem_width=8,
                               skip_choices=(False,))
    budget = 2 * profile.predict_latency(base)
    result = search(tiny, profile, budget, 6, strategy="scaling", task=long_task, seed=0, progress=False,
                    strategy_options={"base": base, "step": 0.5}, batch_size=2)
    assert len(result.history) == 6
    assert result.history[0].arch != base  # no warm-up: the grid comes first
    assert all(math.isfinite(s.metrics.latency_us) for s in result.history)
    assert len(result) >= 1
