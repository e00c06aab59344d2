"""Regularised (aging) evolution, Real et al. 2019, on the MnasNet reward.

Taught in: notebooks/07_pareto.

A population of ``P`` architectures; each child is a mutation
(:meth:`SearchSpace.mutate`) of the best of ``S`` members drawn at random (a
tournament), and the **oldest** member dies when the child joins, whatever its
reward: age, not fitness, removes members, which keeps the search exploring
and makes it robust to a noisy score (a lucky proxy score lives at most ``P``
steps).

Real et al. used ``P = 100``, ``S = 25`` for 20,000 models. For budgets of a
few hundred evaluations the defaults are ``P = 20``, ``S = 5``: the random
start costs 20 evaluations (7% of 300) instead of a third of the budget, the
population turns over about 14 times in 300 evaluations, and the tournament
keeps their selection pressure ``S / P = 1/4`` (the expected rank of a parent
is in the top fifth of the population).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..checks import require_int
from .base import Metrics, SearchProblem, Strategy, register_strategy
from .random_search import draw_within_budget

if TYPE_CHECKING:
    from ..architecture import Architecture

__all__ = ["RegularizedEvolution"]


@register_strategy("evolution")
class RegularizedEvolution(Strategy):
    """Aging evolution: tournament of ``sample_size`` from a population of ``population_size``.

    Fitness is :meth:`SearchProblem.reward` (soft or hard MnasNet reward; an
    infeasible candidate gets :data:`~hwnas.search.base.INFEASIBLE_REWARD`).
    Under the hard constraint a sample or child over the budget is drawn again
    (up to ``max_tries`` times) before it is trained.

    Taught in: notebooks/07_pareto.
    """

    def __init__(self, problem: SearchProblem, *, seed: int = 0, population_size: int = 20,
                 sample_size: int = 5, max_tries: int = 100) -> None:
        super().__init__(problem, seed=seed)
        self.population_size = require_int(population_size, "population_size", 2)
        self.sample_size = require_int(sample_size, "sample_size", 1, self.population_size)
        self.max_tries = require_int(max_tries, "max_tries", 0)
        self.rng = np.random.default_rng(self.seed)
        self.population: list[tuple[Architecture, float]] = []  # oldest first
        self.asked = 0

    def _child(self) -> Architecture:
        space = self.problem.space
        if self.asked < self.population_size or not self.population:
            return space.sample(self.rng)
        picks = self.rng.choice(len(self.population), size=min(self.sample_size, len(self.population)),
                                replace=False)
        parent = max((self.population[int(i)] for i in picks), key=lambda member: member[1])[0]
        return space.mutate(parent, self.rng)

    def ask(self, n: int = 1) -> list[Architecture]:
        """``n`` children (random samples until ``population_size`` have been asked)."""
        out = []
        for _ in range(n):
            out.append(draw_within_budget(self.problem, self._child, self.max_tries))
            self.asked += 1
        return out

    def tell(self, arch: Architecture, metrics: Metrics) -> None:
        """Add the child; the oldest member dies once the population is full."""
        self.population.append((arch, self.problem.reward(metrics)))
        if len(self.population) > self.population_size:
            self.population.pop(0)

    def state_dict(self) -> dict[str, Any]:
        """Population (oldest first, with rewards), the number asked and the generator state."""
        return {"rng": self.rng.bit_generator.state, "asked": self.asked,
                "population": [[arch.to_dict(), reward] for arch, reward in self.population]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        from ..architecture import Architecture

        self.rng.bit_generator.state = state["rng"]
        self.asked = int(state["asked"])
        self.population = [(Architecture.from_dict(a), float(r)) for a, r in state["population"]]

    def __repr__(self) -> str:
        return f"RegularizedEvolution(P={self.population_size}, S={self.sample_size}, seed={self.seed})"
