"""Surrogate-assisted evolution: its cached latency equals the profile's, its encoding is one-hot where
it says so, it never asks an architecture twice, its model ranks proposals better than chance, and
its running ridge fit equals the batch one."""

from __future__ import annotations

import numpy as np
import pytest

import hwnas
from hwnas.search import Metrics, SearchProblem
from hwnas.search.surrogate import SurrogateEvolution, genome_features

SPACE = hwnas.SearchSpace.default()
PROFILE = hwnas.fpga_profile(hwnas.ZU9EG)


def problem(n: int = 200) -> SearchProblem:
    return SearchProblem(SPACE, PROFILE, 2_000.0, n)


def test_cached_latency_equals_the_profiles_prediction() -> None:
    strategy = SurrogateEvolution(problem(), seed=0)
    rng = np.random.default_rng(1)
    archs = [SPACE.sample(rng) for _ in range(40)]
    archs += [SPACE.mutate(a, rng) for a in archs]
    for arch in archs + archs:  # the second pass reads the per-layer cache
        key = strategy._key(SPACE.encode(arch))
        expected = PROFILE.predict_latency(arch) / 2_000.0
        assert strategy._latency_ratio(key, arch) == pytest.approx(expected, rel=1e-12)


def test_features_one_hot_where_stated() -> None:
    genome = SPACE.sample_genome(np.random.default_rng(3))
    x = genome_features(problem(), genome)
    n_look, n_depth, n_head = len(SPACE.lookbacks), len(SPACE.depths), len(SPACE.head_types)
    assert x[0] == 1.0
    assert x[1:1 + n_look].sum() == 1 and x[1 + n_look:1 + n_look + n_depth].sum() == 1
    counts = 1 + n_look + n_depth + n_head
    assert x[counts:counts + len(SPACE.ops)].sum() == len(genome.blocks)


def score_of(arch: hwnas.Architecture) -> float:
    """A synthetic score: convolutions help, pooling hurts."""
    ops = [layer.op.value for layer in arch.layers[1:]]
    return 0.1 * ops.count("conv") - 0.1 * (ops.count("max_pool") + ops.count("avg_pool")) + 0.5


def test_never_asks_twice_and_its_model_beats_chance() -> None:
    strategy = SurrogateEvolution(problem(), seed=4, population_size=10, sample_size=3, epsilon=0.0)
    seen, scores = set(), []
    for _ in range(12):
        for arch in strategy.ask(8):
            key = arch.to_json()
            assert key not in seen
            seen.add(key)
            score = score_of(arch)
            scores.append(score)
            strategy.tell(arch, Metrics(score=score, latency_us=100.0, memory_bytes=1, flops=1, params=1))
    rng = np.random.default_rng(0)
    chance = np.mean([score_of(SPACE.sample(rng)) for _ in range(500)])
    assert np.mean(scores[-40:]) > chance + 0.1


def test_running_normal_equations_equal_the_batch_ridge_fit_and_survive_a_resume() -> None:
    """The model solved from sums updated per tell equals ridge regression on the stacked history
    (a brute-force least-squares reference), and a restored strategy rebuilds the same sums."""
    strategy = SurrogateEvolution(problem(), seed=5, alpha=0.7)
    rng = np.random.default_rng(2)
    archs = [SPACE.sample(rng) for _ in range(60)]
    for arch in archs:
        strategy.tell(arch, Metrics(score=score_of(arch) + 0.05 * rng.standard_normal(), latency_us=100.0,
                                    memory_bytes=1, flops=1, params=1))
    fitted = strategy._fit()
    assert fitted is not None
    w, cov, noise = fitted
    x = np.array([strategy._encode(k) for k, _, _ in strategy.observed])
    y = np.array([s for _, s, _ in strategy.observed])
    # ridge on the centred score, solved as an augmented least-squares problem
    augmented = np.vstack([x, np.sqrt(0.7) * np.eye(x.shape[1])])
    target = np.concatenate([y - y.mean(), np.zeros(x.shape[1])])
    expected = np.linalg.lstsq(augmented, target, rcond=None)[0]
    expected[0] += y.mean()
    np.testing.assert_allclose(w, expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(cov, np.linalg.inv(x.T @ x + 0.7 * np.eye(x.shape[1])), rtol=1e-8, atol=1e-12)
    residual = y - x @ expected
    assert noise == pytest.approx(max(residual.var() if len(y) > x.shape[1] / 2 else y.var(), 1e-8), rel=1e-8)
    restored = SurrogateEvolution(problem(), seed=5, alpha=0.7)
    restored.load_state_dict(strategy.state_dict())
    for name in ("xx", "xy", "yy", "n"):
        np.testing.assert_array_equal(restored._stats[name], strategy._stats[name])
