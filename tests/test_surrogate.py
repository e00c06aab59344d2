"""Surrogate-assisted evolution: its cached latency equals the profile's, its encoding is one-hot where
it says so, it never asks an architecture twice, and its model ranks proposals better than chance."""

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
