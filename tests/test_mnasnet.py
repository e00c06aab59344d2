"""The MnasNet controller: a valid masked policy, the sign of its gradient, the baseline, resuming.

Most tests drive ``ask``/``tell`` directly with Metrics from a synthetic reward
(instant); the end-to-end tests go through ``hwnas.search`` on the tiny
synthetic task of ``tests/test_strategies.py`` (which also runs mnasnet through
every behaviour all strategies share: process pool, dask, kill and resume).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import hwnas
from hwnas.architecture import Activation, HeadType, OpType
from hwnas.search.base import INFEASIBLE_REWARD, Metrics, SearchProblem
from hwnas.search.controller import decision_layout
from hwnas.search.mnasnet import MnasNetStrategy
from hwnas.space import SearchSpace

PROFILE = hwnas.fpga_profile(hwnas.ZU9EG)


def problem(space: SearchSpace | None = None, n: int = 200, **kwargs: object) -> SearchProblem:
    return SearchProblem(space or SearchSpace.default(), PROFILE, 100.0, n, **kwargs)  # type: ignore[arg-type]


def conv_share(arch: hwnas.Architecture) -> Metrics:
    """A reward that favours plain convolutions: the share of searchable layers that are one."""
    body = arch.layers[1:]
    share = sum(layer.op == OpType.CONV for layer in body) / len(body)
    return Metrics(score=share, latency_us=100.0, memory_bytes=1, flops=1, params=1)


def drive(strategy: MnasNetStrategy, reward: Callable[[hwnas.Architecture], Metrics], n: int,
          chunk: int = 3) -> list[hwnas.Architecture]:
    """Ask and tell ``n`` architectures in chunks, as the loop does."""
    seen: list[hwnas.Architecture] = []
    while len(seen) < n:
        archs = strategy.ask(min(chunk, n - len(seen)))
        if not archs:
            break
        for arch in archs:
            strategy.tell(arch, reward(arch))
        seen += archs
    return seen


def conv_probability(strategy: MnasNetStrategy, layer: int = 1) -> float:
    """The policy's probability of ``conv`` at layer ``layer`` on its most likely path."""
    probs = strategy.decision_probabilities()
    index = [d.name for d in strategy.layout].index(f"op{layer}")
    return float(probs[index][strategy.masks.ops.index(OpType.CONV)])


TINY = SearchSpace(name="tiny", input_features=2, lookbacks=(8, 16), depths=(1, 2),
                   ops=(OpType.CONV, OpType.MAX_POOL, OpType.IDENTITY, OpType.ATTENTION),
                   kernel_sizes=(3, 9), widths=(4,), heads=(2,), activations=(Activation.RELU,),
                   head_types=(HeadType.GAP, HeadType.LAST), stem_width=4, min_length=4)


def tiny_valid_architectures() -> list[hwnas.Architecture]:
    """Every architecture of TINY whose decisions follow the space's rules (brute force)."""
    archs = {}
    allowed = getattr(TINY, "allowed", None) or TINY._allowed
    n = len(TINY.candidates())
    for lookback, depth, head in itertools.product(TINY.lookbacks, TINY.depths, TINY.head_types):
        for blocks in itertools.product(range(n), repeat=depth):
            for skips in itertools.product(TINY.skip_choices, repeat=depth):
                channels, length, ok = TINY.stem_width, lookback, True
                for block in blocks:
                    if block not in set(allowed(channels, length).tolist()):
                        ok = False
                        break
                    layer = TINY.candidates()[block].layer(channels, False)
                    channels, length = layer.out_channels, layer.output_length(length)
                if not ok:
                    continue
                try:
                    arch = TINY.decode(hwnas.Genome(lookback, blocks, skips, head))
                except ValueError:
                    continue
                archs[arch.to_json()] = arch
    return list(archs.values())


def test_the_masked_policy_is_a_distribution_over_exactly_the_valid_architectures() -> None:
    strategy = MnasNetStrategy(problem(TINY), seed=0)
    valid = tiny_valid_architectures()
    assert 20 < len(valid) < 2000
    total = float(np.exp(strategy.log_prob(valid)).sum())
    assert total == pytest.approx(1.0, abs=1e-5)
    keys = {a.to_json() for a in valid}
    actions, archs = strategy.sample(200)
    assert {a.to_json() for a in archs} <= keys  # nothing outside the space's rules
    assert actions.shape == (200, len(decision_layout(TINY)))


def test_sampling_frequencies_follow_the_log_probabilities() -> None:
    strategy = MnasNetStrategy(problem(TINY), seed=1)
    _, archs = strategy.sample(4000)
    counts: dict[str, int] = {}
    for arch in archs:
        counts[arch.to_json()] = counts.get(arch.to_json(), 0) + 1
    top = sorted(counts, key=counts.__getitem__)[-5:]
    expected = np.exp(strategy.log_prob([hwnas.Architecture.from_json(k) for k in top]))
    observed = np.array([counts[k] for k in top]) / 4000
    assert np.allclose(observed, expected, atol=4 * np.sqrt(expected / 4000) + 1e-3)


def test_a_reward_for_one_operation_raises_its_probability() -> None:
    for algorithm in ("reinforce", "ppo"):
        strategy = MnasNetStrategy(problem(), seed=0, batch_size=8, algorithm=algorithm)
        before = conv_probability(strategy)
        first = drive(strategy, conv_share, 16)
        drive(strategy, conv_share, 48)
        assert strategy.updates == 8
        assert conv_probability(strategy) > before + 0.2, algorithm
        late = drive(strategy, conv_share, 16)
        assert np.mean([conv_share(a).score for a in late]) > np.mean([conv_share(a).score for a in first])


def test_the_opposite_reward_lowers_it() -> None:
    strategy = MnasNetStrategy(problem(), seed=0, batch_size=8)
    before = conv_probability(strategy)

    def no_conv(arch: hwnas.Architecture) -> Metrics:
        metrics = conv_share(arch)
        return Metrics(1.0 - metrics.score, 100.0, 1, 1, 1)

    drive(strategy, no_conv, 48)
    assert conv_probability(strategy) < before


def per_sample_gradients(strategy: MnasNetStrategy, actions: torch.Tensor,
                         advantage: torch.Tensor) -> np.ndarray:
    """One REINFORCE gradient estimate per sample (rows), from the strategy's own loss."""
    rows = []
    params = list(strategy.policy.parameters())
    for i in range(actions.shape[0]):
        loss, _ = strategy.loss(actions[i:i + 1], advantage[i:i + 1])
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads if g is not None]).numpy())
    return np.array(rows)


def test_the_baseline_lowers_the_variance_of_the_gradient_estimate() -> None:
    strategy = MnasNetStrategy(problem(TINY), seed=2, entropy=0.0)
    actions, archs = strategy.sample(64)
    # a toy reward with a large common part (5) and a small signal (conv in layer 1)
    rewards = torch.tensor([5.0 + (a.layers[1].op == OpType.CONV) for a in archs])
    plain = per_sample_gradients(strategy, actions, rewards)
    centred = per_sample_gradients(strategy, actions, rewards - rewards.mean())
    var_plain = float(plain.var(axis=0).sum())
    var_centred = float(centred.var(axis=0).sum())
    assert var_centred < 0.25 * var_plain
    # the constant it removes has zero expected gradient: both estimate the same mean
    spread = np.sqrt(plain.var(axis=0).sum() / 64)
    assert np.linalg.norm(plain.mean(axis=0) - centred.mean(axis=0)) < 3 * spread


def test_same_seed_same_architectures_whatever_the_chunking() -> None:
    first = drive(MnasNetStrategy(problem(), seed=5, batch_size=6), conv_share, 30, chunk=4)
    again = drive(MnasNetStrategy(problem(), seed=5, batch_size=6), conv_share, 30, chunk=1)
    other = drive(MnasNetStrategy(problem(), seed=6, batch_size=6), conv_share, 30, chunk=4)
    assert first == again
    assert first != other


def test_the_global_rng_is_left_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    drive(MnasNetStrategy(problem(), seed=0, batch_size=4), conv_share, 8)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("algorithm", ["reinforce", "ppo"])
def test_state_round_trip_through_json_resumes_the_same_sequence(algorithm: str) -> None:
    original = MnasNetStrategy(problem(), seed=3, batch_size=5, algorithm=algorithm)
    drive(original, conv_share, 12)  # two updates and a batch half told
    pending = original.ask(2)
    original.tell(pending[0], conv_share(pending[0]))
    state = json.loads(json.dumps(original.state_dict(), allow_nan=False))
    resumed = MnasNetStrategy(problem(), seed=3, batch_size=5, algorithm=algorithm)
    resumed.load_state_dict(state)
    resumed.tell(pending[1], conv_share(pending[1]))
    original.tell(pending[1], conv_share(pending[1]))
    assert drive(resumed, conv_share, 20) == drive(original, conv_share, 20)
    assert resumed.history == original.history
    assert resumed.baseline == original.baseline


def test_the_saved_state_is_compact_cached_per_update_and_resumes_exactly_after_every_round() -> None:
    """The weights are saved as base64 bytes, encoded once per update (the loop saves every round):
    a state saved after any round resumes to the same asks as the uninterrupted strategy."""
    from hwnas.search.mnasnet import _tensor_from_json, _tensor_json

    original = MnasNetStrategy(problem(), seed=5, batch_size=4)
    states = []
    for _ in range(5):  # rounds of 3: saves land mid-batch and at updates
        drive(original, conv_share, 3)
        states.append(json.dumps(original.state_dict(), allow_nan=False))
    first = original.state_dict()
    assert original.state_dict()["policy"] is first["policy"]  # cached: no update since
    drive(original, conv_share, 12)
    assert original.state_dict()["policy"] is not first["policy"]  # re-encoded after the updates
    for k, text in enumerate(states):
        resumed = MnasNetStrategy(problem(), seed=5, batch_size=4)
        resumed.load_state_dict(json.loads(text))
        replay = MnasNetStrategy(problem(), seed=5, batch_size=4)
        drive(replay, conv_share, 3 * (k + 1))
        assert drive(resumed, conv_share, 12) == drive(replay, conv_share, 12)
    weight = next(iter(original.policy.state_dict().values()))
    encoded = _tensor_json(weight)
    assert set(encoded) == {"shape", "dtype", "base64"}
    assert torch.equal(_tensor_from_json(encoded), weight)
    old_form = {"shape": list(weight.shape), "dtype": "float32", "data": weight.ravel().tolist()}
    assert torch.equal(_tensor_from_json(old_form), weight)  # states saved by earlier versions load


def test_a_state_of_other_options_is_refused() -> None:
    state = MnasNetStrategy(problem(), seed=3, batch_size=5).state_dict()
    with pytest.raises(ValueError, match="options"):
        MnasNetStrategy(problem(), seed=3, batch_size=6).load_state_dict(state)


def test_an_infeasible_sample_gets_the_documented_reward() -> None:
    strategy = MnasNetStrategy(problem(), seed=0, batch_size=2)
    good, bad = strategy.ask(2)
    strategy.tell(good, Metrics(0.3, 50.0, 1, 1, 1))
    strategy.tell(bad, Metrics(math.nan, 50.0, 10**9, 1, 1, feasible=False, reasons=("memory",)))
    record = strategy.history[-1]
    reward = 0.3 * (50.0 / 100.0) ** -0.07
    assert record["infeasible"] == 1
    assert record["best_reward"] == pytest.approx(reward)
    assert record["mean_reward"] == pytest.approx((reward + INFEASIBLE_REWARD) / 2)
    assert record["baseline"] == pytest.approx((reward + INFEASIBLE_REWARD) / 2)  # the first batch's mean


def test_the_problem_reward_is_what_the_controller_maximises() -> None:
    hard = MnasNetStrategy(problem(constraint="hard"), seed=0, batch_size=2)
    fast, slow = hard.ask(2)
    hard.tell(fast, Metrics(0.4, 90.0, 1, 1, 1))
    hard.tell(slow, Metrics(0.4, 200.0, 1, 1, 1))
    assert hard.history[-1]["best_reward"] == pytest.approx(0.4)
    assert hard.history[-1]["mean_reward"] == pytest.approx((0.4 + 0.4 * 0.5) / 2)


def test_ask_hands_out_at_most_the_rest_of_the_batch_and_stops_at_the_budget() -> None:
    strategy = MnasNetStrategy(problem(n=7), seed=0, batch_size=4)
    asked = strategy.ask(3) + strategy.ask(3)
    assert len(asked) == 4
    with pytest.raises(RuntimeError, match="tell"):
        strategy.ask(1)
    stranger = next(a for a in map(SearchSpace.default().sample, map(np.random.default_rng, range(50)))
                    if a not in asked)
    with pytest.raises(ValueError, match="tell"):
        strategy.tell(stranger, conv_share(stranger))
    for arch in asked:
        strategy.tell(arch, conv_share(arch))
    with pytest.raises(ValueError, match="tell"):
        strategy.tell(asked[0], conv_share(asked[0]))  # told twice
    assert strategy.updates == 1
    assert len(drive(strategy, conv_share, 10)) == 3  # 7 in all
    assert strategy.ask(4) == []


@pytest.mark.parametrize("kwargs, word", [
    ({"batch_size": 0}, "batch_size"), ({"lr": 0.0}, "lr"), ({"entropy": -1.0}, "entropy"),
    ({"baseline_decay": 1.5}, "baseline_decay"), ({"algorithm": "a2c"}, "algorithm"),
    ({"hidden": 0}, "hidden"), ({"ppo_clip": 0.0}, "ppo_clip"), ({"seed": -1}, "seed"),
])
def test_bad_options_name_the_argument(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        MnasNetStrategy(problem(), **kwargs)


@settings(max_examples=15)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["default", "fpga", "mobile"]))
def test_every_sample_is_a_valid_architecture_the_policy_can_explain(seed: int, name: str) -> None:
    space = SearchSpace.named(name)
    strategy = MnasNetStrategy(problem(space), seed=seed)
    actions, archs = strategy.sample(8)
    for row, arch in zip(actions.tolist(), archs):
        assert strategy.actions_of(arch) == row
    logp = strategy.log_prob(archs)
    assert np.all(np.isfinite(logp)) and np.all(logp <= 0)


# ---- through the search loop


@pytest.fixture(scope="module")
def tiny() -> tuple:
    from test_strategies import tiny_setup

    return tiny_setup()


def loop(setup: tuple, **kwargs: object) -> hwnas.search.SearchResult:
    task, space, profile, budget = setup
    return hwnas.search(space, profile, budget, 12, strategy="mnasnet", task=task, seed=1,
                        progress=False, batch_size=3, strategy_options={"batch_size": 4}, **kwargs)


@pytest.fixture(scope="module")
def inline(tiny: tuple) -> hwnas.search.SearchResult:
    return loop(tiny)


def test_through_the_loop_same_seed_same_search_in_a_process_pool(
        tiny: tuple, inline: hwnas.search.SearchResult) -> None:
    assert len(inline.history) == 12
    with ProcessPoolExecutor(2) as pool:
        pooled = loop(tiny, executor=pool)
    assert pooled.signature() == inline.signature()
    assert [s.arch for s in pooled.history] == [s.arch for s in inline.history]


def test_through_the_loop_a_stored_search_is_found_again(
        tiny: tuple, inline: hwnas.search.SearchResult, tmp_path: object) -> None:
    store = str(tmp_path) + "/evals.sqlite"  # type: ignore[operator]
    first = loop(tiny, store=store)
    assert first.signature() == inline.signature()
    assert loop(tiny, store=store).signature() == inline.signature()  # resumed: nothing left to do
