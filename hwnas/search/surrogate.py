"""Surrogate-assisted regularised evolution: a small model of the score screens mutations before training.

Taught in: notebooks/07_pareto.

Regularised evolution (Real et al., AAAI 2019) proposes one mutation of a
tournament winner per slot and trains it, good or not. Here each slot screens
``candidates`` proposals instead (mutations of the winner, plus fresh op-first
samples) with a Bayesian linear model of the validation score over a one-hot
encoding of the genome, fitted on every score told so far, and proposes the one
with the largest predicted hypervolume improvement: the latency of a proposal is
known exactly from the profile's table, so only the score is predicted, with an
optimistic bonus of ``kappa`` predictive standard deviations (an upper
confidence bound). With probability ``epsilon`` a proposal is taken at random.
A proposal already asked is never asked again. This is the recipe of BANANAS
(White et al., "BANANAS: Bayesian optimization with neural architectures for
neural architecture search", AAAI 2021: a predictor over an architecture
encoding ranks mutations of the best architectures, an acquisition picks) and
NPENAS (Wei et al., "NPENAS: Neural predictor guided evolution for neural
architecture search", IEEE TNNLS 2022), with a linear model in place of their
neural predictors so that the loop costs a few milliseconds per candidate.

The hypervolume the acquisition improves is over (-score, LAT/T) with the
reference (-q, 1): ``q`` the first quartile of the scores told so far, so a
proposal counts only when it is predicted to beat most of what was seen and to
fit the latency budget (see :func:`hwnas.pareto.hypervolume`). Within one batch
each pick is added to the front at its predicted point (the "kriging believer"),
which spreads a batch along the front.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checks import require_float, require_int
from ..pareto import _hv  # the exact sweep without the public function's checks: every point is inside
from .base import Metrics, SearchProblem, register_strategy, trained
from .evolution import RegularizedEvolution

if TYPE_CHECKING:
    from ..architecture import Architecture
    from ..space import Genome

__all__ = ["SurrogateEvolution", "genome_features"]

GenomeKey = tuple[int, tuple[int, ...], tuple[bool, ...], str]


def genome_features(problem: SearchProblem, genome: Genome) -> np.ndarray:
    """The surrogate's encoding of a genome: lookback, depth and head one-hot, each op's count,
    the op at each position one-hot, each parameter's mean over the layers, the skip count.

    Taught in: notebooks/07_pareto.
    """
    space = problem.space
    ops = space.ops
    depth_max = max(space.depths)
    candidates = space.candidates()
    x = np.zeros(_width(problem))
    x[0] = 1.0  # intercept
    i = 1
    x[i + space.lookbacks.index(genome.lookback)] = 1.0
    i += len(space.lookbacks)
    x[i + space.depths.index(len(genome.blocks))] = 1.0
    i += len(space.depths)
    x[i + space.head_types.index(genome.head)] = 1.0
    i += len(space.head_types)
    counts, position = i, i + len(ops)
    params = position + len(ops) * depth_max
    for k, (index, skip) in enumerate(zip(genome.blocks, genome.skips)):
        choice = candidates[index]
        o = ops.index(choice.op)
        x[counts + o] += 1.0
        x[position + k * len(ops) + o] = 1.0
        x[params] += math.log2(choice.kernel_size * choice.dilation)
        x[params + 1] += math.log2(choice.width or space.stem_width)
        x[params + 2] += float(skip)
    x[params:params + 3] /= max(len(genome.blocks), 1)
    return x


def _width(problem: SearchProblem) -> int:
    space = problem.space
    return (1 + len(space.lookbacks) + len(space.depths) + len(space.head_types) + len(space.ops)
            + len(space.ops) * max(space.depths) + 3)


@register_strategy("surrogate")
class SurrogateEvolution(RegularizedEvolution):
    """Regularised evolution whose every child is the best of ``candidates`` proposals by a score model.

    ``population_size``/``sample_size`` as :class:`~hwnas.search.evolution.RegularizedEvolution`;
    ``candidates`` proposals screened per child (``fresh`` of them new op-first samples, the
    rest mutations of the tournament winner), ``kappa`` the optimism of the upper confidence
    bound, ``epsilon`` the share of children taken at random from the proposals, ``alpha``
    the prior precision (ridge) of the linear model.

    Taught in: notebooks/07_pareto.
    """

    def __init__(self, problem: SearchProblem, *, seed: int = 0, population_size: int = 20,
                 sample_size: int = 5, candidates: int = 6, fresh: int = 1, kappa: float = 0.5,
                 epsilon: float = 0.1, alpha: float = 1.0, max_tries: int = 100) -> None:
        super().__init__(problem, seed=seed, population_size=population_size, sample_size=sample_size,
                         max_tries=max_tries)
        self.candidates = require_int(candidates, "candidates", 1)
        self.fresh = require_int(fresh, "fresh", 0, self.candidates)
        self.kappa = require_float(kappa, "kappa", minimum=0.0)
        self.epsilon = require_float(epsilon, "epsilon", minimum=0.0, maximum=1.0)
        self.alpha = require_float(alpha, "alpha", minimum=0.0, strict_minimum=True)
        self.observed: list[tuple[GenomeKey, float, float]] = []  # genome, score, LAT/T (trained ones)
        self.asked_genomes: set[GenomeKey] = set()
        self._layers: dict[tuple[Any, ...], tuple[float, int, int]] = {}  # latency, output shape
        self._features: dict[GenomeKey, np.ndarray] = {}
        self._plain = [c.op.value in ("identity", "max_pool", "avg_pool") for c in problem.space.candidates()]
        self._model: tuple[np.ndarray, np.ndarray, float] | None = None
        self._batch_front: np.ndarray = np.empty((0, 2))

    # ---- genomes
    def _key(self, genome: Genome) -> GenomeKey:
        """The genome with the skips of identity and pooling layers made the space's first choice
        (they carry none), so two genomes of one architecture have one key."""
        space = self.problem.space
        plain = self._plain
        skips = tuple(space.skip_choices[0] if plain[b] else s for b, s in zip(genome.blocks, genome.skips))
        return (genome.lookback, tuple(genome.blocks), skips, genome.head.value)

    def _genome(self, key: GenomeKey) -> Genome:
        from ..architecture import HeadType
        from ..space import Genome

        return Genome(int(key[0]), tuple(int(b) for b in key[1]), tuple(bool(s) for s in key[2]), HeadType(key[3]))

    def _latency_ratio(self, key: GenomeKey, arch: Architecture) -> float:
        """``LAT / T`` of a proposal from per-layer entries cached by (layer, input shape): the
        profile's prediction is a sum over layers, and proposals share most of their layers."""
        problem, space = self.problem, self.problem.space
        cache = self._layers
        channels, length = space.stem_width, key[0]
        parts: list[tuple[Any, ...]] = [("stem", key[0])]
        for index, skip in zip(key[1], key[2]):
            parts.append((index, skip, channels, length))
            if parts[-1] not in cache:
                break
            channels, length = cache[parts[-1]][1:]
        else:
            parts.append(("head", key[3], channels, length))
        if any(p not in cache for p in parts):
            latencies = problem.profile.layer_latencies(arch, problem.batch)
            shapes = arch.shapes()  # (channels, length) entering each layer, then the output
            cache[("stem", key[0])] = (latencies[0], *shapes[1])
            for k, (index, skip) in enumerate(zip(key[1], key[2])):
                cache[(index, skip, *shapes[k + 1])] = (latencies[k + 1], *shapes[k + 2])
            cache[("head", key[3], *shapes[-1])] = (latencies[-1], 0, 0)
            total = sum(latencies)
        else:
            total = sum(cache[p][0] for p in parts)
        return float((problem.profile.overhead_latency(problem.batch) + total) / problem.latency_budget_us)

    # ---- the model
    def _encode(self, key: GenomeKey) -> np.ndarray:
        """:func:`genome_features` of a genome key, cached."""
        if key not in self._features:
            self._features[key] = genome_features(self.problem, self._genome(key))
        return self._features[key]

    def _fit(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        """Bayesian linear regression of the score: weights, posterior covariance (over noise), noise."""
        if len(self.observed) < 3:
            return None
        x = np.array([self._encode(k) for k, _, _ in self.observed])
        y = np.array([s for _, s, _ in self.observed])
        mean = y.mean()
        a = x.T @ x + self.alpha * np.eye(x.shape[1])
        cov = np.linalg.inv(a)
        w = cov @ (x.T @ (y - mean))
        w[0] += mean
        residual = y - x @ w
        noise = float(residual.var()) if len(y) > x.shape[1] / 2 else float(y.var())
        return w, cov, max(noise, 1e-8)

    def _front(self, reference: np.ndarray) -> np.ndarray:
        points = np.array([[-s, lat] for _, s, lat in self.observed]).reshape(-1, 2)
        return points[np.all(points < reference, axis=1)]

    # ---- children
    def _proposals(self) -> list[tuple[GenomeKey, Architecture]]:
        space = self.problem.space
        picks = self.rng.choice(len(self.population), size=min(self.sample_size, len(self.population)),
                                replace=False)
        parent = max((self.population[int(i)] for i in picks), key=lambda member: member[1])[0]
        genome = space.encode(parent)
        out: list[tuple[GenomeKey, Architecture]] = []
        keys: set[GenomeKey] = set()
        for k in range(self.candidates):
            for _ in range(10):  # a few tries for a proposal not asked before
                if k < self.fresh:
                    child = space.sample_genome(self.rng)
                    arch = space.decode(child)
                else:
                    child, arch = space.mutate_genome(genome, parent, self.rng, self.max_tries)
                key = self._key(child)
                if key not in self.asked_genomes and key not in keys:
                    break
            keys.add(key)
            out.append((key, arch))
        return out

    def _child(self) -> Architecture:
        if self.asked < self.population_size or not self.population:
            arch = self.problem.space.sample(self.rng)
            self.asked_genomes.add(self._key(self.problem.space.encode(arch)))
            return arch
        proposals = self._proposals()
        if self._model is None or self.rng.random() < self.epsilon:
            key, arch = proposals[int(self.rng.integers(len(proposals)))]
        else:
            key, arch = self._best(proposals)
        self.asked_genomes.add(key)
        return arch

    def _best(self, proposals: list[tuple[GenomeKey, Architecture]]) -> tuple[GenomeKey, Architecture]:
        assert self._model is not None
        w, cov, noise = self._model
        x = np.array([self._encode(k) for k, _ in proposals])
        ucb = x @ w + self.kappa * np.sqrt(noise * (1.0 + np.einsum("ij,jk,ik->i", x, cov, x)))
        lat = np.array([self._latency_ratio(k, a) for k, a in proposals])
        base = _hv(self._batch_front, self._reference)
        gains = np.zeros(len(proposals))
        for j in range(len(proposals)):
            point = np.array([-ucb[j], lat[j]])
            if np.all(point < self._reference):
                gains[j] = _hv(np.vstack([self._batch_front, point]), self._reference) - base
        if gains.max() > 0:
            j = int(np.argmax(gains))
        else:  # nothing predicted on the front: the best predicted reward (an op the target lacks: last)
            with np.errstate(invalid="ignore", divide="ignore"):
                reward = np.maximum(ucb, 0.0) * np.power(np.maximum(lat, 1e-9), self.problem.w)
            j = int(np.argmax(np.where(np.isfinite(lat), reward, -np.inf)))
        if np.all(np.array([-ucb[j], lat[j]]) < self._reference):  # what the hypervolume counts
            self._batch_front = np.vstack([self._batch_front, [-ucb[j], lat[j]]])
        return proposals[j]

    def ask(self, n: int = 1) -> list[Architecture]:
        """``n`` children, each the best screened proposal (random samples until the population fills)."""
        if self.asked >= self.population_size and self.population:
            self._model = self._fit()
            scores = [s for _, s, _ in self.observed]
            q = float(np.quantile(scores, 0.25)) if scores else 0.0
            self._reference = np.array([-q, 1.0])
            self._batch_front = self._front(self._reference)
        return super().ask(n)

    def tell(self, arch: Architecture, metrics: Metrics) -> None:
        """Add the child to the population, and its score to the model's data when it was trained."""
        super().tell(arch, metrics)
        if trained(metrics):
            key = self._key(self.problem.space.encode(arch))
            self.observed.append((key, float(metrics.score), metrics.latency_us / self.problem.latency_budget_us))

    def state_dict(self) -> dict[str, Any]:
        """Evolution's state, the scores told (with their genomes) and the genomes asked."""
        state = super().state_dict()
        state["observed"] = [[list(k[:1]) + [list(k[1]), list(k[2]), k[3]], s, lat] for k, s, lat in self.observed]
        state["asked_genomes"] = sorted([k[0], list(k[1]), list(k[2]), k[3]] for k in self.asked_genomes)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        super().load_state_dict(state)

        def key(raw: list[Any]) -> GenomeKey:
            return (int(raw[0]), tuple(int(b) for b in raw[1]), tuple(bool(s) for s in raw[2]), str(raw[3]))

        self.observed = [(key(k), float(s), float(lat)) for k, s, lat in state["observed"]]
        self.asked_genomes = {key(k) for k in state["asked_genomes"]}

    def __repr__(self) -> str:
        return (f"SurrogateEvolution(P={self.population_size}, S={self.sample_size}, "
                f"candidates={self.candidates}, seed={self.seed})")
