"""Random search: uniform samples of the space, the baseline every strategy is compared with.

Taught in: notebooks/07_pareto.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checks import require_int
from .base import Constraint, Metrics, SearchProblem, Strategy, register_strategy

if TYPE_CHECKING:
    from ..architecture import Architecture

__all__ = ["RandomSearch", "draw_within_budget"]


def draw_within_budget(problem: SearchProblem, draw: Callable[[], Architecture],
                       max_tries: int) -> Architecture:
    """``draw()`` again (up to ``max_tries`` times) until the candidate is within the hard budget.

    Under the soft constraint the first draw is returned. The check is the LUT
    latency and ``profile.check`` (microseconds), so no candidate the hard
    constraint would discard is trained; after ``max_tries`` the last draw is
    returned (the front will leave it out).

    Taught in: notebooks/07_pareto.
    """
    arch = draw()
    if problem.constraint != Constraint.HARD:
        return arch
    for _ in range(max_tries):
        if problem.within_budget(problem.predict(arch)):
            return arch
        arch = draw()
    return arch


@register_strategy("random")
class RandomSearch(Strategy):
    """Uniform samples of the space (:meth:`SearchSpace.sample`), one generator seeded with ``seed``.

    Under the hard constraint a sample over the budget is drawn again (up to
    ``max_tries`` times), which is rejection sampling of the feasible region.

    Taught in: notebooks/07_pareto.
    """

    def __init__(self, problem: SearchProblem, *, seed: int = 0, max_tries: int = 100) -> None:
        super().__init__(problem, seed=seed)
        self.max_tries = require_int(max_tries, "max_tries", 0)
        self.rng = np.random.default_rng(self.seed)

    def ask(self, n: int = 1) -> list[Architecture]:
        """``n`` fresh samples."""
        space = self.problem.space
        return [draw_within_budget(self.problem, lambda: space.sample(self.rng), self.max_tries)
                for _ in range(n)]

    def tell(self, arch: Architecture, metrics: Metrics) -> None:
        """Random search learns nothing."""

    def state_dict(self) -> dict[str, Any]:
        """The generator's state."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the generator."""
        self.rng.bit_generator.state = state["rng"]
