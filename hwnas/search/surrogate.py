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
        self._model: tuple[np.ndarray, np.ndarray, float] | None = None
        self._batch_front: np.ndarray = np.empty((0, 2))
        self._stats = self._empty_stats()  # the normal equations of the scores told, updated per tell

    # ---- genomes
    def _key(self, genome: Genome) -> GenomeKey:
        """The genome with its skips made canonical (:meth:`SearchSpace.canonical_skips`), so two
        genomes of one architecture have one key."""
        skips = self.problem.space.canonical_skips(genome.blocks, genome.skips)
        return (genome.lookback, tuple(genome.blocks), skips, genome.head.value)

    def _mutant(self, genome: Genome, key: GenomeKey) -> Genome:
        """One single-gene mutation of ``genome`` (:meth:`SearchSpace._mutate_genome`) that is
        feasible and changes the architecture; ``genome`` itself after ``max_tries`` failures."""
        space = self.problem.space
        for _ in range(self.max_tries):
            child = space._mutate_genome(genome, self.rng)
            if child != genome and space.genome_fits(child) and self._key(child) != key:
                return child
        return genome

    def _genome(self, key: GenomeKey) -> Genome:
        from ..architecture import HeadType
        from ..space import Genome

        return Genome(int(key[0]), tuple(int(b) for b in key[1]), tuple(bool(s) for s in key[2]), HeadType(key[3]))

    def _latency_ratio(self, key: GenomeKey, arch: Architecture | None = None) -> float:
        """``LAT / T`` of a proposal from per-layer entries cached by (layer, input shape): the
        profile's prediction is a sum over layers, and proposals share most of their layers, so a
        new proposal prices only its new layers (the whole architecture only for a new stem)."""
        from ..opspec import OpKind, OpSpec

        problem, space, profile = self.problem, self.problem.space, self.problem.profile
        cache = self._layers
        stem = ("stem", key[0])
        if stem not in cache:
            arch = arch if arch is not None else space.decode(self._genome(key))
            cache[stem] = (profile.layer_latencies(arch, problem.batch)[0], *arch.shapes()[1])
        total, channels, length = cache[stem]
        for index, skip in zip(key[1], key[2]):
            part = (index, skip, channels, length)
            if part not in cache:
                layer = space.candidates()[index].layer(channels, skip)
                cache[part] = (profile.spec_latency(OpSpec.from_layer(layer, length, problem.batch)),
                               layer.out_channels, layer.output_length(length))
            latency, channels, length = cache[part]
            total += latency
        head = ("head", key[3], channels, length)
        if head not in cache:
            spec = OpSpec(op=OpKind(f"head_{key[3]}"), in_channels=channels, out_channels=space.num_outputs,
                          seq_len=length, batch=problem.batch)
            cache[head] = (profile.spec_latency(spec), 0, 0)
        total += cache[head][0]
        return float((profile.overhead_latency(problem.batch) + total) / problem.latency_budget_us)

    # ---- the model
    def _encode(self, key: GenomeKey) -> np.ndarray:
        """:func:`genome_features` of a genome key, cached."""
        if key not in self._features:
            self._features[key] = genome_features(self.problem, self._genome(key))
        return self._features[key]

    def _empty_stats(self) -> dict[str, Any]:
        width = _width(self.problem)
        return {"xx": np.zeros((width, width)), "xy": np.zeros(width), "yy": 0.0, "n": 0}

    def _add(self, key: GenomeKey, score: float) -> None:
        """One told score into the normal equations (a rank-one update: no refit over the history)."""
        x, stats = self._encode(key), self._stats
        stats["xx"] += np.outer(x, x)
        stats["xy"] += score * x
        stats["yy"] += score * score
        stats["n"] += 1

    def _fit(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        """Bayesian linear regression of the score: weights, posterior covariance (over noise), noise.

        Ridge on the centred score from the running sums ``X'X``, ``X'y``, ``y'y`` (column 0 of
        ``X`` is the intercept, so ``X'1`` is ``X'X[:, 0]`` and ``sum y`` is ``X'y[0]``): the cost
        is one solve of the encoding's width, whatever the number of scores told."""
        stats = self._stats
        n = stats["n"]
        if n < 3:
            return None
        xx, xy = stats["xx"], stats["xy"]
        mean = xy[0] / n
        cov = np.linalg.inv(xx + self.alpha * np.eye(len(xy)))
        w = cov @ (xy - mean * xx[:, 0])
        w[0] += mean
        # residual r = y - Xw: sum r^2 = y'y - 2 w'X'y + w'X'Xw, sum r = sum y - (X'X w)[0]
        total = stats["yy"] - 2.0 * w @ xy + w @ xx @ w
        centre = (xy[0] - (xx @ w)[0]) / n
        y_var = stats["yy"] / n - mean * mean
        noise = total / n - centre * centre if n > len(xy) / 2 else y_var
        return w, cov, max(float(noise), 1e-8)

    def _front(self, reference: np.ndarray) -> np.ndarray:
        """The told points inside ``reference`` that no other dominates (the ones that set the HV)."""
        points = np.array([[-s, lat] for _, s, lat in self.observed]).reshape(-1, 2)
        points = points[np.all(points < reference, axis=1)]
        points = points[np.lexsort((points[:, 1], points[:, 0]))]
        keep = np.minimum.accumulate(points[:, 1]) if len(points) else points[:, 1]
        # sorted by the first objective: a point is on the front when its second is a new minimum
        first = np.r_[True, points[1:, 1] < keep[:-1]] if len(points) else np.zeros(0, bool)
        return points[first]

    # ---- children
    def _proposals(self) -> list[GenomeKey]:
        """The keys of ``candidates`` proposals not asked before (genomes only: none is decoded)."""
        space = self.problem.space
        picks = self.rng.choice(len(self.population), size=min(self.sample_size, len(self.population)),
                                replace=False)
        parent = max((self.population[int(i)] for i in picks), key=lambda member: member[1])[0]
        genome = space.encode(parent)
        parent_key = self._key(genome)
        out: list[GenomeKey] = []
        for k in range(self.candidates):
            for _ in range(10):  # a few tries for a proposal not asked before
                child = space.sample_genome(self.rng) if k < self.fresh else self._mutant(genome, parent_key)
                key = self._key(child)
                if key not in self.asked_genomes and key not in out:
                    break
            out.append(key)
        return out

    def _child(self) -> Architecture:
        if self.asked < self.population_size or not self.population:
            arch = self.problem.space.sample(self.rng)
            self.asked_genomes.add(self._key(self.problem.space.encode(arch)))
            return arch
        proposals = self._proposals()
        if self._model is None or self.rng.random() < self.epsilon:
            key = proposals[int(self.rng.integers(len(proposals)))]
        else:
            key = self._best(proposals)
        self.asked_genomes.add(key)
        return self.problem.space.decode(self._genome(key))

    def _best(self, proposals: list[GenomeKey]) -> GenomeKey:
        """The proposal of the largest predicted hypervolume gain (all predicted in one product)."""
        assert self._model is not None
        w, cov, noise = self._model
        x = np.array([self._encode(k) for k in proposals])
        ucb = x @ w + self.kappa * np.sqrt(noise * (1.0 + np.einsum("ij,jk,ik->i", x, cov, x)))
        lat = np.array([self._latency_ratio(k) for k in proposals])
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
            self._add(key, float(metrics.score))

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
        self._stats = self._empty_stats()
        for k, score, _ in self.observed:  # the same sums, in the same order, as the run that saved
            self._add(k, score)
        self.asked_genomes = {key(k) for k in state["asked_genomes"]}

    def __repr__(self) -> str:
        return (f"SurrogateEvolution(P={self.population_size}, S={self.sample_size}, "
                f"candidates={self.candidates}, seed={self.seed})")
