"""FBNet: Gumbel-softmax, the exact expected latency of the width chain, the losses, the training, the strategy."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hwnas
from hwnas.architecture import Activation, HeadType, OpType
from hwnas.hardware import DeviceType, HardwareProfile
from hwnas.latency import candidate_latencies, expected_latency
from hwnas.model import build_model
from hwnas.opspec import OpSpec
from hwnas.search import SearchProblem, get_strategy
from hwnas.search.fbnet import (
    FBNet,
    FBNetConfig,
    expected_cost,
    supernet_loss,
    temperature_schedule,
    train_supernet,
    train_supernets,
)
from hwnas.search.supernet import Supernet, chain_expected_latency, gumbel_softmax, supernet_spec
from hwnas.space import SearchSpace

TINY = FBNetConfig(epochs=3, warmup_epochs=1, max_windows=192, theta_batch_size=16, latency_weight=1.0)
OFFSETS = {"conv": 2.0, "fc": 1.0, "attention": 5.0, "identity": 0.25, "head_gap": 0.7, "overhead": 3.0,
           "shortcut": 0.5, "add": 0.3, "dwsep_conv": 1.5}


def flops_model(op: OpSpec) -> float:
    """A made-up but non-trivial table: an offset per op plus a cost per FLOP."""
    return OFFSETS.get(op.op, 1.0) + op.flops * 1e-3


def model_profile(model=flops_model) -> HardwareProfile:
    return HardwareProfile("test-model", DeviceType.CPU, {}, 10**8, 1e10, is_model=True, latency_model=model)


def tiny_space(features: int, **overrides) -> SearchSpace:
    settings = dict(name="tiny", input_features=features, lookbacks=(16,), depths=(1, 2, 3),
                    ops=(OpType.CONV, OpType.FC, OpType.IDENTITY, OpType.ATTENTION, OpType.MAX_POOL),
                    kernel_sizes=(3,), dilations=(), widths=(8, 16), heads=(2,),
                    activations=(Activation.RELU,), skip_choices=(False,), head_types=(HeadType.GAP,),
                    stem_width=8)
    settings.update(overrides)
    return SearchSpace(**settings)


@pytest.fixture(scope="module")
def space(task):
    return tiny_space(task.num_features)


@pytest.fixture(scope="module")
def spec(space):
    return supernet_spec(space, model_profile(), 16)


@pytest.fixture(scope="module")
def trained(spec, task):
    """One tiny training (seed 3), shared by the tests that only read it."""
    return train_supernet(spec, task, TINY, latency_target_us=200.0, seed=3)


def one_hot(choices, n):
    return F.one_hot(torch.tensor(choices), n).double()


# --------------------------------------------------------------------------- Gumbel-softmax


@pytest.mark.parametrize("tau", [0.3, 1.0, 5.0])
def test_gumbel_softmax_equals_torch_with_the_same_noise(tau):
    logits = torch.randn(4, 7, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(11)
    reference = F.gumbel_softmax(logits, tau=tau)
    torch.manual_seed(12)
    reference_hard = F.gumbel_softmax(logits, tau=tau, hard=True)
    ours = gumbel_softmax(logits, tau, generator=torch.Generator().manual_seed(11))
    ours_hard = gumbel_softmax(logits, tau, generator=torch.Generator().manual_seed(12), hard=True)
    torch.testing.assert_close(ours, reference)
    torch.testing.assert_close(ours_hard, reference_hard)
    assert torch.equal(ours_hard.sum(-1), torch.ones(4))


def test_hard_sample_passes_the_soft_gradient_through():
    logits = torch.randn(3, 5, generator=torch.Generator().manual_seed(2), requires_grad=True)
    weights = torch.arange(5.0)
    (gumbel_softmax(logits, 0.5, generator=torch.Generator().manual_seed(3), hard=True) @ weights).sum().backward()
    hard_grad = logits.grad.clone()
    logits.grad = None
    (gumbel_softmax(logits, 0.5, generator=torch.Generator().manual_seed(3)) @ weights).sum().backward()
    torch.testing.assert_close(hard_grad, logits.grad)
    assert hard_grad.abs().sum() > 0


# --------------------------------------------------------------------------- expected latency


def test_pooling_is_excluded_and_widths_are_the_chain_states(spec):
    assert spec.labels == ("conv k3 w8", "conv k3 w16", "fc w8", "fc w16", "identity none", "attention h2")
    assert list(spec.excluded) == ["max_pool k2 none"]
    assert spec.widths == (8, 16) and spec.depth == 3


def test_one_hot_expected_latency_is_the_lut_prediction_of_every_derived_architecture(space, spec):
    profile = model_profile()
    n = len(spec.indices)
    for choices in itertools.product(range(n), repeat=spec.depth):
        arch = spec.derive(choices)
        expected = float(expected_cost(spec, one_hot(choices, n)))
        assert expected == pytest.approx(profile.predict_latency(arch), rel=1e-12, abs=0)
        assert space.encode(arch).blocks == tuple(spec.indices[j] for j in choices)


def test_one_hot_latency_with_skips_and_projections(task):
    space = tiny_space(task.num_features, skip_choices=(True,), ops=(OpType.CONV, OpType.FC, OpType.IDENTITY))
    spec = supernet_spec(space, model_profile(), 16)
    assert spec.use_skip
    profile = model_profile()
    for choices in [(0, 1, 2), (1, 0, 3), (3, 3, 1), (2, 4, 1)]:
        arch = spec.derive(choices)
        assert any(layer.needs_projection for layer in arch.layers)
        assert float(expected_cost(spec, one_hot(choices, 5))) == pytest.approx(
            profile.predict_latency(arch), rel=1e-12)


def test_chain_equals_the_brute_force_expectation_over_all_architectures(spec):
    profile = model_profile()
    n = len(spec.indices)
    probs = torch.softmax(torch.randn(spec.depth, n, generator=torch.Generator().manual_seed(4)).double(), -1)
    brute = 0.0
    for choices in itertools.product(range(n), repeat=spec.depth):
        weight = float(np.prod([probs[i, j] for i, j in enumerate(choices)]))
        brute += weight * profile.predict_latency(spec.derive(choices))
    assert float(expected_cost(spec, probs)) == pytest.approx(brute, rel=1e-12)


def test_one_width_reduces_to_the_reference_formula(task):
    space = tiny_space(task.num_features, widths=(8,), ops=(OpType.CONV, OpType.FC, OpType.IDENTITY))
    profile = model_profile()
    spec = supernet_spec(space, profile, 16)
    theta = torch.randn(spec.depth, len(spec.indices), generator=torch.Generator().manual_seed(5)).double()
    lut = candidate_latencies(profile, space, spec.depth, 16)
    reference = expected_latency(theta, lut) + spec.fixed_us + float(spec.head_lut[0])
    assert float(expected_cost(spec, torch.softmax(theta, -1))) == pytest.approx(float(reference), rel=1e-12)


def test_latency_gradient_reaches_theta_but_not_a_layer_of_equal_latencies(spec):
    theta = torch.zeros(spec.depth, len(spec.indices), dtype=torch.float64, requires_grad=True)
    task_loss = torch.tensor(0.8, dtype=torch.float64)
    _, latency = supernet_loss(task_loss, expected_cost(spec, torch.softmax(theta, -1)), TINY, 100.0)
    latency.backward()
    assert (theta.grad.abs().sum(-1) > 0).all()
    # layer 1 costs the same whatever it picks and every pick keeps the width: no gradient there
    lut = spec.lut.expand(spec.depth, *spec.lut.shape).clone()
    lut[1] = 4.0
    keep = torch.zeros_like(spec.transition)
    keep[:, torch.arange(2), torch.arange(2)] = 1.0
    theta.grad = None
    chain_expected_latency(torch.softmax(theta, -1), lut, keep, spec.head_lut, 0).backward()
    assert torch.all(theta.grad[1] == 0) and (theta.grad[0].abs().sum() > 0) and (theta.grad[2].abs().sum() > 0)


def test_equal_table_latencies_give_no_latency_gradient_at_all(space):
    spec = supernet_spec(space, model_profile(lambda op: 4.0), 16)
    theta = torch.randn(spec.depth, len(spec.indices), dtype=torch.float64, requires_grad=True)
    expected_cost(spec, torch.softmax(theta, -1)).backward()
    torch.testing.assert_close(theta.grad, torch.zeros_like(theta), atol=1e-12, rtol=0)


def test_losses_by_hand():
    task_loss, lat = torch.tensor(0.7, dtype=torch.float64), torch.tensor(250.0, dtype=torch.float64)
    total, part = supernet_loss(task_loss, lat, FBNetConfig(loss="fbnet", latency_weight=0.6), 100.0)
    assert float(total) == pytest.approx(0.7 * 0.2 * math.log(250.0) ** 0.6)
    assert float(part) == pytest.approx(float(total) - 0.7)
    total, part = supernet_loss(task_loss, lat, FBNetConfig(latency_weight=0.5, memory_weight=0.1), 100.0,
                                torch.tensor(2000.0), 4000.0)
    assert float(total) == pytest.approx(0.7 + 0.5 * 2.5 + 0.1 * 0.5)
    assert float(part) == pytest.approx(1.25)
    with pytest.raises(ValueError, match="latency_us"):
        supernet_loss(task_loss, torch.tensor(0.5), FBNetConfig(loss="fbnet"), 100.0)


# --------------------------------------------------------------------------- training


def test_temperature_schedule_is_exponential_from_tau0_to_tau_final():
    taus = temperature_schedule(5.0, 0.2, 8)
    assert taus[0] == 5.0 and taus[-1] == pytest.approx(0.2)
    ratios = np.array(taus[1:]) / np.array(taus[:-1])
    np.testing.assert_allclose(ratios, math.exp(-math.log(25.0) / 7))
    assert temperature_schedule(2.0, 0.1, 1) == [2.0]


def test_training_follows_the_schedule_and_is_deterministic(spec, task, trained):
    first = trained
    again = train_supernet(spec, task, TINY, latency_target_us=200.0, seed=3)
    other = train_supernet(spec, task, TINY, latency_target_us=200.0, seed=4)
    assert [row["tau"] for row in first.history] == pytest.approx(TINY.schedule())
    assert np.array_equal(first.theta, again.theta)
    assert [r["weight_loss"] for r in first.history] == [r["weight_loss"] for r in again.history]
    assert not np.array_equal(first.theta, other.theta)
    assert math.isnan(first.history[0]["task_loss"]) and np.isfinite(first.history[-1]["task_loss"])
    np.testing.assert_allclose(first.history[0]["probs"], 1 / first.theta.shape[1], atol=1e-6)
    # the latency term pulls the expectation down
    assert first.history[-1]["expected_latency_us"] < first.history[0]["expected_latency_us"]
    custom = FBNetConfig(epochs=3, warmup_epochs=1, max_windows=192, temperatures=(3.0, 1.0, 0.5))
    run = train_supernet(spec, task, custom, latency_target_us=200.0, seed=3)
    assert [row["tau"] for row in run.history] == [3.0, 1.0, 0.5]


def test_a_sweep_shares_the_warm_up_and_its_first_run_is_the_single_run(spec, task, trained):
    runs = train_supernets(spec, task, TINY, (1.0, 0.0), latency_target_us=200.0, seed=3)
    single = trained
    assert np.array_equal(runs[0].theta, single.theta)
    assert runs[0].history[0] == runs[1].history[0]
    assert runs[1].history[-1]["latency_loss"] == 0.0


def test_derived_architectures_are_valid_members_of_the_space_and_build(space, task, trained):
    run = trained
    archs = [run.derived(), *run.sampled(3, np.random.default_rng(0))]
    for arch in archs:
        space.encode(arch)
        assert arch.depth == 1 + max(space.depths) and arch.lookback == 16
        out = build_model(arch, seed=0)(torch.zeros(2, task.num_features, 16))
        assert out.shape == (2, 1)
    assert run.expected_latency_us(np.eye(6)[run.argmax_choices()] * 1e3) == pytest.approx(
        model_profile().predict_latency(archs[0]), rel=1e-9)


def test_supernet_with_one_hot_weights_is_the_derived_model(task):
    space = tiny_space(task.num_features, widths=(8,))
    spec = supernet_spec(space, model_profile(), 16)
    choices = [0, 2, 3]
    for mode in ("hard", "soft"):
        net = Supernet(spec, mode).eval()
        model = build_model(spec.derive(choices))
        model.layers[0].load_state_dict(net.stem.state_dict())
        for i, j in enumerate(choices):
            model.layers[i + 1].load_state_dict(net.layers[i].blocks[j].state_dict())
        model.head.load_state_dict(net.head.state_dict())
        x = torch.randn(5, task.num_features, 16)
        with torch.no_grad():
            torch.testing.assert_close(net(x, one_hot(choices, len(spec.indices)).float()), model(x))


# --------------------------------------------------------------------------- settings


def test_bad_settings_raise_value_errors_naming_the_argument(space, task):
    with pytest.raises(ValueError, match="tau0"):
        FBNetConfig(tau0=0.0)
    with pytest.raises(ValueError, match="tau_final"):
        FBNetConfig(tau_final=-1.0)
    with pytest.raises(ValueError, match="tau"):
        FBNetConfig(epochs=2, warmup_epochs=0, temperatures=(1.0, 0.0))
    with pytest.raises(ValueError, match="temperatures"):
        FBNetConfig(epochs=3, temperatures=(1.0, 0.5))
    with pytest.raises(ValueError, match="tau"):
        gumbel_softmax(torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="alpha"):
        FBNetConfig(alpha=-0.1)
    with pytest.raises(ValueError, match="warmup_epochs"):
        FBNetConfig(epochs=3, warmup_epochs=3)
    with pytest.raises(ValueError, match="loss"):
        FBNetConfig(loss="multiplicative")
    with pytest.raises(ValueError, match="candidates"):
        supernet_spec(space, model_profile(), 16, candidates=[])
    pool = [i for i, c in enumerate(space.candidates()) if c.op == OpType.MAX_POOL]
    with pytest.raises(ValueError, match="candidates"):
        supernet_spec(space, model_profile(), 16, candidates=pool)
    with pytest.raises(ValueError, match="lookback"):
        supernet_spec(space, model_profile(), 32)
    with pytest.raises(ValueError, match="profile"):
        supernet_spec(space, HardwareProfile("empty", DeviceType.CPU, {}, 10**8, 1e10), 16)
    problem = SearchProblem(space, model_profile(), 100.0, 5)
    with pytest.raises(ValueError, match="task"):
        FBNet(problem)
    with pytest.raises(ValueError, match="latency_weights"):
        FBNet(SearchProblem(space, model_profile(), 100.0, 5, task=task), latency_weights=())


# --------------------------------------------------------------------------- the strategy


def strategy_options() -> dict:
    return dict(latency_weights=(0.0, 2.0), samples=1, epochs=3, warmup_epochs=1, max_windows=192,
                theta_batch_size=16)


def test_strategy_asks_the_derived_architectures_then_nothing_and_resumes(space, task):
    problem = SearchProblem(space, model_profile(), 60.0, 10, task=task)
    strategy = get_strategy("fbnet")(problem, seed=2, **strategy_options())
    assert isinstance(strategy, FBNet)
    first = strategy.ask(1)
    assert len(first) == 1 and len(strategy.runs) == 2
    state = json.loads(json.dumps(strategy.state_dict()))
    resumed = FBNet(problem, seed=2, **strategy_options())
    resumed.load_state_dict(state)
    rest = strategy.ask(100)
    assert resumed.ask(100) == rest and strategy.ask(5) == [] and resumed.ask(5) == []
    assert np.array_equal(resumed.runs[1].theta, strategy.runs[1].theta)
    archs = first + rest
    assert len({a.to_json() for a in archs}) == len(archs) >= 2
    origins = [strategy.origins[a.to_json()] for a in archs]
    assert {o["latency_weight"] for o in origins} <= {0.0, 2.0} and origins[0]["how"] == "argmax"
    assert all(o["within_budget"] == (o["predicted_latency_us"] <= 60.0) for o in origins)


def test_search_loop_runs_fbnet_end_to_end(space, task):
    result = hwnas.search(space, model_profile(), 60.0, 20, strategy="fbnet", task=task, seed=0,
                          strategy_options=strategy_options(), progress=False)
    evaluated = result.history
    assert 2 <= len(evaluated) <= 1 + 2 * 2
    assert len(result) >= 1
    for arch, metrics in result:
        assert metrics.latency_us == pytest.approx(model_profile().predict_latency(arch))
        assert math.isfinite(metrics.score)
